"""The model card beside the weights: what the model is, how it was measured, and its sha256.

``weights/model_card.json`` is the single source of truth: the pipeline reads the input
size, calibration temperature, decision threshold and uncertain band from it, the app's
About tab and the README's metrics table are generated from it, and loading the weights
verifies their sha256 against it, so a swapped or corrupted file is refused, not scored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from detector.views import CROP_AND_MIRROR, View, as_views, describe

#: The folder of the shipped weights, next to the package.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MODEL_FILE = "model.keras"
CARD_FILE = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"

#: What a user runs to make the weights again; quoted in every integrity error.
REGENERATE_COMMAND = "python train.py"

#: The card's section of leave-one-source-out figures (``detector.loso``): how the detector
#: does on kinds of fakes it never saw, shaped ``{family: {"held_out", "minutes", "epochs",
#: <tested source>: {"roc_auc", "recall_fake", "recall_real", "n"}}}``.
UNSEEN_SECTION = "Unseen fakes (leave one source out)"


class WeightsError(RuntimeError):
    """The weights or their card are missing, altered or incompatible."""


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ModelCard:
    """Everything known about one trained model.

    Attributes:
        input_size: Side of the square face crop the network takes.
        face_margin: Crop side relative to the face box, as in training.
        temperature: Logits are divided by this before the sigmoid (fitted on validation).
        bias: Added to the scaled logit before the sigmoid (Platt scaling, fitted with the
            temperature).
        threshold: Calibrated fake probability at or above which a face is called fake.
        uncertain_band: ``(low, high)`` calibrated probabilities between which the verdict is
            "uncertain".
        scoring_views: The views (``detector.views``) whose mean logit the calibration was
            fitted on; cards written before this field were fitted on ``CROP_AND_MIRROR``.
        sha256: Hex digest of the weights file.
        architecture: Human-readable summary (layers, parameters, FLOPs).
        data: Data sets and split sizes used.
        training: Configuration, time and history summary.
        metrics: Evaluation results by split and set (the output of ``evaluation.report``).
        extra: Further reports (cross-set, robustness, ...).
    """

    input_size: int
    face_margin: float
    temperature: float = 1.0
    bias: float = 0.0
    threshold: float = 0.5
    uncertain_band: tuple[float, float] = (0.5, 0.5)
    scoring_views: tuple[View, ...] = CROP_AND_MIRROR
    sha256: str = ""
    architecture: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Writes ``model_card.json`` and its Markdown rendering into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CARD_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=False) + "\n")
        (folder / CARD_MARKDOWN).write_text(self.to_markdown())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "ModelCard":
        """Reads ``model_card.json`` from ``folder``.

        Raises:
            WeightsError: the card is missing or not a valid card.
        """
        path = Path(folder) / CARD_FILE
        try:
            raw = json.loads(path.read_text())
            raw["uncertain_band"] = tuple(raw.get("uncertain_band", (0.5, 0.5)))
            raw["scoring_views"] = as_views(raw.get("scoring_views", CROP_AND_MIRROR))
            return cls(**raw)
        except FileNotFoundError:
            raise WeightsError(f"model card {path} is missing; regenerate it with `{REGENERATE_COMMAND}`") from None
        except (ValueError, TypeError) as err:
            raise WeightsError(f"model card {path} is not valid ({err}); regenerate it with `{REGENERATE_COMMAND}`") from None

    def verify(self, weights: str | Path) -> None:
        """Checks that ``weights`` is the file this card describes.

        Raises:
            WeightsError: the file is missing, or its sha256 differs from the card's.
        """
        weights = Path(weights)
        if not weights.is_file():
            raise WeightsError(f"weights file {weights} is missing; regenerate it with `{REGENERATE_COMMAND}`")
        actual = sha256_of(weights)
        if actual != self.sha256:
            raise WeightsError(
                f"weights file {weights} has sha256 {actual[:12]}…, but its model card expects "
                f"{self.sha256[:12]}…: the file is truncated, altered or from another run. "
                f"Regenerate it with `{REGENERATE_COMMAND}`"
            )

    def metrics_table(self, split: str = "test") -> str:
        """A Markdown table of the headline metrics of one split, one row per set."""
        report = self.metrics.get(split, {})
        rows = {**report.get("sets", {}), "overall": report.get("overall", {})} if report else {}
        cols = ("roc_auc", "accuracy", "precision", "recall", "f1", "eer", "ece")
        lines = [
            "| set | n | " + " | ".join(cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for name, m in rows.items():
            vals = " | ".join("–" if m.get(c) is None else f"{m[c]:.3f}" for c in cols)
            lines.append(f"| {name} | {m.get('n', '')} | {vals} |")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The card as Markdown, for people (generated; edit the JSON's source instead)."""
        arch = self.architecture
        train = self.training
        lo, hi = self.uncertain_band
        parts = [
            "# Model card: deepfake face detector",
            "",
            "_Generated by `detector.card` from `model_card.json`; do not edit by hand._",
            "",
            "## Model",
            f"- Architecture: {arch.get('summary', 'see model_card.json')}",
            f"- Parameters: {arch.get('parameters', '?'):,}" if isinstance(arch.get("parameters"), int) else "",
            f"- Input: {self.input_size}×{self.input_size} RGB face crop, framed at {self.face_margin}× the face box",
            f"- Weights: `{MODEL_FILE}`, sha256 `{self.sha256}`",
            f"- Scoring: a face's logit is the mean over these views of its crop: {describe(self.scoring_views)}",
            f"- Calibration: Platt scaling, sigmoid(logit / {self.temperature:.3f} + {self.bias:.3f}), fitted on validation data",
            f"- Decision threshold: {self.threshold:.3f} (chosen on validation data); "
            f"verdict \"uncertain\" for calibrated probabilities in [{lo:.3f}, {hi:.3f}]",
            "",
            "## Data",
        ]
        for name, info in self.data.get("sets", {}).items():
            parts.append(f"- `{name}`: {info}")
        parts += [
            "",
            "## Training",
            f"- Command: `{train.get('command', REGENERATE_COMMAND)}`",
            f"- Time: {train.get('minutes', '?')} minutes on {train.get('machine', '?')}",
            f"- Epochs: {train.get('epochs_run', '?')} (best at epoch {train.get('best_epoch', '?')}, "
            f"validation AUC {train.get('best_val_auc', float('nan')):.4f})"
            if isinstance(train.get("best_val_auc"), float) else "",
            "",
            "## Test metrics",
            "",
            self.metrics_table("test"),
            "",
            "## Validation metrics",
            "",
            self.metrics_table("val"),
            "",
        ]
        for title, block in self.extra.items():
            table = _runs_table(block)
            parts += [f"## {title}", "", table or f"```json\n{json.dumps(block, indent=2)}\n```", ""]
        parts += [
            "## Limits",
            "- Trained on DFDC face swaps and StyleGAN (v1) faces only; other generators and hand edits",
            "  are not in its training data. A high score is evidence, not proof; a low score does not",
            "  certify a photo as authentic.",
            "- Faces are found by a frontal-face detector: turned or tiny faces may be missed, and then the",
            "  whole image is scored.",
            "",
            "## Licences and provenance",
            "- DFDC images: DFDC terms (research use). FFHQ: CC BY-NC-SA 4.0. StyleGAN images: NVIDIA",
            "  non-commercial licence. The weights are derived from these data; use them accordingly.",
            "",
        ]
        return "\n".join(p for p in parts if p is not None)


def _cell(value: Any) -> str:
    """Three decimals at most, without trailing zeros (4.6 minutes, ROC-AUC 0.912)."""
    return f"{round(value, 3):g}" if isinstance(value, float) else str(value)


def _runs_table(block: Any) -> str | None:
    """A Markdown table of a report shaped ``{run: {field: value, ..., tested_set: {metric:
    value}}}`` (one row per run and tested set, the run's plain fields beside the set's
    metrics), as the cross-set report is; ``None`` for any other shape.
    """
    if not isinstance(block, dict) or not block:
        return None
    rows = []
    for run, fields in block.items():
        if not isinstance(fields, dict):
            return None
        plain = {k: v for k, v in fields.items() if not isinstance(v, dict)}
        for tested, metrics in fields.items():
            if isinstance(metrics, dict):
                if any(isinstance(v, (dict, list)) for v in metrics.values()):
                    return None
                rows.append((run, tested, plain, metrics))
    if not rows:
        return None
    plain_cols = list(dict.fromkeys(k for _, _, plain, _ in rows for k in plain))
    metric_cols = list(dict.fromkeys(k for *_, metrics in rows for k in metrics))
    lines = ["| run | tested on | " + " | ".join(plain_cols + metric_cols) + " |",
             "|---|---|" + "---|" * (len(plain_cols) + len(metric_cols))]
    for run, tested, plain, metrics in rows:
        cells = [_cell(plain.get(c, "–")) for c in plain_cols] + [_cell(metrics.get(c, "–")) for c in metric_cols]
        lines.append(f"| {run} | {tested} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


README_START = "<!-- metrics:start (generated from weights/model_card.json by `python -m detector card --update-readme`) -->"
README_END = "<!-- metrics:end -->"


def readme_metrics(card: ModelCard) -> str:
    """The README's metrics section: the test and validation tables of the card."""
    lo, hi = card.uncertain_band
    return "\n".join([
        README_START,
        "",
        f"Test split, scored on cached face crops; threshold {card.threshold:.3f} and calibration "
        f"(temperature {card.temperature:.3f}, bias {card.bias:.3f}) chosen on validation data; \"uncertain\" band [{lo:.3f}, {hi:.3f}].",
        "",
        card.metrics_table("test"),
        "",
        README_END,
    ])


def update_readme(readme: str | Path, card: ModelCard) -> bool:
    """Rewrites the metrics section of a README from the card.

    Returns:
        Whether the file changed.

    Raises:
        ValueError: the README has no metrics markers.
    """
    readme = Path(readme)
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no metrics section between {README_START!r} and {README_END!r}")
    new = text[:start] + readme_metrics(card) + text[end + len(README_END):]
    if new != text:
        readme.write_text(new)
    return new != text
