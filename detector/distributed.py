"""Scoring millions of files on a Ray cluster: ``python -m detector cluster-predict``.

    python -m detector cluster-predict photos/ --out scores.jsonl                # Ray on this machine
    python -m detector cluster-predict --file-list paths.txt --address auto --out scores.jsonl
    python -m detector cluster-predict photos/ --overlays /shared/overlays --out scores.jsonl  # and each overlay

The inputs are the CLI's: image and video files and folders (walked as ``predict`` walks them), or
a text file of paths, one a line (read by the cluster, not by this process). Ray Data cuts them
into batches of ``batch_rows`` paths; a pool of ``actors`` (``ActorPoolStrategy``), each loading
the detector once, scores each batch with the CLI's own engine (``detector.batch_scoring``: one
thread prepares the next inputs while the network scores the current ones). The records come
back in input order and are written as the CLI's JSON lines, so the output of a cluster and of
``python -m detector predict --json`` can be compared line for line.

Ray Data was chosen over Apache Beam's RunInference: it installs beside the pinned stack without
changing a package of it (Beam 2.77 requires protobuf < 7 and pyarrow < 26, and replaces the
protobuf TensorFlow runs on), and its actors keep the detector loaded from batch to batch
(docs/SCALE.md has the comparison and the figures).

Every node needs this repository at the same path with ``requirements-scale.txt`` installed (a
container image, say), and the inputs at the same paths (a shared filesystem, or a bucket
mounted at the same place on every node). The records keep each path as given; a relative
path is opened from the worker's working folder, which on a cluster of several machines is
where ``ray start`` ran: give absolute paths there. ``--overlays DIR`` has the actors draw each
input's overlay into DIR as ``predict --overlays`` does; on several machines DIR must be shared too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import argparse
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from detector.defaults import CLUSTER_BATCH_ROWS, PREDICT_BATCH_SIZE, VIDEO_MAX_FRAMES

REPO = Path(__file__).resolve().parent.parent

#: Ray Data's notice that its actors could not be restarted if their constructor arguments were
#: lost: printed as an error on every run although nothing failed (ray-project/ray#57733).
RAY_NOISE = re.compile(r"has constructor arguments in the object store and max_restarts > 0")


class BatchScorer:
    """The Ray Data actor: loads the detector once, then scores batches of paths.

    Args:
        weights: The weights folder, as a path on the worker nodes; ``None`` for ``weights/``.
        batch_size: Crops per call of the network.
        threads: TensorFlow's and LiteRT's threads in this actor (its share of the node's cores).
        overlays: The folder for each input's overlay (``batch_scoring.score_paths``), or ``None``.
        video_frames: Most frames scored of each video (``batch_scoring.score_paths``).
    """

    def __init__(self, weights: str | None, batch_size: int, threads: int, overlays: str | None = None,
                 video_frames: int = VIDEO_MAX_FRAMES) -> None:
        from detector.startup import import_tensorflow

        tf = import_tensorflow()
        # An actor gets `threads` cores: TensorFlow would otherwise run a thread per core of
        # the node in each actor, and the actors of a node would fight over them.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        from detector.pipeline import Detector

        self.detector = Detector.load(weights, threads=threads)
        self.batch_size = batch_size
        self.overlays = overlays
        self.video_frames = video_frames

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from detector.batch_scoring import score_paths

        records = score_paths(self.detector, [str(p) for p in batch["path"]], workers=1, batch_size=self.batch_size,
                              overlays=self.overlays, video_frames=self.video_frames)
        return {"record": np.array([json.dumps(r) for r in records], dtype=object)}


def connect(address: str | None, object_store_mb: int | None = None) -> None:
    """Joins the Ray cluster at ``address`` (``"auto"``: the one this machine belongs to), or
    starts Ray on this machine when ``address`` is ``None``.

    The workers find this package through ``PYTHONPATH`` (the repository's path here, which
    must be its path on every node).
    """
    if address is None:  # Ray on this machine alone: on the loopback interface (read when Ray is imported)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "logging_level": "ERROR"}
    if address is None:  # a one-node cluster, listening on the loopback interface only
        options.update(include_dashboard=False, _node_ip_address="127.0.0.1")
        if object_store_mb:
            options["object_store_memory"] = object_store_mb * 2**20
    ray.init(address=address, **options)


def score_on_ray(
    paths: Iterable[str] | None = None,
    file_list: str | None = None,
    weights: str | None = None,
    actors: int = 2,
    cpus_per_actor: int = 1,
    batch_size: int = PREDICT_BATCH_SIZE,
    batch_rows: int = CLUSTER_BATCH_ROWS,
    overlays: str | None = None,
    video_frames: int = VIDEO_MAX_FRAMES,
) -> Iterator[dict[str, Any]]:
    """Scores inputs on the connected Ray cluster, yielding the CLI's records in input order.

    Args:
        paths: Files (folders already walked); or ``None`` with ``file_list``.
        file_list: A text file of paths, one a line, readable by the cluster.
        weights: The weights folder on the worker nodes; ``None`` for ``weights/``.
        actors: Detectors loaded at once (each takes ``cpus_per_actor`` cores of a node).
        cpus_per_actor: Cores Ray gives each actor.
        batch_size: Crops per call of the network inside an actor.
        batch_rows: Paths per batch sent to an actor.
        overlays: A folder on the worker nodes for each input's overlay (``predict --overlays``);
            its records then name their PNGs.
        video_frames: Most frames scored of each video (``predict --max-frames``).

    Yields:
        One record per input, as ``python -m detector predict --json`` prints it.

    Raises:
        ValueError: neither or both of ``paths`` and ``file_list``.
    """
    import ray.data

    if (paths is None) == (file_list is None):
        raise ValueError("give either paths or file_list")
    # Ray Data's INFO lines and the notice that progress bars are off read as noise to a user.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # stderr goes through a line filter (main): no bars redrawn in place
    if file_list is not None:
        # Reading a list takes no core: the actors may hold every core of the cluster.
        dataset = ray.data.read_text(str(Path(file_list).resolve()), num_cpus=0).rename_columns({"text": "path"})
    else:
        dataset = ray.data.from_items([{"path": str(p)} for p in paths])
    scored = dataset.map_batches(
        BatchScorer,
        fn_constructor_kwargs={"weights": weights, "batch_size": batch_size, "threads": cpus_per_actor,
                               "overlays": overlays, "video_frames": video_frames},
        batch_size=batch_rows,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
    )
    for row in scored.iter_rows():
        yield json.loads(row["record"])


def main(args: argparse.Namespace) -> int:
    """``python -m detector cluster-predict``: score, write the JSON lines, and exit 1 when an
    input could not be scored (as ``predict`` does).

    Raises:
        WeightsError: the weights folder is missing or fails its card's checks (the CLI
            prints it as one line and exits 2).
    """
    if importlib.util.find_spec("ray") is None:  # found, not imported: connect() imports it
        print("error: cluster-predict needs Ray: pip install -r requirements-scale.txt", file=sys.stderr)
        return 2
    from detector.batch_scoring import iter_inputs
    from detector.card import MODEL_FILE, WEIGHTS_DIR, ModelCard
    from detector.startup import filtered_stderr

    # The weights are checked here first, so that bad weights are one clear line, not a traceback
    # from every actor; the actors get their absolute path (their working folder may differ).
    folder = Path(args.weights or WEIGHTS_DIR).resolve()
    ModelCard.load(folder).verify(folder / MODEL_FILE)
    paths = None if args.file_list else (str(p) for p in iter_inputs(args.paths))
    overlays = str(Path(args.overlays).resolve()) if args.overlays else None  # absolute: an actor's working folder may differ
    failed = 0
    with open(args.out, "w") if args.out else contextlib.nullcontext(sys.stdout) as out, filtered_stderr([RAY_NOISE]):
        connect(args.address, args.object_store_mb)
        for record in score_on_ray(paths, args.file_list, str(folder), args.actors, args.cpus_per_actor,
                                   args.batch_size, args.batch_rows, overlays, args.max_frames):
            failed += record["error"] is not None
            out.write(json.dumps(record) + "\n")
    return 1 if failed else 0
