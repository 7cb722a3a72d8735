"""What made ``python -m detector predict`` faster on folders, and the measure behind its defaults.

On one folder of DFDC test crops (the benchmark's, ``detector.bench_folder``), in one process:

* the face finder and the pipeline, each alone and together: the Haar cascade this project used
  before (``bench/haar_finder.py``) and YuNet, each one input at a time (``--workers 0``) and
  pipelined at the CLI's defaults;
* ``--workers`` and ``--batch-size`` swept with YuNet: the measure behind the defaults.

Crops per second, the median of ``--runs`` passes over the folder after one untimed pass. The
machine's load moves every figure: compare the rows of one run, not runs. ``docs/SCALE.md``
records a run.

Usage (from the repo root)::

    python bench/folder_speed.py                      # 320 crops, 3 runs: ~5 minutes
    python bench/folder_speed.py --files 160 --runs 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.defaults import PREDICT_BATCH_SIZE, PREDICT_WORKERS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default weights/)")
    parser.add_argument("--files", type=int, default=320, help="DFDC test crops in the folder (default 320)")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per figure (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64, 128])
    args = parser.parse_args()

    from detector.startup import import_tensorflow

    import_tensorflow()
    from detector.bench_folder import dfdc_crops, folder_throughput
    from detector.faces import FaceFinder
    from detector.pipeline import Detector
    from haar_finder import HaarFaceFinder

    paths = dfdc_crops(args.files)
    if not paths:
        sys.exit("bench/folder_speed.py: the DFDC set is not in ../shared/data")
    detector = Detector.load(args.weights)

    def measure(finder, workers: int, batch_size: int) -> float:
        return folder_throughput(detector.with_finder(finder()), paths, workers, batch_size, args.runs,
                                 new_finder=finder)[0]

    rows = []
    for name, finder in (("Haar cascade", HaarFaceFinder), ("YuNet", FaceFinder)):
        for workers in (0, PREDICT_WORKERS):
            rows.append({"finder": name, "workers": workers, "batch_size": PREDICT_BATCH_SIZE,
                         "crops_per_s": measure(finder, workers, PREDICT_BATCH_SIZE)})
            print(json.dumps(rows[-1]), flush=True)
    for workers in args.workers:
        for batch_size in args.batch_sizes:
            rows.append({"finder": "YuNet", "workers": workers, "batch_size": batch_size,
                         "crops_per_s": measure(FaceFinder, workers, batch_size)})
            print(json.dumps(rows[-1]), flush=True)

    base = rows[0]["crops_per_s"]
    print(f"\n{len(paths)} DFDC test crops, median of {args.runs} passes; gain against the Haar cascade one at a time\n")
    print(f"{'finder':<13} {'workers':>7} {'batch':>5} {'crops/s':>8} {'gain':>6}")
    for row in rows:
        print(f"{row['finder']:<13} {row['workers']:>7} {row['batch_size']:>5} {row['crops_per_s']:>8.1f} "
              f"{row['crops_per_s'] / base:>5.2f}x")


if __name__ == "__main__":
    main()
