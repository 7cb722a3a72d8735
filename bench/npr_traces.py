"""What is left of the up-sampling traces NPR reads (Tan et al. 2024), in the files and in the crops.

NPR ("neighbouring pixel relationships") feeds a network ``x - up(x[::2, ::2])``: a generator
that up-samples by two leaves the pixels of each 2x2 cell related, and the residual shows it.
The trace lives on the generator's own pixel grid, so resizing (the face crop is resized to the
network's input) and JPEG (8x8 blocks) may blur it away. This measures how well small statistics
of that residual alone tell each source's fakes from its reals (out-of-fold ROC-AUC of the audit's
small classifier, ``audit.shortcut_auc``): read from the file at its own resolution, and from the
160 px crop the network is trained on. 0.5 means nothing is left to read. docs/unseen-fakes.md
quotes it.

    python bench/npr_traces.py            # the six shared sets' training splits, 400 faces per label
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def npr_statistics(grey: np.ndarray) -> np.ndarray:
    """Six statistics of a grey image's NPR residual.

    For each of the three pixels of a 2x2 cell that up-sampling fills in, the mean absolute
    difference to the cell's first pixel: on the cells of the image's own grid, and on cells
    shifted by one pixel (which straddle any up-sampler's cells). Returned as the log of the
    first three and the log ratios of the two, so that sharpness alone cancels out of the ratios.
    """
    def residuals(image: np.ndarray) -> np.ndarray:
        h, w = (s // 2 * 2 for s in image.shape)
        cells = image[:h, :w].reshape(h // 2, 2, w // 2, 2)
        anchor = cells[:, 0, :, 0]
        return np.array([np.abs(cells[:, dy, :, dx] - anchor).mean() for dy, dx in ((0, 1), (1, 0), (1, 1))]) + 1e-3

    on_grid, off_grid = residuals(grey), residuals(grey[1:, 1:])
    return np.concatenate([np.log(on_grid), np.log(on_grid / off_grid)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=400, help="faces per label and set")
    args = p.parse_args(argv)
    # After parsing: --help starts no TensorFlow (detector.sampling imports it).
    from detector.audit import shortcut_auc
    from detector.data import load_set
    from detector.defaults import INPUT_SIZE, SHARED_DATA, SHARED_SETS
    from detector.sampling import group_sources

    rng = np.random.default_rng(0)
    parts, file_rows, crop_rows = [], {}, {}
    for name in SHARED_SETS:
        root = SHARED_DATA / name
        arrays = load_set(root, INPUT_SIZE).split(args.split).with_faces()
        keep = np.concatenate([rng.permutation(np.flatnonzero(arrays.labels == y))[:args.limit] for y in (0, 1)])
        arrays = arrays.select(np.sort(keep))
        file_rows[arrays.name] = np.array([npr_statistics(cv2.imread(str(root / f), cv2.IMREAD_GRAYSCALE).astype(np.float32))
                                           for f in arrays.files])
        crop_rows[arrays.name] = np.array([npr_statistics(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY).astype(np.float32))
                                           for c in arrays.images])
        parts.append(arrays)
    # All six statistics, and the three grid ratios alone: the residual's size also measures
    # plain sharpness, which differs between sources for other reasons; the ratios are the trace.
    columns = [(rows, features) for features in (slice(None), slice(3, None)) for rows in (file_rows, crop_rows)]
    print(f"| source | faces | all six: file | all six: {INPUT_SIZE} px crop | grid ratios: file | grid ratios: crop |")
    print("|---|---|---|---|---|---|")
    for source in group_sources(parts):
        names = source.name.split(" + ")
        aucs = [shortcut_auc(np.concatenate([rows[n] for n in names])[:, features], source.labels, source.groups)
                for rows, features in columns]
        print(f"| {source.name} | {len(source.labels)} | " + " | ".join("–" if a is None else f"{a:.3f}" for a in aucs)
              + " |")


if __name__ == "__main__":
    main()
