"""Ray Data against Apache Beam's RunInference for ``cluster-predict``, on this machine.

Each engine scores the same DFDC test crops (``detector.bench_folder.dfdc_crops``) with two
workers on this machine (each loading the detector once), through the CLI's engine
(``detector.batch_scoring.score_paths``, one preparing thread per worker), and the time from the
start of the run to the last record is taken for two folder sizes: the difference gives the
crops per second once running, the rest is start-up (workers started, TensorFlow imported,
detector loaded). Start-up varies by seconds from run to run, so where records come out as
they are scored (``cli``, ``ray``) the larger run also gives the rate from its first record to
its last, which start-up does not touch; Beam writes its records at the end. ``cli`` is
``predict``'s engine in this process, for scale (its start-up leaves out the TensorFlow import,
done once before the runs; in the others each worker imports TensorFlow).

    python bench/engines.py cli
    python bench/engines.py ray          # pip install -r requirements-scale.txt
    python bench/engines.py beam         # in its own environment: pip install apache-beam==2.77.0
                                         # (it pins protobuf < 7 and pyarrow < 26: installed beside
                                         # requirements-scale.txt it would downgrade both)

Beam runs on its DirectRunner in multi-processing mode (``direct_num_workers=2``), with a
``ModelHandler`` that loads the detector, as Beam's own TensorFlow handler cannot: it loads the
Keras file without the card's checks and needs ``tensorflow_hub``, which brings ``tf-keras``.
Ray runs on a local Ray of two cores (``detector.distributed``). ``docs/SCALE.md`` records a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (160, 640)


def run_cli(paths: list[str]) -> Iterator[dict]:
    from detector.batch_scoring import score_paths
    from detector.pipeline import Detector

    yield from score_paths(Detector.load(), paths)


def run_ray(paths: list[str]) -> Iterator[dict]:
    import ray

    from detector.distributed import connect, score_on_ray

    connect(None, object_store_mb=200)
    try:
        yield from score_on_ray(paths, actors=2)
    finally:
        ray.shutdown()


def run_beam(paths: list[str]) -> Iterator[dict]:
    import tempfile

    import apache_beam as beam
    from apache_beam.ml.inference.base import ModelHandler, RunInference
    from apache_beam.options.pipeline_options import PipelineOptions

    class DetectorHandler(ModelHandler):
        """Loads the detector once per worker; scores a batch of paths as the CLI does."""

        def load_model(self):
            from detector.startup import import_tensorflow

            import_tensorflow()
            from detector.pipeline import Detector

            return Detector.load()

        def run_inference(self, batch, model, inference_args=None):
            from detector.batch_scoring import score_paths

            return [json.dumps(r) for r in score_paths(model, batch, workers=1)]

        def batch_elements_kwargs(self):
            return {"min_batch_size": 64, "max_batch_size": 64}

    out = Path(tempfile.mkdtemp()) / "records"
    options = PipelineOptions(direct_num_workers=2, direct_running_mode="multi_processing")
    with beam.Pipeline(options=options) as pipeline:
        (pipeline | beam.Create(paths) | RunInference(DetectorHandler())
         | beam.io.WriteToText(str(out), shard_name_template=""))
    with open(out) as lines:
        yield from map(json.loads, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=("cli", "ray", "beam"))
    args = parser.parse_args()

    from detector.startup import import_tensorflow

    import_tensorflow()
    from detector.bench_folder import dfdc_crops

    run = {"cli": run_cli, "ray": run_ray, "beam": run_beam}[args.engine]
    seconds, streaming = {}, {}
    for size in SIZES:
        paths = [str(p) for p in dfdc_crops(size)]
        start = time.perf_counter()
        times = [time.perf_counter() - start for record in run(paths) if not record["error"]]
        assert len(times) == len(paths), f"{len(paths) - len(times)} of {len(paths)} crops not scored"
        seconds[size] = times[-1]
        streaming[size] = (len(times) - 1) / (times[-1] - times[0])
    small, large = SIZES
    rate = (large - small) / (seconds[large] - seconds[small])
    print(json.dumps({"engine": args.engine, "seconds": seconds, "crops_per_s_running": round(rate, 1),
                      "start_up_s": round(seconds[small] - small / rate, 1),
                      "crops_per_s_first_to_last_record": round(streaming[large], 1) if args.engine != "beam" else None}))


if __name__ == "__main__":
    main()
