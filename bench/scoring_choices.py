"""What the scoring views and Platt calibration each bring, on the shipped weights.

Scores the cached validation and test crops of both shared sets (the crops training used)
several ways: the mean over the card's scoring views (``ModelCard.scoring_views``), and the
mean over each set of views ``bench/flip_sources.py`` compares (``ALTERNATIVE_VIEWS``: the
crop alone, the crop and its unshifted mirror image, shifted and zoomed views). Then fits, on
the pooled validation split, temperature scaling alone and Platt scaling (temperature and
bias) to the card's scoring, and reports each one's expected calibration error on every test split.

    python bench/scoring_choices.py [--weights weights/]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.flip_sources import ALTERNATIVE_VIEWS  # noqa: E402
from detector import evaluation  # noqa: E402
from detector.card import MODEL_FILE, WEIGHTS_DIR, ModelCard  # noqa: E402
from detector.data import load_set  # noqa: E402
from detector.training import SHARED_DATA, predict_logits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--data", default=str(SHARED_DATA))
    args = parser.parse_args()

    import keras

    card = ModelCard.load(args.weights)
    model = keras.saving.load_model(Path(args.weights) / MODEL_FILE, safe_mode=True, compile=False)
    names = [Path(s).name for s in card.training["config"]["sets"]]
    sets = [load_set(Path(args.data) / name, card.input_size, margin=card.face_margin) for name in names]

    scorers = {"scoring views": lambda images: predict_logits(model, images, card.scoring_views)}
    for name, views in ALTERNATIVE_VIEWS.items():
        scorers[name] = lambda images, views=views: predict_logits(model, images, views)
    logits = {(how, a.name, split): score(a.split(split).images)
              for how, score in scorers.items() for a in sets for split in ("val", "test")}

    print("ROC-AUC                        val " + " ".join(f"{n:>14}" for n in names) + "   test " + " ".join(f"{n:>14}" for n in names))
    for how in scorers:
        row = [roc_auc_score(a.split(split).labels, logits[how, a.name, split]) for split in ("val", "test") for a in sets]
        print(f"{how:<30} " + " ".join(f"{v:14.4f}" for v in row[: len(sets)]) + "        "
              + " ".join(f"{v:14.4f}" for v in row[len(sets):]))

    how = "scoring views"
    y_val = np.concatenate([a.split("val").labels for a in sets])
    z_val = np.concatenate([logits[how, a.name, "val"] for a in sets])
    fits = {"temperature only": (evaluation.fit_temperature(y_val, z_val), 0.0),
            "Platt (T and bias)": evaluation.fit_platt(y_val, z_val)}
    print("\nECE on test (scoring views), fitted on pooled validation: " + "  ".join(names) + "  pooled")
    y_test = np.concatenate([a.split("test").labels for a in sets])
    z_test = np.concatenate([logits[how, a.name, "test"] for a in sets])
    for label, (t, b) in fits.items():
        per_set = [evaluation.expected_calibration_error(a.split("test").labels,
                                                         evaluation.apply_temperature(logits[how, a.name, "test"], t, b))
                   for a in sets]
        pooled = evaluation.expected_calibration_error(y_test, evaluation.apply_temperature(z_test, t, b))
        print(f"{label:<20} T={t:.3f} bias={b:+.3f}  " + "  ".join(f"{v:.3f}" for v in per_set) + f"  {pooled:.3f}")


if __name__ == "__main__":
    main()
