"""Edited faces made here, by methods no training set holds: are they called fake? Run by hand.

The training sets' fakes are swaps, GAN, diffusion and LoRA faces made by their authors' tools.
A user also meets the cheap edit: one person's face pasted onto another's photo in an image
editor, or two faces averaged into one (the "morph" that fools passport checks). This makes
such edits from the *real* test photos of each set (and the gallery's), with nothing but
OpenCV, and scores them through the whole pipeline against the same photos unedited:

* ``poisson``: the donor's face, aligned on the target's five landmarks (a similarity
  transform), pasted inside an ellipse over brows, eyes, nose and mouth by Poisson blending
  (``cv2.seamlessClone``), which matches the colours and leaves no visible seam;
* ``colour paste``: the same face given the target's colour statistics (mean and spread in Lab,
  Reinhard et al. 2001) and laid on with a feathered edge: an editor's layer and a soft brush;
* ``morph``: donor and target averaged half and half inside the same feathered ellipse.

Every picture, edited or not, is then saved as JPEG at ``--jpeg`` (as an upload is), so that
the file's compression says nothing. The donor is another photo of the same set (the next one
with a face). Each edited face is matched to the face found in the edited photo by box overlap.
Per set and method it prints how many edited faces are called fake / uncertain / real, the
ROC-AUC of their fake probabilities against the unedited faces', and the unedited reals called
fake. docs/unseen-fakes.md quotes it.

    python bench/edited_faces.py --per-set 100
    python bench/edited_faces.py --save /tmp/edits --per-set 5     # look at what it makes
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Sets whose real test photos are edited (the text-to-image set holds no reals).
SETS = ("dfdc_faces", "ffhq_stylegan", "lfw_faceswap", "ecuador_flux_lora", "utkface_wild_crops")
METHODS = ("poisson", "colour paste", "morph")


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
    inside = mask > 0
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(axis=0), src[inside].std(axis=0) + 1e-3
    t_mean, t_std = tgt[inside].mean(axis=0), tgt[inside].std(axis=0)
    out = (src - s_mean) / s_std * t_std + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def feathered(mask: np.ndarray, d: float) -> np.ndarray:
    """The mask as a float alpha in [0, 1], its edge softened over about a fifth of ``d``."""
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


def main() -> None:
    from detector.defaults import SHARED_DATA

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (the shipped one by default)")
    parser.add_argument("--sets", nargs="*", default=list(SETS), help="sets (under ../shared/data) whose test reals are edited")
    parser.add_argument("--examples", default=str(REPO / "examples"), help="real photos edited as a set of their own ('' to skip)")
    parser.add_argument("--per-set", type=int, default=100, help="real test photos edited per set")
    parser.add_argument("--jpeg", type=int, default=92, help="JPEG quality every picture is saved at")
    parser.add_argument("--save", default=None, help="folder to write the edited pictures to, to look at them")
    args = parser.parse_args()

    from detector.data import read_records
    from detector.imaging import ImageError, load_image
    from detector.pipeline import Detector
    from detector.robustness import jpeg
    from detector.tracking import iou

    detector = Detector.load(args.weights)
    saved = jpeg(args.jpeg)
    inputs: dict[str, list[Path]] = {}
    for name in args.sets:
        records = [r for r in read_records(SHARED_DATA / name) if r.split == "test" and r.label == 0]
        inputs[name] = [r.path for r in records]
    if args.examples:
        inputs["gallery (real)"] = sorted(p for p in Path(args.examples).glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)

    def scored(rgb: np.ndarray, box) -> tuple[float, str] | None:
        """The fake probability and verdict of the face found in ``rgb`` where ``box`` is, or None."""
        found = detector.predict(rgb).faces
        best = max(found, key=lambda f: iou(f.box, box), default=None)
        return (best.fake_probability, best.label) if best is not None and iou(best.box, box) > 0.3 else None

    rows: dict[str, dict[str, list[tuple[float, str]]]] = {}
    missed: Counter = Counter()
    for name, paths in inputs.items():
        faces = []  # (photo, its faces with landmarks inside it)
        for path in paths:
            try:
                rgb = load_image(path)
            except ImageError:
                continue
            found = [f for f in detector.finder.detect(rgb) if frontal(f.landmarks) and inside(rgb.shape, f.landmarks)]
            if found:
                faces.append((path, rgb, found))
            if len(faces) > args.per_set:
                break
        scores = rows.setdefault(name, {m: [] for m in ("unedited", *METHODS)})
        # In a group photo every face is a target, the next face (of this photo or the next) its donor.
        targets = [(path, rgb, f) for path, rgb, found in faces[: args.per_set] for f in found]
        donors = [(rgb, f) for _, rgb, found in faces for f in found]
        for i, (path, rgb, face) in enumerate(targets):
            donor_rgb, donor = donors[(i + 1) % len(donors)]
            unedited = scored(saved(rgb), face.box)
            if unedited is None:
                missed[name, "unedited"] += 1
                continue
            scores["unedited"].append(unedited)
            for method in METHODS:
                picture = saved(edit(method, rgb, face.landmarks, donor_rgb, donor.landmarks))
                if args.save:
                    cv2.imwrite(str(Path(args.save) / f"{name.split()[0]}_{i:03d}_{method.replace(' ', '_')}.jpg"), picture[..., ::-1])
                result = scored(picture, face.box)
                if result is None:
                    missed[name, method] += 1
                else:
                    scores[method].append(result)
        print(f"{name}: {len(scores['unedited'])} faces", file=sys.stderr)

    print(f"Every picture JPEG {args.jpeg}; each face's verdict as the page gives it (threshold "
          f"{detector.card.threshold:.3f}). Cells: edited faces called fake / uncertain / real, then the ROC-AUC "
          "of their fake probabilities against the same faces unedited.\n")
    print("| set | faces | unedited called fake / uncertain | " + " | ".join(METHODS) + " |")
    print("|---" * (len(METHODS) + 3) + "|")
    totals: dict[str, list[tuple[float, str]]] = {}
    for name, scores in rows.items():
        for method, values in scores.items():
            totals.setdefault(method, []).extend(values)
        print(row(name, scores))
    print(row("all", totals))
    if missed:
        print("\nFaces not found again (set, method): " + ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(missed.items())))


def row(name: str, scores: dict[str, list[tuple[float, str]]]) -> str:
    """One table row: the unedited faces' verdicts, then each method's verdicts and ROC-AUC."""
    unedited = np.array([p for p, _ in scores["unedited"]])
    cells = [name, str(len(unedited))]
    shares = lambda pairs, labels: " / ".join(f"{np.mean([v == label for _, v in pairs]):.0%}" for label in labels)  # noqa: E731
    cells.append(shares(scores["unedited"], ("fake", "uncertain")) if len(unedited) else "–")
    for method in METHODS:
        pairs = scores[method]
        if not pairs or not len(unedited):
            cells.append("–")
            continue
        edited = np.array([p for p, _ in pairs])
        auc = roc_auc_score(np.r_[np.zeros(len(unedited)), np.ones(len(edited))], np.r_[unedited, edited])
        cells.append(f"{shares(pairs, ('fake', 'uncertain', 'real'))}, {auc:.3f}")
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
