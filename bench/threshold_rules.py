"""Would another real-first rule call fewer real test photos fake? Run by hand on a weights folder.

Scores every set's validation and test crops (the crop cache, as training does), then for each
rule picks the threshold on validation and prints, per test set, the share of reals and of
fakes at or above it: "max K" is ``evaluation.real_first_threshold`` (no source's reals above K
called fake, the shipped rule at 0.05); "CP c" lets a source call fake only as many reals as keep
the Clopper-Pearson upper bound (confidence c) of its rate at 5%. docs/training.md quotes it.

    python bench/threshold_rules.py weights/
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import beta

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def clopper_pearson_threshold(val: dict, confidence: float, target: float = 0.05) -> float:
    """The lowest threshold at which, for every source, the upper bound of its reals' false-fake
    rate stays within ``target``."""
    bars = []
    for y, p in val.values():
        reals = np.sort(p[y == 0])
        if not len(reals):
            continue
        allowed = 0
        while allowed + 1 <= len(reals) and beta.ppf(confidence, allowed + 2, len(reals) - allowed - 1) <= target:
            allowed += 1
        bars.append(np.nextafter(reals[len(reals) - 1 - allowed], 1.0))
    return float(max(bars))


def main() -> None:
    from detector.startup import import_tensorflow

    import_tensorflow()
    import keras

    from detector import evaluation
    from detector.card import MODEL_FILE, ModelCard
    from detector.data import load_set
    from detector.defaults import SHARED_DATA
    from detector.training import _source_names, predict_logits

    weights = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "weights")
    card = ModelCard.load(weights)
    model = keras.saving.load_model(weights / MODEL_FILE, safe_mode=True, compile=False)
    sets = [load_set(SHARED_DATA / Path(s).name, card.input_size, None, None, margin=card.face_margin)
            for s in card.training["config"]["sets"]]
    scored = {}
    for split in ("val", "test"):
        parts = [a.split(split).with_faces() for a in sets]
        scored[split] = evaluation.with_one_label_pool(
            {a.name: (a.labels, evaluation.apply_temperature(predict_logits(model, a.images, card.scoring_views),
                                                             card.temperature, card.bias)) for a in parts})
    val = {name: scored["val"][name] for name in _source_names(sets)}
    rules = {f"max {k:.2f}": evaluation.real_first_threshold(val, k) for k in (0.05, 0.03, 0.02)}
    rules |= {f"CP {c}": clopper_pearson_threshold(val, c) for c in (0.5, 0.8, 0.9)}
    for rule, t in rules.items():
        cells = []
        for name, (y, p) in scored["test"].items():
            reals = f"{100 * np.mean(p[y == 0] >= t):4.1f}" if (y == 0).any() else "   –"
            fakes = f"{100 * np.mean(p[y == 1] >= t):4.1f}" if (y == 1).any() else "   –"
            cells.append(f"{name}: reals {reals}% fakes {fakes}%")
        print(f"{rule:9} threshold {t:.3f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
