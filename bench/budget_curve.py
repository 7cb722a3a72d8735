"""How the ROC-AUC grows with the training budget, and what that trend asks of the goal.

Train the shipped recipe with shorter cosine schedules (each anneals to the end, unlike a run
cut by ``--max-minutes``), then read their model cards beside the shipped one:

    python train.py --epochs 8 --out runs/e8
    python train.py --epochs 17 --out runs/e17
    python bench/budget_curve.py runs/e8 runs/e17 weights/ [--goal dfdc_faces=0.95 ffhq_stylegan=0.99]

For each run it prints the scheduled epochs, the minutes, the training ROC-AUC of the last epoch (on
augmented batches: how far the network still is from fitting them), and the validation and
test ROC-AUC per set. Then, per set, it fits test ROC-AUC = a + b * log2(epochs) and prints
``b``, the gain per doubling of the schedule, and the epochs (and minutes, at the longest
run's pace) at which that line would reach the goal. The fit is on epochs, not minutes:
the same run takes 70 or 83 minutes on this machine from one day to the next. Returns diminish as a model nears what its data can teach, so the line is a
lower bound on the budget, not a forecast.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.card import ModelCard  # noqa: E402

#: Beyond this many times the longest schedule, the line's answer is "not by training longer".
FAR = 100

#: The test ROC-AUC goals of the issue "The detector", per set.
GOALS = {"dfdc_faces": 0.95, "ffhq_stylegan": 0.99}


def budget_row(folder: str | Path) -> dict:
    """One run's budget and ROC-AUCs, from its model card.

    Args:
        folder: A weights folder written by ``train.py``.

    Returns:
        ``{"folder", "epochs" (scheduled), "minutes", "train_auc", "val": {set: auc},
        "test": {set: auc}}``.
    """
    card = ModelCard.load(folder)
    history = card.training.get("history", {})
    train_auc = history.get("fake_logit_auc") or [None]
    return {
        "folder": str(folder),
        "epochs": card.training["config"]["epochs"],
        "minutes": card.training["minutes"],
        "train_auc": train_auc[-1],
        **{split: {name: row["roc_auc"] for name, row in card.metrics[split]["sets"].items()}
           for split in ("val", "test")},
    }


def fit_log_budget(budgets: list[float], aucs: list[float]) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``auc = a + b * log2(budget)``.

    Raises:
        ValueError: fewer than two distinct budgets.
    """
    if len(set(budgets)) < 2:
        raise ValueError(f"a trend needs at least two different budgets, got {budgets}")
    b, a = np.polyfit(np.log2(budgets), aucs, 1)
    return float(a), float(b)


def budget_for(goal: float, a: float, b: float) -> float:
    """The budget at which ``a + b * log2(budget)`` reaches ``goal`` (inf if it never rises)."""
    return 2 ** ((goal - a) / b) if b > 0 else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="weights folders of the same recipe with different budgets")
    parser.add_argument("--goal", nargs="*", default=[f"{k}={v}" for k, v in GOALS.items()],
                        help="SET=AUC test ROC-AUC goals")
    args = parser.parse_args()

    goals = {}
    for goal in args.goal:
        name, _, value = goal.partition("=")
        try:
            goals[name] = float(value)
        except ValueError:
            parser.error(f"--goal takes SET=AUC, got {goal!r}")
    rows = sorted((budget_row(folder) for folder in args.folders), key=lambda r: (r["epochs"], r["minutes"]))
    sets = list(rows[0]["test"])
    print(f"{'run':<28}{'epochs':>7}{'minutes':>9}{'train AUC':>11}" + "".join(f"{'val / test ' + s:>30}" for s in sets))
    for r in rows:
        train = "–" if r["train_auc"] is None else f"{r['train_auc']:.3f}"
        aucs = "".join(f"{r['val'][s]:>21.3f} / {r['test'][s]:.3f}" for s in sets)
        print(f"{Path(r['folder']).name or r['folder']:<28}{r['epochs']:>7}{r['minutes']:>9.1f}{train:>11}{aucs}")
    pace = rows[-1]["minutes"] / rows[-1]["epochs"]
    for s in sets:
        a, b = fit_log_budget([r["epochs"] for r in rows], [r["test"][s] for r in rows])
        line = f"{s}: test ROC-AUC {b:+.3f} per doubling of the epochs"
        if s in goals:
            need = budget_for(goals[s], a, b)
            if need <= FAR * rows[-1]["epochs"]:
                line += f"; the line reaches {goals[s]} at {need:,.0f} epochs, {need * pace / 60:,.1f} h at {pace:.1f} min per epoch"
            else:
                line += f"; the line does not reach {goals[s]} within {FAR}x the longest schedule"
        print(line)


if __name__ == "__main__":
    main()
