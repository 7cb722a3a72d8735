"""The model card beside the weights: what the model is, how it was measured, and its sha256.

``weights/model_card.json`` is the single source of truth: the pipeline reads the input
size, calibration temperature, decision threshold and uncertain band from it, the app's
About tab and the README's metrics table are generated from it, and loading the weights
verifies their sha256 against it, so a swapped or corrupted file is refused, not scored.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from detector import wording
from detector.views import CROP_AND_MIRROR, View, as_views, describe
from detector.wording import percent, percent_below

#: The folder of the shipped weights, next to the package.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MODEL_FILE = "model.keras"
CARD_FILE = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"

#: What a user runs to make the weights again; quoted in every integrity error.
REGENERATE_COMMAND = "python train.py"
#: What makes the LiteRT copy of the weights again (``detector.lite``).
LITE_COMMAND = "python -m detector lite"

#: The ``extra`` section holding the leave-one-source-out runs: one model per family of fakes
#: trained without that family's sets and tested on them, shaped ``{family: {"held_out":
#: "<set names>", "minutes": float, "epochs": int, <tested set>: {"roc_auc", "recall_fake",
#: "recall_real", "n"}}}``. ``ModelCard.unseen_summary`` reads it to the page.
UNSEEN_SECTION = "Unseen fakes (leave one source out)"

#: The ``extra`` section holding how faces edited as in an image editor, a method no training set
#: holds, are judged (``detector.edits``, ``python -m detector edited-faces``): ``{method: {what was
#: edited: {"faces", "ROC-AUC", "called fake", "uncertain", "called real"}}}``.
EDITED_SECTION = "Edited faces (made here, never trained on)"

#: The ``extra`` section holding how the test photos of each set are judged once changed as phones,
#: editors and messengers change photos (``python -m detector robustness``, ``robustness.card_block``):
#: ``{change: {"condition": the report's name, set: {"ROC-AUC", "reals called fake", "fakes called real",
#: "images"}}}``, one change being ``UNCHANGED``. ``ModelCard.changed_summary`` reads it to the page.
CHANGED_SECTION = "Photos changed after they were made"
UNCHANGED = "unchanged"
#: A change is named beside a verdict when, on some set, it raises the share of the other kind given
#: that verdict by at least this much: smaller rises are within the noise of a few hundred photos.
MIN_RISE = 0.05

#: What the top-level keys of an ``extra`` section name, where they are not runs: the video
#: calibration (``pooling.CARD_KEY``, not imported: it would bring SciPy into this light module;
#: tests/test_pooling.py renders it) is keyed by the way it pools a face's frames.
ROW_NAMES = {"Video calibration": "frames pooled by", EDITED_SECTION: "edit", CHANGED_SECTION: "change"}
#: A verdict -> the report's share of the other kind given it (``evaluation.report``).
OTHER_KIND_KEYS = {"fake": "real_called_fake", "real": "fake_called_real"}
#: A line said before a section's table, where its rows need one.
SECTION_INTROS = {EDITED_SECTION: (
    "Faces of other real photos laid onto real test photos with OpenCV (`python -m detector edited-faces`): "
    "blended in by Poisson editing (`poisson`), given the photo's colours and a soft edge (`colour paste`), or "
    "averaged half and half with the face they cover (`morph`). ROC-AUC against the same faces unedited; the "
    "shares are of the edited faces, with each face's verdict as the page gives it."),
    CHANGED_SECTION: (
    "The test photos of each set changed as phones, editors and messengers change photos (`python -m detector "
    "robustness`; `condition` names it in that report): skin smoothed by an edge-preserving filter, made black and "
    "white, halved and saved again as JPEG, enlarged as a screenshot is. The shares are of the photos of each kind, "
    "with each photo's verdict as the page gives it.")}

#: Where each shared set's images come from and under which terms (``../shared/data/README.md``).
PROVENANCE = {
    "dfdc_faces": "Deepfake Detection Challenge videos, DFDC terms (research use, no redistribution)",
    "ffhq_stylegan": "FFHQ photos, CC BY-NC-SA 4.0 (each keeps its Flickr licence); StyleGAN images, NVIDIA's "
                     "non-commercial licence",
    "lfw_faceswap": "LFW press photos (research use; the photos keep their owners' copyright) and face swaps made "
                    "from them",
    "ecuador_flux_lora": "news photos and interview frames of four Ecuadorian politicians (research use; owners' "
                         "copyright) and FLUX.1-dev LoRA images of them (FLUX.1-dev non-commercial licence)",
    "sfhq_t2i": "SFHQ-T2I text-to-image portraits (SDXL, FLUX.1), MIT",
    "utkface_wild_crops": "UTKFace web photos (research use; owners' copyright)",
}

#: Arguments of a training command that name this machine's folders: a card leaves them out.
_MACHINE_ARGUMENTS = ("--out", "--cache-dir", "--work-dir")
#: Configuration fields that name this machine's folders: a card leaves them out.
_MACHINE_FIELDS = ("out_dir", "cache_dir", "work_dir")


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
        lite_sha256: Hex digest of ``model.tflite``, the same network for LiteRT
            (``detector.lite``) that the ``Detector`` scores on and the calibration is
            fitted through; empty when there is none, and scoring then runs on Keras.
        lite_quantization: How that copy is quantized (``lite.QUANTIZATION``); empty for an
            all-float32 copy.
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
    lite_sha256: str = ""
    lite_quantization: str = ""
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
        fields = asdict(self)
        fields["training"] = without_machine_paths(fields["training"])  # a card travels: no local folders
        path.write_text(json.dumps(fields, indent=2, sort_keys=False) + "\n")
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

    def verify(self, weights: str | Path, sha256: str | None = None) -> None:
        """Checks that ``weights`` is the file this card describes.

        Args:
            weights: ``model.keras``, or ``model.tflite`` with ``sha256=card.lite_sha256``.
            sha256: The digest expected; the Keras weights' by default.

        Raises:
            WeightsError: the file is missing, or its sha256 differs from the card's.
        """
        weights = Path(weights)
        expected = self.sha256 if sha256 is None else sha256
        regenerate = REGENERATE_COMMAND if sha256 is None else LITE_COMMAND
        if not weights.is_file():
            raise WeightsError(f"weights file {weights} is missing; regenerate it with `{regenerate}`")
        actual = sha256_of(weights)
        if actual != expected:
            raise WeightsError(
                f"weights file {weights} has sha256 {actual[:12]}…, but its model card expects "
                f"{expected[:12]}…: the file is truncated, altered or from another run. "
                f"Regenerate it with `{regenerate}`"
            )

    def trained_on_sentence(self) -> str:
        """Which sources the model was trained on, in one sentence (from ``data["sets"]``).

        A set's entry may carry a ``"description"`` (e.g. "DFDC face swaps"), shown beside
        its name.
        """
        sets = self.data.get("sets", {})
        if not sets:
            return "The card does not record what the model was trained on."
        names = [f"{name} ({info['description']})" if isinstance(info, dict) and info.get("description") else name
                 for name, info in sets.items()]
        images = sum(n for info in sets.values() if isinstance(info, dict)
                     for n in (info.get("train") or {}).values() if isinstance(n, int))
        return f"Trained on {f'{images:,} images from ' if images else ''}{_and_list(names)}."

    def unseen_summary(self) -> str:
        """What the model was trained on and how it did on kinds of fake it never saw, in one
        or two plain sentences for the page, next to the verdict.

        The second sentence gives, per family of fakes, the ROC-AUC on its held-out sets of
        the run trained without them (``extra[UNSEEN_SECTION]``); without that section it
        says no such figures are recorded.
        """
        aucs_of: dict[str, list[tuple[str, float]]] = {}
        for family, source, row in self.unseen_rows():
            aucs_of.setdefault(family, []).append((source, row["roc_auc"]))
        unseen = []
        for family, aucs in aucs_of.items():
            if len(aucs) == 1:  # the family's name says what it is; the card's table names its set
                unseen.append(f"{aucs[0][1]:.2f} on {family}")
            else:
                unseen.append(f"on {family}, " + _and_list([f"{auc:.2f} ({s})" for s, auc in aucs]))
        edited = f" {sentence}" if (sentence := self.edited_summary()) else ""
        if not unseen:
            return (f"{self.trained_on_sentence()} No figures on kinds of fake it was never trained on are "
                    f"recorded for these weights: on other generators and edits, its verdicts are untested.{edited}")
        recipe = "the same recipe" + (f" ({note})" if (note := self.unseen_recipe_note()) else "")
        return (f"{self.trained_on_sentence()} Tested on kinds of fake left out of its training (one family at "
                f"a time), {recipe} scored ROC-AUC {'; '.join(unseen)}, where 0.5 is chance and 1 perfect.{edited}")

    def edited_summary(self) -> str:
        """How faces edited as in an image editor were judged (``extra[EDITED_SECTION]``), in a
        sentence for the page; empty without that section.

        E.g. "Faces pasted or morphed into real photos here (edits it never trained on):
        ROC-AUC 0.74-0.81, and 50-57% of them called real."
        """
        rows = [row for block in (self.extra.get(EDITED_SECTION) or {}).values() if isinstance(block, dict)
                for row in block.values() if isinstance(row, dict)]
        aucs = [row["ROC-AUC"] for row in rows if isinstance(row.get("ROC-AUC"), float)]
        real = [row["called real"] for row in rows if isinstance(row.get("called real"), float)]
        if not aucs or not real:
            return ""

        def span(values: list[float], fmt) -> str:
            low, high = fmt(min(values)), fmt(max(values))
            return low if low == high else f"{low.rstrip('%')}–{high}"

        return (f"Faces pasted or morphed into real photos here (edits it never trained on): ROC-AUC "
                f"{span(aucs, lambda v: f'{v:.2f}')}, and {span(real, percent)} of them called real.")

    def changed_summary(self, verdict: str) -> str:
        """The changes to a photo after it was made that give ``verdict`` to the other kind more
        often (``extra[CHANGED_SECTION]``), in a sentence for the page beside that verdict; empty
        when no change raises that share by ``MIN_RISE`` on any set, or without the section.

        E.g. for "fake": "Real photos changed after they were taken are called fake more often:
        skin smoothed (a beauty mode, retouching), 31% of lfw_faceswap's real test photos (4%
        unchanged)." Each change is given with the set on which it raised the share most.

        Args:
            verdict: ``"fake"`` or ``"real"``, the verdict given.
        """
        key = {"fake": "reals called fake", "real": "fakes called real"}[verdict]
        block = self.extra.get(CHANGED_SECTION) or {}
        before = {name: row.get(key) for name, row in (block.get(UNCHANGED) or {}).items() if isinstance(row, dict)}
        named = []
        for change, rows in block.items():
            if change == UNCHANGED:
                continue
            rises = [(row[key] - before[name], name, row[key]) for name, row in rows.items()
                     if isinstance(row, dict) and isinstance(row.get(key), float)
                     and isinstance(before.get(name), float)]
            if rises and (most := max(rises))[0] >= MIN_RISE:
                rise, name, share = most
                named.append((rise, change, f"{percent(share)} of {name}'s", f"({percent(before[name])} unchanged)"))
        if not named:
            return ""
        named.sort(reverse=True)
        photos = f"{'real' if verdict == 'fake' else 'fake'} test photos "  # said once, after the first share
        who = "Real photos changed after they were taken" if verdict == "fake" else "Fakes changed after they were made"
        return f"{who} are called {verdict} more often: " + "; ".join(
            f"{change}, {share} {photos if i == 0 else ''}{before}"
            for i, (_, change, share, before) in enumerate(named)) + "."

    def given_to_the_other_kind(self, verdict: str) -> dict[str, float]:
        """The share of each set's test faces of the other kind that got ``verdict``
        (``evaluation.report``'s ``real_called_fake`` or ``fake_called_real``). Sets without
        that kind, and the pools of one-label sets (which repeat a set's faces), are left out.

        Args:
            verdict: ``"fake"`` or ``"real"``.
        """
        key = OTHER_KIND_KEYS[verdict]
        rows = self.metrics.get("test", {}).get("sets", {})
        return {name: m[key] for name, m in rows.items() if " + " not in name and m.get(key) is not None}

    def also_given(self, verdict: str) -> str:
        """``wording.also_given`` on the card's test figures: how often a real face is called
        fake, or a fake real, for an answer that gives that verdict."""
        return wording.also_given(verdict, self.given_to_the_other_kind(verdict))

    def verdict_caveats(self, verdict: str) -> list[str]:
        """What the page says beside a verdict, so that it is read for what it is worth: how often
        the other kind gets it (``also_given``), and which changes to a photo make that more often
        (``changed_summary``); the sentences the card has figures for.

        Args:
            verdict: ``"fake"`` or ``"real"``.
        """
        return [sentence for sentence in (self.also_given(verdict), self.changed_summary(verdict)) if sentence]

    def unseen_recipe_changes(self) -> list[str]:
        """The settings in which any leave-one-source-out run differs from the recipe it was
        reported for (``recipe_differs``, written by ``loso.leave_one_out_report``)."""
        runs = (self.extra.get(UNSEEN_SECTION) or {}).values()
        return sorted({k for run in runs if isinstance(run, dict) for k in run.get("recipe_differs") or []})

    def unseen_recipe_note(self) -> str:
        """Which leave-one-source-out runs were trained before the recipe changed, and how it
        changed (``CHANGED_SETTINGS``), in words; empty when every run used the recipe."""
        runs = {f: run for f, run in (self.extra.get(UNSEEN_SECTION) or {}).items() if isinstance(run, dict)}
        notes = []
        for change in self.unseen_recipe_changes():  # each change its own runs: they need not be the same
            older = [family for family, run in runs.items() if change in (run.get("recipe_differs") or [])]
            newer = [family for family in runs if family not in older]
            which = _and_list(older) if len(older) <= len(newer) else f"every run but {_and_list(newer)}" if newer \
                else "every run"
            notes.append(f"{which} trained before {CHANGED_SETTINGS.get(change, f'its {change} changed')}")
        return "; ".join(notes)

    def unseen_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(family, held-out source, its test metrics)`` of the leave-one-source-out runs
        (``extra[UNSEEN_SECTION]``), for the sources each run held out: a set, or a pool of
        one-label sets (``"a + b"``); figures on sets a run trained on are not unseen ones."""
        rows = []
        for family, run in (self.extra.get(UNSEEN_SECTION) or {}).items():
            held_out = set(re.split(r"[,+\s]+", str(run.get("held_out", ""))))
            rows += [(family, source, row) for source, row in run.items() if isinstance(row, dict)
                     and set(source.split(" + ")) <= held_out and isinstance(row.get("roc_auc"), (int, float))]
        return rows

    def unseen_table(self, with_runs: bool = False) -> str | None:
        """The leave-one-source-out figures as a short Markdown table; ``None`` without them.

        Args:
            with_runs: Also give each row's number of test faces and its run's epochs and
                minutes (the card has room for them; the README keeps the short table).
        """
        rows = self.unseen_rows()
        if not rows:
            return None
        runs = self.extra[UNSEEN_SECTION]
        heads = ["kind of fake held out", "tested on", "ROC-AUC", "fakes called fake", "reals called fake",
                 *(["test faces", "epochs", "minutes"] if with_runs else [])]
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for family, source, row in rows:
            cells = [row.get("recall_fake"), None if row.get("recall_real") is None else 1 - row["recall_real"]]
            line = (f"| {family} | {source} | {row['roc_auc']:.3f} | "
                    + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
            if with_runs:
                line += "".join(f" {_cell(v)} |" for v in (row.get("n", "–"), runs[family].get("epochs", "–"),
                                                          runs[family].get("minutes", "–")))
            lines.append(line)
        return "\n".join(lines)

    def unseen_intro(self) -> str:
        """The sentence that says how the leave-one-source-out figures were made."""
        return (f"Kinds of fake left out of training, one run each (`python train.py --leave-one-out`, "
                f"{_leave_one_out_schedule(self)}), tested on the held-out test split with that run's own threshold:")

    def _smoothing_limit(self) -> str:
        """The card's limit on smoothed skin, which depends on whether its recipe smoothed
        training crops (``AugmentConfig.smooth_prob``): without, real faces smoothed by a
        beauty mode read as made; with, smoothed fakes pass as real more often."""
        smoothed = self.training.get("config", {}).get("augment", {}).get("smooth_prob", 0.0)
        where = ("“Photos changed after they were made” above" if CHANGED_SECTION in self.extra
                 else "measured in the project's docs/robustness.md")
        if smoothed:
            return (f"- Its training smoothed {percent(smoothed)} of the crops, real and fake alike, as beauty modes "
                    f"and retouching smooth skin, so that smooth skin is not taken for a made face; in exchange, "
                    f"smoothed fakes pass as real more often than with weights trained without it ({where}).")
        return f"- A real face whose skin a beauty mode or retouching smoothed is often called fake ({where})."

    def metrics_table(self, split: str = "test") -> str:
        """A Markdown table of the headline metrics of one split, one row per set."""
        return verdicts_table(self.metrics.get(split, {}))

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
            "## What it has seen",
            self.unseen_summary(),
            "",
            "## Model",
            f"- Architecture: {arch.get('summary', 'see model_card.json')}",
            f"- Parameters: {arch.get('parameters', '?'):,}" if isinstance(arch.get("parameters"), int) else "",
            f"- Input: {self.input_size}×{self.input_size} RGB face crop, framed at {self.face_margin}× the face box",
            f"- Weights: `{MODEL_FILE}`, sha256 `{self.sha256}`",
            *([f"- Scored on: `model.tflite`, the network for LiteRT's CPU runtime "
               f"({self.lite_quantization or 'float32'}; `{LITE_COMMAND}`), sha256 `{self.lite_sha256}`"]
              if self.lite_sha256 else []),
            f"- Scoring: a face's logit is the mean over these views of its crop: {describe(self.scoring_views)}",
            f"- Calibration: Platt scaling, sigmoid(logit / {self.temperature:.3f} + {self.bias:.3f}), fitted on validation data"
            f"{' scored through `model.tflite`' if self.lite_sha256 else ''}",
            f"- Decision threshold: fake probability {self.threshold:.3f} ({percent(self.threshold)} as the page "
            f"writes it; chosen on validation data); verdict \"uncertain\" for fake probabilities in "
            f"[{lo:.3f}, {hi:.3f}) ({percent(lo)} to {percent_below(hi)} as written)",
            "",
            "## Data",
            "",
            "Images per set, split and label (\"no_face\": images in which no face was found, left out):",
            "",
            _counts_table(self.data.get("sets", {})),
            "",
            *([f"Training sources (each balanced real against fake): "
               + "; ".join(f"`{name}` {how}" for name, how in self.data["sources"].items()), ""]
              if self.data.get("sources") else []),
            "## Training",
            f"- Command: `{without_machine_paths(train).get('command', REGENERATE_COMMAND)}`",
            f"- Time: {train.get('minutes', '?')} minutes on {train.get('machine', '?')}",
            f"- Epochs: {train.get('epochs_run', '?')} (best at epoch {train.get('best_epoch', '?')}, "
            f"validation AUC {train.get('best_val_auc', float('nan')):.4f})"
            if isinstance(train.get("best_val_auc"), float) else None,
            *([f"- Networks, trained one after the other: " + "; ".join(
                f"{m['input_size']} px, {m['epochs_run']} epochs (best at epoch {m['best_epoch']}, validation AUC "
                f"{m['best_val_auc']:.4f}), {m['minutes']} minutes" for m in train["members"])]
              if train.get("members") else []),
            *([f"- Shipped: {fusion['shipped']} (the pair's validation AUC {fusion['fused_val_auc']:.4f}; a network "
               "ships alone when it beats the pair)"] if (fusion := train.get("fusion")) else []),
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
            if title == UNSEEN_SECTION and (table := self.unseen_table(with_runs=True)):
                parts += [f"## {title}", "", self.unseen_intro(), "", table, ""]
                continue
            table = _runs_table(block, ROW_NAMES.get(title, "run"))
            intro = [SECTION_INTROS[title], ""] if title in SECTION_INTROS else []
            parts += [f"## {title}", "", *intro, table or f"```json\n{json.dumps(block, indent=2)}\n```", ""]
        parts += [
            "## Limits",
            "- Only the sets above are in its training data; other generators and hand edits are not.",
            "  A high score is evidence, not proof; a low score does not certify a photo as authentic.",
            "- Faces are found by a face detector: turned or tiny faces may be missed, and a photo in which",
            "  no face is found gets no verdict (\"no face\").",
            self._smoothing_limit(),
            "",
            "## Licences and provenance",
            *[f"- `{name}`: {PROVENANCE.get(name, 'see the set’s own licence')}" for name in self.data.get("sets", {})],
            "- The weights are derived from these data; use them accordingly.",
            *(["- The network started from ImageNet MobileNetV2 weights (Apache-2.0, `third_party/`);",
               "  ImageNet's terms apply to what they learned."]
              if self.architecture.get("backbone") == "mobilenet_v2" else []),
            "",
        ]
        return "\n".join(p for p in parts if p is not None)


def write_section(weights_dir: str | Path | None, title: str, block: dict[str, Any]) -> ModelCard:
    """Sets the section ``title`` of the card's ``extra`` to ``block`` and saves the card, once
    the weights beside it are the ones it names (a measurement belongs to its weights).

    Args:
        weights_dir: The weights folder; the shipped ``weights/`` by default.
        title: The section's title, e.g. ``EDITED_SECTION``.
        block: What it holds (rendered by ``to_markdown``).

    Returns:
        The saved card.

    Raises:
        WeightsError: the weights are missing or not the card's.
    """
    folder = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    card = ModelCard.load(folder)
    card.verify(folder / MODEL_FILE)
    updated = replace(card, extra={**card.extra, title: block})
    updated.save(folder)
    return updated


#: How a recipe setting that changed since a leave-one-source-out run reads in the card:
#: "... trained before the second network was added" (other settings: "before its X changed").
CHANGED_SETTINGS = {"second_size": "the second network was added",
                    "augment.smooth_prob": "smoothing was added to the augmentation"}

#: What a run did about a setting added after its card was written: a card without
#: ``second_size`` trained one network, one without ``augment.smooth_prob`` smoothed no crop.
SETTINGS_BEFORE_THEY_EXISTED: dict[str, Any] = {"second_size": None, "augment": {"smooth_prob": 0.0}}


def config_differences(config: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """The settings in which a card's training configuration differs from another, as cards
    write them: every setting ``config`` kept (a card keeps the recipe, not the machine's
    folders: ``ModelCard.save``) but the time budget and the log's verbosity, and the sets
    by name (``"sets"``); within a group of settings, the one that differs
    (``"augment.smooth_prob"``). A setting added after a card was written reads as what its run did
    without it (``SETTINGS_BEFORE_THEY_EXISTED``). A budget that stopped a run early shows in
    its epochs, not here.

    Args:
        config: A card's ``training["config"]``.
        want: The configuration to compare with, as a card would write it.

    Returns:
        The names of the differing settings, in ``config``'s order.
    """
    have = {**SETTINGS_BEFORE_THEY_EXISTED, **config}
    have.update({k: {**v, **config[k]} for k, v in SETTINGS_BEFORE_THEY_EXISTED.items()
                 if isinstance(v, dict) and k in config})
    differ = []
    for k, v in have.items():
        if k not in want or k in ("sets", "verbose", "max_minutes") or v == want[k]:
            continue
        if isinstance(v, dict) and isinstance(want[k], dict):  # "augment.smooth_prob", not "augment"
            differ += [f"{k}.{sub}" for sub in {**v, **want[k]} if v.get(sub) != want[k].get(sub)]
        else:
            differ.append(k)
    if [Path(s).name for s in have.get("sets", [])] != [Path(s).name for s in want.get("sets", [])]:
        differ.append("sets")
    return differ


def carry_unseen(card: ModelCard, earlier: ModelCard) -> ModelCard:
    """``card`` with the leave-one-source-out runs of ``earlier`` (the card of the weights it
    replaces), each run's ``recipe_differs`` joined by the settings in which the earlier
    recipe differs from this one: those runs take hours, and their figures stay true of the
    recipe they trained, which the card then names (``unseen_recipe_note``).

    Args:
        card: The new weights' card.
        earlier: The card whose ``extra[UNSEEN_SECTION]`` is carried.

    Raises:
        ValueError: ``earlier`` has no leave-one-source-out runs.
    """
    runs = earlier.extra.get(UNSEEN_SECTION)
    if not runs:
        raise ValueError(f"the earlier card has no {UNSEEN_SECTION!r} section to carry "
                         f"(its sections: {list(earlier.extra)})")
    changed = config_differences(earlier.training.get("config", {}), card.training.get("config", {}))
    carried = {family: {**run, "recipe_differs": list(dict.fromkeys([*run.get("recipe_differs", []), *changed]))}
               for family, run in runs.items()}
    return replace(card, extra={**card.extra, UNSEEN_SECTION: carried})


def _and_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def without_machine_paths(training: dict[str, Any]) -> dict[str, Any]:
    """A card's ``training`` entry without this machine's folders.

    The command loses ``--out``, ``--cache-dir`` and ``--work-dir`` with their values, and the
    configuration those fields; any other absolute path (``--sets /data/x``, the configured
    sets) is cut to its last part, the set's name, by which ``python -m detector calibrate``
    finds it again.

    Args:
        training: ``ModelCard.training``.

    Returns:
        A copy without them.
    """
    out = dict(training)
    if "command" in out:
        words, kept = shlex.split(out["command"]), []
        skip = False
        for word in words:
            flag = word.split("=", 1)[0]
            if skip and not word.startswith("--"):
                continue  # a value of a dropped flag (--out takes one, but be safe)
            skip = flag in _MACHINE_ARGUMENTS
            if not skip:
                kept.append(_path_name(word))
        out["command"] = shlex.join(kept)
    if isinstance(out.get("config"), dict):
        out["config"] = {k: _path_name(v) for k, v in out["config"].items() if k not in _MACHINE_FIELDS}
    return out


def _path_name(value: Any) -> Any:
    """An absolute path's last part (lists element-wise); any other value as it is."""
    if isinstance(value, list):
        return [_path_name(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value)):
        return Path(value).name
    return value


def _counts_table(sets: dict[str, Any]) -> str:
    """A Markdown table of ``data["sets"]``: one row per set, one column per split and label
    (``{"train": {"real": 9811, ...}}`` becomes a "train real" column)."""
    rows = {}
    for name, info in sets.items():
        flat = {}
        for key, value in (info.items() if isinstance(info, dict) else [("images", info)]):
            if isinstance(value, dict):
                flat.update({f"{key} {k}": v for k, v in value.items()})
            elif key != "description":
                flat[key] = value
        rows[name] = flat
    cols = list(dict.fromkeys(c for flat in rows.values() for c in flat))
    lines = ["| set | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, flat in rows.items():
        cells = [f"{v:,}" if isinstance(v, int) else _cell(v) for v in (flat.get(c, "–") for c in cols)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts_table(report: dict[str, Any]) -> str:
    """A report's headline figures per set, as a Markdown table: ROC-AUC, the share of real
    faces called fake (the error to make least), the shares of fakes called fake and (where
    the report counts it) called real, the rest being uncertain, ECE, and
    where they are known the images without a face and the share of Grad-CAM heat inside
    the face box.

    Args:
        report: ``evaluation.report``'s output, from the card or ``python -m detector
            evaluate`` (whose rows count actual verdicts and faces not found).

    Returns:
        The table; empty when the report has no sets.
    """
    rows = {**report.get("sets", {}), "overall": report.get("overall", {})} if report.get("sets") else {}

    def share(m: dict[str, Any], verdict_key: str, recall_key: str, called_fake: bool) -> float | None:
        if verdict_key in m:
            return m[verdict_key]
        recall = m.get(recall_key)
        return None if recall is None else (1 - recall if called_fake else recall)

    columns = {
        "ROC-AUC": lambda m: m.get("roc_auc"),
        "reals called fake": lambda m: share(m, "real_called_fake", "recall_real", True),
        "fakes called fake": lambda m: share(m, "fake_called_fake", "recall_fake", False),
        "fakes called real": lambda m: m.get("fake_called_real"),  # what a "real" answer hides
        "ECE": lambda m: m.get("ece"),
    }
    if all(m.get("fake_called_real") is None for m in rows.values()):
        del columns["fakes called real"]  # a report from before the count
    if any("no_face" in m for m in rows.values()):
        columns["no face"] = lambda m: m.get("no_face")
    if any(m.get("heat_in_face") is not None for m in rows.values()):
        columns["Grad-CAM heat in face box"] = lambda m: m.get("heat_in_face")
    lines = ["| set | n | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, m in rows.items():
        cells = []
        for get in columns.values():
            value = get(m)
            cells.append("–" if value is None else str(value) if isinstance(value, int) else f"{value:.3f}")
        lines.append(f"| {name} | {m.get('n', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """Three decimals at most, without trailing zeros (4.6 minutes, ROC-AUC 0.912); a list's
    items joined, or "–" when empty."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "–"
    return f"{round(value, 3):g}" if isinstance(value, float) else str(value)


def _runs_table(block: Any, row_name: str = "run") -> str | None:
    """A Markdown table of a report shaped ``{run: {field: value, ..., tested_set: {metric:
    value}}}`` (one row per run and tested set, the run's plain fields beside the set's
    metrics), as the cross-set report is; a single run of unlike parts reads down as
    ``field | value``;
    ``None`` for any other shape.

    Args:
        block: The report.
        row_name: What the report's top-level keys are (the first column's header).
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
    if len(rows) == 1 or len(block) == 1 and len({tuple(metrics) for *_, metrics in rows}) > 1:
        # One run whose parts are not the same figures on several sets (the video calibration:
        # what it was fitted on, then its test clips' errors): a column per field would squeeze
        # each into a few letters on the page, so it reads down, a field per line, each part
        # under its name in italics.
        run, plain = rows[0][0], rows[0][2]
        lines = ["| field | value |", "|---|---|", f"| {row_name} | {_cell(run)} |",
                 *(f"| {k} | {_cell(v)} |" for k, v in plain.items())]
        for _, tested, _, metrics in rows:
            lines += [f"| *{tested}* | |", *(f"| {k} | {_cell(v)} |" for k, v in metrics.items())]
        return "\n".join(lines)
    plain_cols = list(dict.fromkeys(k for _, _, plain, _ in rows for k in plain))
    metric_cols = list(dict.fromkeys(k for *_, metrics in rows for k in metrics))
    lines = [f"| {row_name} | tested on | " + " | ".join(plain_cols + metric_cols) + " |",
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
        f"(temperature {card.temperature:.3f}, bias {card.bias:.3f}) chosen on validation data; \"uncertain\" band [{lo:.3f}, {hi:.3f}).",
        "",
        card.metrics_table("test"),
        "",
        *([card.unseen_intro(), "", table, ""] if (table := card.unseen_table()) else []),
        README_END,
    ])


def _leave_one_out_schedule(card: ModelCard) -> str:
    """"3 epochs" or "3-5 epochs": how long the leave-one-source-out runs trained, and which
    settings of the recipe changed since, if any."""
    runs = [run for run in card.extra.get(UNSEEN_SECTION, {}).values() if isinstance(run, dict)]
    epochs = sorted({run["epochs"] for run in runs if isinstance(run.get("epochs"), int)})
    # Two networks' runs record "3 + 3": each network's epochs.
    pairs = sorted({run["epochs"] for run in runs if isinstance(run.get("epochs"), str)})
    schedule = ", ".join([*([f"{epochs[0]} epochs" if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]} epochs"]
                            if epochs else []), *(f"{e} epochs for two networks" for e in pairs)])
    return (schedule or "a shorter schedule") + (f"; {note}" if (note := card.unseen_recipe_note()) else "")


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
