"""How verdicts and probabilities are written for people: one wording for the overlay's tags,
the page's table, status and bars, and the CLI's table.

One quantity everywhere: the calibrated probability that a face is fake, written as a whole
percentage rounded half up, as Gradio's ``Label`` rounds its bars. A face whose JSON says
``"fake_probability": 0.2951`` reads "30% fake" on its tag, in its table row and on its bar;
"real 70%" (how sure it is real) is never written. Imports nothing heavy.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping

#: The image's label when no face was found: the detector judges faces, so such a photo
#: gets no fake/real verdict (its whole-image score is secondary information).
NO_FACE = "no face"

#: Why an image is labelled ``NO_FACE``.
NO_FACE_REASON = "no face found: the detector judges faces, so this photo gets no verdict"

#: Why a face whose fake probability falls in the card's "uncertain" band gets no verdict: the
#: band reaches from even odds up to a real-first threshold, so "close to the threshold" would
#: not be true of all of it.
BAND_REASON = "fake probability in the uncertain band"

#: Why a face cut off by the photo's edge gets no verdict (``faces.MAX_EDGE_SHIFT``).
EDGE_REASON = "face cut off by the photo's edge"


def percent(probability: float) -> str:
    """``0.2951 -> "30%"``: a whole percentage, rounded half up (JavaScript's ``Math.round``,
    which Gradio's bars use, so a bar and a table row never differ by one). The verdicts'
    boundaries sit on half percents (``evaluation.on_half_percent``), which round up: a
    threshold of 0.885 reads "89%", as does every face it calls fake."""
    return f"{math.floor(probability * 100 + 0.5 + 1e-9):d}%"  # 1e-9: (k + 0.5) / 100 is inexact


def percent_below(probability: float) -> str:
    """The highest percentage ``percent`` writes for a probability under ``probability``:
    ``0.885 -> "88%"``, the top of an "uncertain" band that ends where "fake" begins at "89%"."""
    return f"{math.ceil(probability * 100 + 0.5 - 1e-9) - 1:d}%"  # 1e-9: as in ``percent``


def verdict(probability: float, threshold: float, band: tuple[float, float]) -> str:
    """``"fake"``, ``"real"`` or ``"uncertain"`` for a calibrated fake probability: the rule
    ``verdict_rule`` writes, kept beside it so that the two cannot part.

    Args:
        probability: The calibrated probability that the face is fake.
        threshold: Fake from ``probability >= threshold``.
        band: The "uncertain" band ``(low, high)``: ``low`` included, ``high`` excluded, so that
            both edges read as the sentence says (on half percents, ``low = 0.495`` reads "50%"
            and ``high = 0.885`` "89%", the first "fake" percentage).
    """
    lo, hi = band
    if lo <= probability < hi:
        return "uncertain"
    return "fake" if probability >= threshold else "real"


def verdict_rule(threshold: float, band: tuple[float, float]) -> str:
    """The rule a face's verdict follows, in a sentence, e.g. ``"A face is called fake from a
    fake probability of 89%; between 50% and 88% it is uncertain."``

    Args:
        threshold: The calibrated fake probability from which a face is called fake.
        band: The "uncertain" band ``(low, high)``, high excluded; an empty one is not mentioned.
    """
    lo, hi = band
    rule = f"A face is called fake from a fake probability of {percent(threshold)}"
    return rule + (f"; between {percent(lo)} and {percent_below(hi)} it is uncertain." if hi > lo else ".")


def also_given(verdict: str, rates: Mapping[str, float], items: str = "faces") -> str:
    """How often the other kind gets a verdict, for the answer that gives it: the set whose
    test ``items`` of the other kind got it most, and the most of any other; empty without
    rates. A "fake" is then read knowing how often real photos get it, a "real" knowing how
    often fakes do.

    E.g. ``also_given("fake", {"ffhq_stylegan": 0.123, "dfdc_faces": 0.01})``: "Real faces are
    called fake too: 12% of the real test faces of ffhq_stylegan, and at most 1% of each other
    set's (the About tab lists them)." (It names the verdict, as a page of several photos
    gives several.)

    Args:
        verdict: ``"fake"`` or ``"real"``, the verdict given.
        rates: Set name -> share of its test ``items`` of the other kind given ``verdict``.
        items: What was scored: ``"faces"`` (photos) or ``"clips"``.

    Raises:
        ValueError: ``verdict`` is neither.
    """
    if verdict not in ("fake", "real"):
        raise ValueError(f"verdict must be 'fake' or 'real', not {verdict!r}")
    other = "real" if verdict == "fake" else "fake"
    ranked = sorted(rates.items(), key=lambda item: -item[1])
    if not ranked:
        return ""
    (worst, rate), others = ranked[0], [r for _, r in ranked[1:]]
    if percent(rate) == "0%":
        return f"None of the {other} test {items} of its {len(ranked)} sets with {other} ones were called {verdict}."
    rest = f", and at most {percent(max(others))} of each other set's" if others else ""
    return (f"{other.capitalize()} {items} are called {verdict} too: {percent(rate)} of the {other} test {items} "
            f"of {worst}{rest} (the About tab lists them).")


def face_phrase(label: str, probability: float, number: int | None = None) -> str:
    """A face's verdict and fake probability in a few words, e.g. ``"2: real (30% fake)"``.

    Args:
        label: The face's verdict: ``"fake"``, ``"real"`` or ``"uncertain"``.
        probability: Its calibrated fake probability.
        number: Its number in the photo (the order of the table and the overlay), if any.
    """
    text = f"{label} ({percent(probability)} fake)"
    return text if number is None else f"{number}: {text}"


def reasons_summary(uncertain: list[tuple[int, str | None]], numbered: bool = True) -> str | None:
    """Why a photo's faces are uncertain, one clause per distinct reason.

    Args:
        uncertain: ``(face number, reason)`` for every uncertain face of a photo, in order.
        numbered: Name the faces (False for a photo with a single face).

    Returns:
        For example ``"face 2: fake probability in the uncertain band; faces 3 and 4:
        face too dark, flat or blurred to judge"``, or ``None`` when no face is uncertain.
    """
    grouped: dict[str, list[int]] = {}
    for number, reason in uncertain:
        grouped.setdefault(reason or "no reason recorded", []).append(number)
    clauses = []
    for reason, numbers in grouped.items():
        if not numbered:
            clauses.append(reason)
        elif len(numbers) == 1:
            clauses.append(f"face {numbers[0]}: {reason}")
        else:
            who = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
            clauses.append(f"faces {who}: {reason}")
    return "; ".join(clauses) or None


def declared_phrase(declared: dict[str, str]) -> str:
    """What a file's metadata says of its making (``detector.provenance``), never the network's
    verdict: ``"the file's metadata says it was generated by AI (IPTC digital source type
    trainedAlgorithmicMedia, in its C2PA manifest; not verified)"``."""
    return f"the file's metadata says it was {declared['says']} ({declared['evidence']}; not verified)"


def declared_note(declared: dict[str, str] | None) -> str | None:
    """The page's sentence on what the file declares (``declared_phrase``), apart from the verdict;
    ``None`` when it declares nothing."""
    if not declared:
        return None
    phrase = declared_phrase(declared)
    return f"{phrase[:1].upper()}{phrase[1:]}. The verdict does not read metadata, which is easily removed or forged."


def record_cells(record: dict) -> list[str]:
    """A scored input's verdict, highest fake probability (a whole percent), number of faces
    and details (``record_details``): the cells after the path of the CLI's table, its CSV and
    the page's Several photos tab. An input that could not be scored reads "error"."""
    p = record["fake_probability"]
    items = record["tracks"] if record["kind"] == "video" else record["faces"]
    return [record["label"] or "error", "" if p is None else percent(p), "" if record["error"] else str(len(items)),
            record_details(record)]


def record_details(record: dict) -> str:
    """A scored input's details in one line, as the CLI's table and the page's Photos tab
    write them: each face's verdict and fake probability (with the reason when it is
    uncertain), why no face was judged, or the error; for a video, each face followed and when
    it was seen; and what the file's metadata says of generative AI, when it says anything.

    Args:
        record: The input's record, as ``python -m detector predict --json`` prints it.
    """
    if record["error"]:
        return record["error"]
    if record["kind"] == "video":
        details = [_video_details(record)]
    else:
        details = [_face_details(i, face) for i, face in enumerate(record["faces"], 1)] or [record.get("reason") or ""]
    if record.get("declared"):
        details.append(declared_phrase(record["declared"]))
    return "; ".join(filter(None, details))


def _face_details(number: int, face: dict) -> str:
    """``"2: uncertain (45% fake) - fake probability in the uncertain band"``."""
    phrase = face_phrase(face["label"], face["fake_probability"], number)
    return f"{phrase} - {face['reason']}" if face.get("reason") else phrase


def _video_details(record: dict) -> str:
    """``"10.0 s, 20 frames: 1: real (14% fake) at 0-9.5 s; 2: fake (91% fake) at 0-9.5 s"``,
    and the note."""
    tracks = "; ".join(f"{_face_details(t['id'], {**t, 'reason': None})} at {t['first_s']:g}-{t['last_s']:g} s"
                       + (f" - {t['reason']}" if t.get("reason") else "") for t in record["tracks"])
    details = f"{record['duration_s'] or 0:.1f} s, {record['frames_scored']} frames"
    return "; ".join(filter(None, [f"{details}: {tracks}" if tracks else details, record["note"]]))


#: ``predict --csv``'s columns, and the Several photos tab's download: the table's, with the
#: probability unrounded and the input's kind.
CSV_HEADER = ("path", "kind", "verdict", "fake_probability", "faces", "details")


def csv_line(cells: list | tuple) -> str:
    """``cells`` as one CSV line, quoted as spreadsheets read it (commas, quotes, line breaks)."""
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue().rstrip("\r\n")


def csv_row(record: dict) -> list:
    """One input's CSV row (``CSV_HEADER``): as the table's, for a spreadsheet."""
    label, _, faces, details = record_cells(record)
    return [record["path"], record["kind"], label, record["fake_probability"], faces, details]
