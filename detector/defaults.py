"""Defaults that the command line's help shows, in a module that imports nothing heavy.

``python -m detector --help`` and its usage errors must answer without importing TensorFlow
(~3 s), so the constants they print live here, not in the modules that use them (which
import TensorFlow and re-export them: ``detector.training.SHARED_DATA``,
``detector.model.INPUT_SIZE``, ``detector.shards.IMAGES_PER_SHARD``).
"""

from __future__ import annotations

from pathlib import Path

#: The labelled face sets shared beside the repository (``../shared/data``).
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

#: The gallery: real photos of people shipped with the demo (sources in ``examples/README.md``).
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: ``python -m detector edited-faces``: real test photos edited per set, and the JPEG quality
#: every picture is saved at before it is scored (the shared sets' own).
EDITED_FACES_PER_SET = 100
EDITED_FACES_JPEG = 92

#: The labelled sets of ``SHARED_DATA`` the shipped weights are trained on.
SHARED_SETS = ("dfdc_faces", "ffhq_stylegan", "lfw_faceswap", "ecuador_flux_lora", "sfhq_t2i", "utkface_wild_crops")

#: Side of the square face crop the shipped network takes. 160 px keeps the detail of most
#: training faces (their crops are 135-225 px in their files) at 0.31 GFLOPs per crop.
INPUT_SIZE = 160

#: Records per TFRecord file: ~100 MB files at 128 px, large enough to read fast, small
#: enough to spread over workers.
IMAGES_PER_SHARD = 2048

#: ``python -m detector video-eval``: the sets with both labels, frames per clip, and where
#: its Markdown page and JSON report go.
VIDEO_EVAL_SETS = ("dfdc_faces", "ffhq_stylegan", "lfw_faceswap", "ecuador_flux_lora")
VIDEO_EVAL_FRAMES = 6
VIDEO_EVAL_MD = Path(__file__).resolve().parent.parent / "docs" / "VIDEO_EVAL.md"
VIDEO_EVAL_JSON = Path(__file__).resolve().parent.parent / "reports" / "video" / "video_eval.json"

#: ``python -m detector predict``: threads that read, decode and find faces, and crops per call
#: of the network (``detector.batch_scoring``). On 2 cores, 2 threads gave 1.3-1.4x the crops/s
#: of 1, a third 3-9% more (at the edge of the run's noise); batches of 8 to 128 crops were within 6%
#: (``python bench/folder_speed.py``, docs/SCALE.md).
PREDICT_WORKERS = 2
PREDICT_BATCH_SIZE = 32

#: Frames scored per second of video, and most frames per video (``detector.video``'s
#: ``SAMPLE_FPS`` and ``MAX_SAMPLES``): a clip up to 60 s is scored two frames a second, a longer
#: one gets its 120 spread over all of it. ``predict --max-frames`` raises the second.
VIDEO_SAMPLE_FPS = 2.0
VIDEO_MAX_FRAMES = 120

#: ``python -m detector cluster-predict``: paths per batch sent to an actor, large enough that
#: the pipeline inside it runs full, small enough to spread a folder over the actors.
CLUSTER_BATCH_ROWS = 64

#: ``python -m detector bench --only``: the benchmark's parts, in the order run.
BENCH_SECTIONS = ("latency", "network", "folder", "video", "training", "app")
