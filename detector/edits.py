"""Faces edited here, by methods no training set holds, and how the detector judges them.

The training sets' fakes are swaps, GAN, diffusion and LoRA faces made by their authors' tools.
A user also meets the cheap edit: one person's face pasted onto another's photo in an image
editor, or two faces averaged into one (the "morph" that fools passport checks). This makes
such edits with nothing but OpenCV from real photos (the sets' real test photos and the
gallery's) and scores them through the whole pipeline against the same photos unedited:

* ``poisson``: the donor's face, aligned on the target's five landmarks (a similarity
  transform), pasted inside an ellipse over brows, eyes, nose and mouth by Poisson blending
  (``cv2.seamlessClone``), which matches the colours and leaves no visible seam;
* ``colour paste``: the same face given the target's colour statistics (mean and spread in Lab,
  Reinhard et al. 2001) and laid on with a feathered edge: an editor's layer and a soft brush;
* ``morph``: donor and target averaged half and half inside the same feathered ellipse.

Only frontal faces whose ellipse lies inside the photo are edited (a turned face's pasted
features would land beside its own); the donor is the next such face of the same set. Every
picture, edited or not, is saved as JPEG (as an upload is), so that the file's compression
says nothing. ``python -m detector edited-faces`` writes the figures into the model card
(``card.EDITED_SECTION``), whose summary the page shows beside each verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.defaults import EDITED_FACES_JPEG as JPEG_QUALITY
from detector.faces import Box

METHODS = ("poisson", "colour paste", "morph")
#: The name the gallery's photos are scored under, as a set of their own.
GALLERY = "gallery (real)"
#: Least overlap of a face found in the edited photo with the edited face's box.
MATCH_IOU = 0.3


def ellipse(landmarks: np.ndarray) -> np.ndarray:
    """The outline (points) of an ellipse over brows, eyes, nose and mouth, from five landmarks.

    With ``d`` the distance between the eyes and ``m`` from the eyes' midpoint to the mouth's:
    centred between the two, 0.9 d wide and m / 2 + 0.45 d high on each side (from the brows to
    below the lower lip, no hair), turned with the eye line.
    """
    eyes = landmarks[:2].mean(axis=0)
    mouth = landmarks[3:5].mean(axis=0)
    d = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    m = float(np.linalg.norm(mouth - eyes))
    angle = float(np.degrees(np.arctan2(*(landmarks[1] - landmarks[0])[::-1])))
    centre = (eyes + mouth) / 2
    axes = (round(0.9 * d), round(m / 2 + 0.45 * d))
    return cv2.ellipse2Poly((round(centre[0]), round(centre[1])), axes, round(angle), 0, 360, 5)


def frontal(landmarks: np.ndarray) -> bool:
    """Whether a face looks about straight ahead: its nose tip within the middle 40% between
    the eyes (a turned face's pasted features would land beside its own)."""
    eye_r, eye_l, nose = landmarks[0], landmarks[1], landmarks[2]
    axis = eye_l - eye_r
    along = float(np.dot(nose - eye_r, axis) / max(np.dot(axis, axis), 1e-6))
    return 0.3 <= along <= 0.7


def face_mask(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """A uint8 mask, 255 inside the face's ``ellipse``."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [ellipse(landmarks)], 255)
    return mask


def inside(shape: tuple[int, ...], landmarks: np.ndarray) -> bool:
    """Whether the face's ellipse lies within the photo, off its edge (Poisson blending needs it)."""
    points = ellipse(landmarks)
    return bool((points > 0).all() and (points[:, 0] < shape[1] - 1).all() and (points[:, 1] < shape[0] - 1).all())


def aligned(donor: np.ndarray, donor_marks: np.ndarray, target: np.ndarray, target_marks: np.ndarray) -> np.ndarray:
    """The donor photo moved, turned and scaled so that its landmarks fall on the target's."""
    matrix, _ = cv2.estimateAffinePartial2D(donor_marks, target_marks, method=cv2.LMEDS)
    h, w = target.shape[:2]
    return cv2.warpAffine(donor, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def colour_matched(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` with the mean and spread of ``target``'s colours inside ``mask``, in Lab."""
    within = mask > 0
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[within].mean(axis=0), src[within].std(axis=0) + 1e-3
    t_mean, t_std = tgt[within].mean(axis=0), tgt[within].std(axis=0)
    out = (src - s_mean) / s_std * t_std + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def feathered(mask: np.ndarray, d: float) -> np.ndarray:
    """The mask as a float alpha in [0, 1], its edge blurred with a Gaussian of a tenth of ``d``
    (the distance between the eyes): a soft brush."""
    sigma = max(d / 10, 1.0)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), sigma)[..., None]


def edit(method: str, target: np.ndarray, target_marks: np.ndarray, donor: np.ndarray, donor_marks: np.ndarray) -> np.ndarray:
    """``target`` with its face edited by ``method`` (one of ``METHODS``) from ``donor``."""
    moved = aligned(donor, donor_marks, target, target_marks)
    mask = face_mask(target.shape, target_marks)
    d = float(np.linalg.norm(target_marks[1] - target_marks[0]))
    if method == "poisson":
        ys, xs = np.nonzero(mask)
        centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        return cv2.seamlessClone(moved[..., ::-1], target[..., ::-1].copy(), mask, centre, cv2.NORMAL_CLONE)[..., ::-1]
    alpha = feathered(mask, d)
    if method == "colour paste":
        layer = colour_matched(moved, target, mask).astype(np.float32)
    elif method == "morph":
        layer = (moved.astype(np.float32) + target) / 2
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return np.clip(alpha * layer + (1 - alpha) * target, 0, 255).astype(np.uint8)


def editable_faces(detector, paths: list[Path], limit: int) -> list[tuple[np.ndarray, list]]:
    """The first ``limit + 1`` photos of ``paths`` with faces an edit can be made on (frontal,
    their ellipse inside the photo), each with those faces (``faces.Face``, landmarks and all);
    the one past ``limit`` only gives a donor."""
    from detector.imaging import ImageError, load_image

    photos = []
    for path in paths:
        try:
            rgb = load_image(path)
        except ImageError:
            continue
        found = [f for f in detector.finder.detect(rgb) if frontal(f.landmarks) and inside(rgb.shape, f.landmarks)]
        if found:
            photos.append((rgb, found))
        if len(photos) > limit:
            break
    return photos


def score_edits(detector, photos: Mapping[str, list[Path]], per_set: int, jpeg_quality: int = JPEG_QUALITY,
                save: str | Path | None = None) -> dict[str, dict[str, list[tuple[float, str]]]]:
    """Edits each photo's faces by every method and scores them beside the photo unedited.

    Args:
        detector: A loaded ``pipeline.Detector``.
        photos: Real photos by the name of their set, in order.
        per_set: At most this many photos of each set are edited (every face of a group photo).
        jpeg_quality: Every picture, edited or not, is saved at this quality before it is scored.
        save: A folder to write the edited pictures to, to look at them.

    Returns:
        ``{set: {"unedited" or method: [(fake probability, verdict), ...]}}``: each face's as
        the page gives it; a face not found again in its picture is left out of that list.
    """
    from detector.robustness import jpeg
    from detector.tracking import iou

    saved = jpeg(jpeg_quality)
    if save:
        Path(save).mkdir(parents=True, exist_ok=True)

    def scored(rgb: np.ndarray, box: Box) -> tuple[float, str] | None:
        best = max(detector.predict(rgb).faces, key=lambda f: iou(f.box, box), default=None)
        return (best.fake_probability, best.label) if best is not None and iou(best.box, box) > MATCH_IOU else None

    scores: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for name, paths in photos.items():
        faces = editable_faces(detector, paths, per_set)
        # In a group photo every face is a target; the next face (of this photo or the next) its donor.
        targets = [(rgb, face) for rgb, found in faces[:per_set] for face in found]
        donors = [(rgb, face) for rgb, found in faces for face in found]
        mine = scores.setdefault(name, {how: [] for how in ("unedited", *METHODS)})
        for i, (rgb, face) in enumerate(targets):
            unedited = scored(saved(rgb), face.box)
            if unedited is None:
                continue
            mine["unedited"].append(unedited)
            donor_rgb, donor = donors[(i + 1) % len(donors)]
            for method in METHODS:
                picture = saved(edit(method, rgb, face.landmarks, donor_rgb, donor.landmarks))
                if save:
                    stem = f"{name.split()[0]}_{i:03d}_{method.replace(' ', '_')}.jpg"
                    cv2.imwrite(str(Path(save) / stem), picture[..., ::-1])
                if (result := scored(picture, face.box)) is not None:
                    mine[method].append(result)
    return scores


def figures(scored: Mapping[str, list[tuple[float, str]]]) -> dict[str, dict[str, Any]]:
    """Per method, over ``scored`` (one set's lists, or several pooled): faces, the shares
    called fake, uncertain and real, and the ROC-AUC of their fake probabilities against the
    unedited faces'; for ``"unedited"``, its faces and the shares called fake and uncertain."""
    from sklearn.metrics import roc_auc_score

    def share(pairs: list[tuple[float, str]], label: str) -> float | None:
        return float(np.mean([verdict == label for _, verdict in pairs])) if pairs else None

    unedited = scored["unedited"]
    out: dict[str, dict[str, Any]] = {"unedited": {"faces": len(unedited), "called fake": share(unedited, "fake"),
                                                   "uncertain": share(unedited, "uncertain")}}
    before = np.array([p for p, _ in unedited])
    for method in METHODS:
        pairs = scored[method]
        after = np.array([p for p, _ in pairs])
        auc = (float(roc_auc_score(np.r_[np.zeros(len(before)), np.ones(len(after))], np.r_[before, after]))
               if len(before) and len(after) else None)
        out[method] = {"faces": len(pairs), "ROC-AUC": auc, "called fake": share(pairs, "fake"),
                       "uncertain": share(pairs, "uncertain"), "called real": share(pairs, "real")}
    return out


def pooled(scores: Mapping[str, Mapping[str, list[tuple[float, str]]]]) -> dict[str, list[tuple[float, str]]]:
    """Every set's lists of ``score_edits`` joined, method by method."""
    return {how: [pair for mine in scores.values() for pair in mine[how]] for how in ("unedited", *METHODS)}


def markdown_table(scores: Mapping[str, Mapping[str, list[tuple[float, str]]]]) -> str:
    """A row per set and one over all: the unedited faces called fake / uncertain, then per
    method its faces called fake / uncertain / real and its ROC-AUC against the unedited."""

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    lines = ["| set | faces | unedited called fake / uncertain | " + " | ".join(METHODS) + " |",
             "|---" * (len(METHODS) + 3) + "|"]
    for name, scored in {**scores, "all": pooled(scores)}.items():
        fig = figures(scored)
        cells = [name, str(fig["unedited"]["faces"]), f"{pct(fig['unedited']['called fake'])} / {pct(fig['unedited']['uncertain'])}"]
        for method in METHODS:
            m = fig[method]
            auc = "–" if m["ROC-AUC"] is None else f"{m['ROC-AUC']:.3f}"
            cells.append(f"{pct(m['called fake'])} / {pct(m['uncertain'])} / {pct(m['called real'])}, {auc}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def card_block(scores: Mapping[str, Mapping[str, list[tuple[float, str]]]], jpeg_quality: int) -> dict[str, Any]:
    """What ``card.extra[card.EDITED_SECTION]`` holds: per method, its figures over every edited face
    (``{method: {what was edited: figures}}``, the shape the card renders as a table)."""
    fig = figures(pooled(scores))
    sets = [name for name in scores if name != GALLERY]
    parts = ([f"the real test photos of {len(sets)} set{'s' * (len(sets) > 1)}"] if sets else []) \
        + (["the gallery's"] if GALLERY in scores else [])
    what = f"{' and '.join(parts)} (JPEG {jpeg_quality})"
    return {method: {what: fig[method]} for method in METHODS}


def real_test_photos(data_dir: str | Path, sets: list[str], examples: str | Path | None) -> dict[str, list[Path]]:
    """The real test photos of each set that has some, by set name, then the gallery's photos
    (``examples``) as a set of their own, ``GALLERY``."""
    from detector.data import read_records

    photos = {name: [r.path for r in read_records(Path(data_dir) / name) if r.split == "test" and r.label == 0]
              for name in sets}
    photos = {name: paths for name, paths in photos.items() if paths}
    if examples:
        photos[GALLERY] = sorted(p for p in Path(examples).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return photos


def edited_faces(weights: str | Path | None, data_dir: str | Path, sets: list[str], examples: str | Path | None,
                 per_set: int, jpeg_quality: int = JPEG_QUALITY, save: str | Path | None = None,
                 write_card: bool = True) -> str:
    """The command ``python -m detector edited-faces``: edit, score, write the card.

    Returns:
        The Markdown table (``markdown_table``) under a line saying what was measured.
    """
    from detector.card import EDITED_SECTION, write_section
    from detector.pipeline import Detector

    detector = Detector.load(weights)
    scores = score_edits(detector, real_test_photos(data_dir, sets, examples), per_set, jpeg_quality, save)
    if write_card:
        write_section(weights, EDITED_SECTION, card_block(scores, jpeg_quality))
    return (f"Every picture JPEG {jpeg_quality}; each face's verdict as the page gives it (threshold "
            f"{detector.card.threshold:.3f}). Cells: edited faces called fake / uncertain / real, then the ROC-AUC "
            f"of their fake probabilities against the same faces unedited.\n\n{markdown_table(scores)}")
