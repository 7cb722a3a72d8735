"""Labelled face sets on disk -> cached arrays -> ``tf.data`` pipelines.

A set is laid out as the common public deepfake sets are::

    <set>/real/*.jpg
    <set>/fake/*.jpg
    <set>/metadata.csv      optional: file,label,split,group

Every image is decoded, its face found and cut with the run-time framing, and resized once;
the result is cached as one ``.npz`` per set and size (a few hundred MB at most), so training
epochs and evaluations never touch JPEG decoding again. The cache keeps, per image, whether a
face was found (an image without one is left out of training and of the crop-level figures:
at run time it gets no verdict) and the side of the cut region in the file's own pixels (its
*native* resolution, which training equalizes across the classes of a source).
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.faces import FACE_MARGIN, Box, FaceFinder, centre_box, cut, face_region
from detector.imaging import IMAGE_SUFFIXES, load_image

LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")

#: Bump when the way cached crops are made changes, so stale caches are not reused.
CACHE_VERSION = 4  # 3: YuNet faces, regions inside the image, found and native kept; 4: paired fakes cut as their real


@dataclass(frozen=True)
class Record:
    """One labelled image of a set."""

    path: Path
    label: int  # 0 real, 1 fake
    split: str
    group: str


@dataclass
class Arrays:
    """Decoded, framed and resized images of one set, with their labels and splits."""

    name: str
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) int64, 1 = fake
    splits: np.ndarray  # (N,) str
    groups: np.ndarray  # (N,) str
    files: np.ndarray  # (N,) str, relative to the set folder
    found: np.ndarray  # (N,) bool: a face was found (else the crop is the centre square)
    native: np.ndarray  # (N,) int: side of the cut region in the file's pixels

    def select(self, keep: np.ndarray) -> "Arrays":
        """The rows where ``keep`` (a boolean mask or indices) holds."""
        return Arrays(self.name, *(getattr(self, f)[keep] for f in _ROW_FIELDS))

    def split(self, name: str) -> "Arrays":
        """The rows of one split (``train``, ``val``, ``test``)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.select(self.splits == name)

    def with_faces(self) -> "Arrays":
        """The rows where a face was found: what training and crop-level figures use."""
        return self.select(self.found)

    def __len__(self) -> int:
        return len(self.labels)


def default_cache_dir() -> Path:
    """``$DETECTOR_CACHE``, else ``~/.cache/deepfake-detector`` (never inside the data)."""
    return Path(os.environ.get("DETECTOR_CACHE", Path.home() / ".cache" / "deepfake-detector"))


def grouped_split(group: str, val: float = 0.1, test: float = 0.1) -> str:
    """Assigns a group to a split by a stable hash, so a group never straddles splits.

    Args:
        group: The group key (a person, a source video, or the file itself).
        val: Share of groups that go to validation.
        test: Share of groups that go to test.

    Returns:
        ``"train"``, ``"val"`` or ``"test"``.
    """
    bucket = zlib.crc32(group.encode()) % 1000 / 1000
    if bucket < test:
        return "test"
    if bucket < test + val:
        return "val"
    return "train"


def read_records(root: str | Path) -> list[Record]:
    """Lists a set's labelled images.

    Uses ``metadata.csv`` where present (its ``split`` and ``group`` columns are optional);
    otherwise walks ``real/`` and ``fake/`` and splits by file stem with ``grouped_split``.

    Args:
        root: The set folder.

    Returns:
        The records, sorted by file path.

    Raises:
        FileNotFoundError: ``root`` has neither ``metadata.csv`` nor ``real/``/``fake/``.
        ValueError: a metadata row has an unknown label or split.
    """
    root = Path(root)
    meta = root / "metadata.csv"
    records = []
    if meta.exists():
        with meta.open(newline="") as f:
            for row in csv.DictReader(f):
                label = row.get("label") or Path(row["file"]).parts[0]
                if label not in LABELS:
                    raise ValueError(f"{meta}: unknown label {label!r} for {row['file']!r}")
                group = row.get("group") or row["file"]
                split = row.get("split") or grouped_split(group)
                if split not in SPLITS:
                    raise ValueError(f"{meta}: unknown split {split!r} for {row['file']!r}")
                records.append(Record(root / row["file"], LABELS.index(label), split, group))
    else:
        for label in LABELS:
            folder = root / label
            if not folder.is_dir():
                continue
            for path in folder.rglob("*"):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    group = path.stem
                    records.append(Record(path, LABELS.index(label), grouped_split(group), group))
    if not records:
        raise FileNotFoundError(f"{root}: no metadata.csv and no images under real/ or fake/")
    return sorted(records, key=lambda r: str(r.path))


_ROW_FIELDS = ("images", "labels", "splits", "groups", "files", "found", "native")


@dataclass(frozen=True)
class Crop:
    """A training image as the network sees it, with what the cache keeps beside it."""

    image: np.ndarray  # (S, S, 3) uint8
    found: bool
    native: int


def training_input(image: np.ndarray, size: int, finder: FaceFinder, margin: float = FACE_MARGIN,
                   region: Box | None = None) -> Crop:
    """A training image as the network is trained on it: its largest face cut with the
    run-time framing (``faces.face_region``), or the centre square when no face is found,
    resized to ``size`` pixels as the crop cache stores it.

    Args:
        image: An RGB uint8 image holding one face.
        size: Side of the square result, in pixels.
        finder: The face finder.
        margin: Crop side relative to the face box.
        region: Cut this region (a face found before) instead of searching the image.

    Returns:
        The crop, whether a face was found, and the region's side in ``image``'s pixels.
    """
    found = region is not None or (region := face_region(image, finder, margin)) is not None
    region = region or centre_box(*image.shape[:2])
    crop = cv2.resize(cut(image, region), (size, size), interpolation=cv2.INTER_AREA)
    return Crop(crop, found, region.w)


def crop_records(records: list[Record], size: int, margin: float = FACE_MARGIN, workers: int = 2) -> list[Crop]:
    """The training inputs of a set's records (``training_input``), each fake of a pair cut
    where its real is (``paired_regions``).

    Args:
        records: The records (a whole set, or whole groups of it).
        size: Side of the crops.
        margin: Crop side relative to the face box.
        workers: Decoding threads (OpenCV releases the GIL).

    Returns:
        One ``Crop`` per record.
    """
    local = threading.local()  # one finder per thread: each keeps its own buffers

    def finder() -> FaceFinder:
        if not hasattr(local, "finder"):
            local.finder = FaceFinder()
        return local.finder

    def own_region(record: Record) -> tuple[Box | None, tuple[int, int]]:
        image = load_image(record.path)
        return face_region(image, finder(), margin), image.shape[:2]

    def crop(record: Record, region: Box | None) -> Crop:
        return training_input(load_image(record.path), size, finder(), margin, region)

    with ThreadPoolExecutor(workers) as pool:
        regions = paired_regions(records, list(pool.map(own_region, records)))
        return list(pool.map(crop, records, regions))


def paired_regions(records: list[Record], regions: list[tuple[Box | None, tuple[int, int]]]) -> list[Box | None]:
    """Where each training image is cut: its own face, except a training fake made from a real
    frame of its group (one real per group, as in DFDC), which is cut where its real is.

    The finder draws a slightly different box around a swapped face than around the frame it
    was made from; cut at the same place, the two crops differ by the manipulation alone,
    pixel for pixel (what paired training and the manipulation masks rely on). Validation
    and test images are always cut at their own face, as a user's photo is.

    Args:
        records: The set's records.
        regions: Per record, its own face's region (``None`` when none was found) and the
            image's ``(height, width)``.

    Returns:
        Per record, the region to cut (``None``: no face, the centre square is cut).
    """
    reals: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.label == 0:
            reals.setdefault(r.group, []).append(i)
    out = [region for region, _ in regions]
    for i, r in enumerate(records):
        partner = reals.get(r.group, [])
        if r.label == 1 and r.split == "train" and len(partner) == 1:
            (j,) = partner
            if regions[j][0] is not None and regions[j][1] == regions[i][1]:
                out[i] = regions[j][0]
    return out


def load_set(
    root: str | Path,
    size: int,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    workers: int = 2,
    margin: float = FACE_MARGIN,
) -> Arrays:
    """Decodes, frames and resizes a set once, and caches the result.

    Args:
        root: The set folder.
        size: Side of the square crops, in pixels.
        cache_dir: Where the ``.npz`` goes; ``default_cache_dir()`` when ``None``.
        limit: Keep only this many records per (split, label), for quick runs.
        workers: Decoding threads (OpenCV releases the GIL).
        margin: Crop side relative to the face box; crops made at another margin are
            cached apart, so a changed framing never reuses them.

    Returns:
        The set's arrays.
    """
    root = Path(root)
    records = read_records(root)
    if limit is not None:
        kept, seen = [], {}
        for r in records:
            key = (r.split, r.label)
            if seen.get(key, 0) < limit:
                seen[key] = seen.get(key, 0) + 1
                kept.append(r)
        records = kept
    # The key names the files by their place in the set, so a set read through another
    # path (relative, absolute, a copy) finds the same cache.
    key = hashlib.sha256(
        f"{CACHE_VERSION}|{size}|{margin:g}|".encode() + "\n".join(f"{r.path.relative_to(root)}|{r.label}|{r.split}" for r in records).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir or default_cache_dir()) / f"{root.name}-{size}-{key}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return Arrays(root.name, *(z[f] for f in _ROW_FIELDS))

    crops = crop_records(records, size, margin, workers)
    arrays = Arrays(
        root.name,
        np.stack([c.image for c in crops]),
        np.array([r.label for r in records], np.int64),
        np.array([r.split for r in records]),
        np.array([r.group for r in records]),
        np.array([str(r.path.relative_to(root)) for r in records]),
        np.array([c.found for c in crops], bool),
        np.array([c.native for c in crops], np.int64),
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")  # concurrent writers never share a file
    np.savez(tmp, **{f: getattr(arrays, f) for f in _ROW_FIELDS})
    tmp.replace(cache)
    return arrays


#: Side of the stored manipulation masks (they are resized to the model's mask head).
MASK_SIZE = 32


def manipulation_masks(arrays: Arrays, size: int = MASK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Where each fake differs from the real frame it was made from.

    Sets like DFDC hold, per group, a real frame and the fake made from it, aligned pixel
    for pixel. Their difference, less the compression noise seen at the crop's border
    (which the face swap does not touch), maps the manipulated region. A real face's map
    is empty. A fake without a real partner in its group, or whose pair is not aligned
    (border noise too high), has no known map.

    Args:
        arrays: A set's cached crops.
        size: Side of the returned masks.

    Returns:
        ``masks`` ``(N, size, size)`` float32 in ``[0, 1]`` and ``known`` ``(N,)`` bool.
    """
    n = len(arrays)
    masks = np.zeros((n, size, size), np.float32)
    known = arrays.labels == 0
    real_of_group = {g: i for i, (g, y) in enumerate(zip(arrays.groups, arrays.labels)) if y == 0}
    side = arrays.images.shape[1]
    ring = np.ones((side, side), bool)
    ring[side // 8 : -side // 8, side // 8 : -side // 8] = False
    for i in np.flatnonzero(arrays.labels == 1):
        j = real_of_group.get(arrays.groups[i])
        if j is None:
            continue
        diff = np.abs(arrays.images[i].astype(np.float32) - arrays.images[j].astype(np.float32)).mean(axis=2)
        noise = float(diff[ring].mean())
        if noise > 12.0:  # not the same frame, or framed differently
            continue
        diff = cv2.GaussianBlur(diff, (0, 0), 2.0)
        mask = np.clip((diff - 1.5 * noise - 1.0) / 10.0, 0.0, 1.0)
        masks[i] = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
        known[i] = True
    return masks, known


def concat(parts: Sequence[Arrays], name: str = "all") -> Arrays:
    """Joins several sets' arrays into one."""
    return Arrays(name, *(np.concatenate([getattr(p, f) for p in parts]) for f in _ROW_FIELDS))
