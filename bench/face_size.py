"""How small can a face be before its verdict stops meaning anything? Run by hand.

Group shots, screenshots and video frames give faces of a few dozen pixels, which the face
finder finds and the network sees enlarged to its input size. For each test face of every set
(and the gallery's real photos), this shrinks the whole photo until that face's box is N px on
its shorter side, re-compresses it as JPEG (as a shrunk upload is), scores it through the whole
pipeline (faces found again) and compares the fake probability with the card's threshold,
*before* the pipeline's own small-face rule (``pipeline.MIN_JUDGE_FACE``), which this measures.
Per set and size it prints: faces found again, reals called fake, fakes called fake, ROC-AUC.
Then, for each candidate rule (``--rules``), what it would make of the photos as uploaded: how
many reals and fakes would be called fake. docs/robustness.md quotes it.

    python bench/face_size.py --per-label 150
    python bench/face_size.py --sizes 40 64 96 --jpeg 0      # no re-compression

A face is only ever shrunk, never enlarged: a set whose faces are 100 px contributes to the
rows below 100. The face is matched to the one found in the shrunk photo by box overlap.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from detector.defaults import SHARED_DATA, SHARED_SETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (the shipped one by default)")
    parser.add_argument("--sets", nargs="*", default=[str(SHARED_DATA / s) for s in SHARED_SETS])
    parser.add_argument("--examples", default=str(REPO / "examples"), help="real photos scored as a set of their own")
    parser.add_argument("--per-label", type=int, default=150, help="test images per set and label")
    parser.add_argument("--sizes", type=int, nargs="*", default=[32, 40, 48, 56, 64, 80, 96, 128])
    parser.add_argument("--jpeg", type=int, default=90, help="JPEG quality after shrinking (0: none)")
    parser.add_argument("--rules", type=int, nargs="*", default=[40, 48, 56, 64],
                        help="smallest face sides to judge, each applied to the photos as uploaded")
    args = parser.parse_args()

    from detector.data import read_records
    from detector.imaging import ImageError, load_image
    from detector import pipeline
    from detector.pipeline import MIN_JUDGE_FACE, Detector
    from detector.robustness import chain, downscale, jpeg
    from detector.tracking import iou

    detector = Detector.load(args.weights)
    threshold = detector.card.threshold
    inputs: dict[str, list[tuple[Path, int]]] = {}
    for root in args.sets:
        records = [r for r in read_records(root) if r.split == "test"]
        inputs[Path(root).name] = [(r.path, r.label) for label in (0, 1)
                                   for r in [x for x in records if x.label == label][: args.per_label]]
    gallery = sorted(p for p in Path(args.examples).glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    inputs["gallery (real)"] = [(p, 0) for p in gallery]

    scores: dict[str, dict[int, list[tuple[int, float]]]] = {}  # set -> size -> (label, probability)
    asked: dict[int, int] = {}  # size -> faces shrunk to it (0: as uploaded)
    verdicts: dict[str, dict[int, Counter]] = {}  # set -> rule -> Counter((label, photo's verdict))
    for name, items in inputs.items():
        for path, label in items:
            try:
                rgb = load_image(path)
            except ImageError:
                continue
            faces = detector.cut_faces(rgb)
            logits = detector.logits(faces.crops)
            for rule in args.rules:  # the photo's verdict, had the pipeline's rule been this size
                pipeline.MIN_JUDGE_FACE = rule
                verdict = detector.judge(faces, logits).label
                verdicts.setdefault(name, {}).setdefault(rule, Counter())[label, verdict] += 1
            pipeline.MIN_JUDGE_FACE = MIN_JUDGE_FACE
            for face in detector.judge(faces, logits).faces:
                side = min(face.box.w, face.box.h)
                scores.setdefault(name, {}).setdefault(0, []).append((label, face.fake_probability))
                asked[0] = asked.get(0, 0) + 1
                for size in (s for s in args.sizes if s < side):
                    factor = size / side
                    steps = [downscale(factor)] + ([jpeg(args.jpeg)] if args.jpeg else [])
                    small = detector.predict(chain(*steps)(rgb))
                    target = type(face.box)(*(round(v * factor) for v in (face.box.x, face.box.y, face.box.w, face.box.h)))
                    asked[size] = asked.get(size, 0) + 1
                    best = max(small.faces, key=lambda f: iou(f.box, target), default=None)
                    if best is not None and iou(best.box, target) > 0.3:
                        scores[name].setdefault(size, []).append((label, best.fake_probability))
        print(f"{name}: {len(scores.get(name, {}).get(0, []))} faces", file=sys.stderr)
    scores["all sets"] = {}
    for name, by_size in list(scores.items()):
        if name not in ("gallery (real)", "all sets"):
            for size, scored in by_size.items():
                scores["all sets"].setdefault(size, []).extend(scored)

    sizes = [0] + sorted(args.sizes, reverse=True)
    print(f"Threshold {threshold:.3f}; JPEG {args.jpeg or 'none'} after shrinking; each face's probability "
          f"before the small-face rule (now {MIN_JUDGE_FACE} px). Cells: share (faces).\n")
    for title, label in (("Reals called fake", 0), ("Fakes called fake", 1), ("ROC-AUC", None)):
        present = {n: {y for y, _ in scores[n].get(0, [])} for n in scores}
        names = [n for n in scores if (label in present[n] if label is not None else len(present[n]) == 2)]
        print(f"{title}:\n\n| face side (px) | found again | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 2) + "|")
        for size in sizes:
            found = sum(len(scores[n].get(size, [])) for n in inputs) / max(asked.get(size, 0), 1)
            cells = [cell(scores[n].get(size, []), label, threshold) for n in names]
            print(f"| {'as uploaded' if size == 0 else size} | {found:.0%} | " + " | ".join(cells) + " |")
        print()

    print("Photos as uploaded, each rule in turn (the shipped one is the smallest side judged, now "
          f"{MIN_JUDGE_FACE} px): reals called fake, fakes called fake (photos).\n")
    print("| set | " + " | ".join(f"{rule} px" for rule in args.rules) + " |")
    print("|---" * (len(args.rules) + 1) + "|")
    for name, by_rule in verdicts.items():
        print(f"| {name} | " + " | ".join(called_fake(by_rule[rule]) for rule in args.rules) + " |")


def called_fake(tally: Counter) -> str:
    """"reals / fakes called fake" as counts of photos, from ``(label, verdict)`` counts."""
    totals = [sum(v for (y, _), v in tally.items() if y == label) for label in (0, 1)]
    return " · ".join(f"{tally[label, 'fake']}/{n}" if n else "–" for label, n in enumerate(totals))


def cell(scored: list[tuple[int, float]], label: int | None, threshold: float) -> str:
    """The share of ``label``'s faces at or above the threshold, or the ROC-AUC when ``label`` is None."""
    y = np.array([lab for lab, _ in scored])
    p = np.array([prob for _, prob in scored])
    if label is None:
        return f"{roc_auc_score(y, p):.3f} ({len(y)})" if len(set(y)) == 2 else "–"
    mine = y == label
    return f"{(p[mine] >= threshold).mean():.1%} ({mine.sum()})" if mine.any() else "–"


if __name__ == "__main__":
    main()
