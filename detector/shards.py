"""Sharded TFRecord files: labelled face sets streamed from disk, for sets too large for memory.

The in-memory path (``data.load_set`` -> ``sampling.training_dataset``) holds every crop of
a set in RAM. ``write_shards`` stores the same crops, with their manipulation masks, in
TFRecord files of at most ``images_per_shard`` records, one series of files per set, split
and label; ``read_shards`` streams them back as the elements the in-memory path yields,
``(image, mask, known, label, native)``, and ``shard_sources`` makes them the training
sources of ``sampling.balanced_batches``, so training holds only a shuffle buffer at a time::

    python -m detector shards --sets ../shared/data/dfdc_faces ../shared/data/ffhq_stylegan --out shards/
    python train.py --shards shards/

Layout of a shard folder::

    index.json                          crop and mask size, face margin, image counts per set/split/label,
                                        a sample of the training faces' looks per set and label
    <set>/<split>-<label>-00000.tfrecord

Records hold raw pixels and float masks, not JPEG, so they read back bit for bit (a 128 px
crop is ~53 kB on disk). ``tf.io.gfile`` paths work, so shards can live on GCS or HDFS for a
cluster of workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from detector.data import LABELS, MASK_SIZE, SPLITS, Arrays, crop_records, manipulation_masks, read_records
from detector.defaults import IMAGES_PER_SHARD  # noqa: F401 (re-exported)
from detector.faces import FACE_MARGIN
from detector.sampling import LOOKS_PER_CLASS, Source, crop_looks, sample_looks

INDEX_FILE = "index.json"

#: Elements each shuffle buffer holds when training from shards (~110 MB at 128 px).
SHUFFLE_BUFFER = 2048


def shard_pattern(folder: str | Path, set_name: str, split: str, label: str) -> str:
    """The glob pattern of one set's files for one split and label (``"real"``/``"fake"``)."""
    return f"{folder}/{set_name}/{split}-{label}-*.tfrecord"


def read_index(folder: str | Path) -> dict:
    """The ``index.json`` of a shard folder.

    Raises:
        FileNotFoundError: ``folder`` holds no ``index.json``.
    """
    path = f"{folder}/{INDEX_FILE}"
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{folder} is not a shard folder: no {INDEX_FILE} (write one with `python -m detector shards`)")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write_shards(
    source: Arrays | str | Path,
    out_dir: str | Path,
    images_per_shard: int = IMAGES_PER_SHARD,
    input_size: int | None = None,
    face_margin: float = FACE_MARGIN,
) -> dict:
    """Writes one set's crops, masks and labels as TFRecord shards, and updates the index.

    Args:
        source: The set's cached ``Arrays``, or its folder (``real/``, ``fake/``, optional
            ``metadata.csv``), which is then read one group at a time, never whole.
        out_dir: The shard folder; other sets already in it are kept, this set's old
            files are replaced.
        images_per_shard: Most records per file.
        input_size: Side of the crops made from a folder (default ``model.INPUT_SIZE``);
            must match the crops already in ``out_dir``.
        face_margin: Face crop side relative to the face box: the framing of crops made
            from a folder, or the one cached ``Arrays`` were made at (``data.load_set``);
            must match the crops already in ``out_dir``.

    Returns:
        The updated index.

    Raises:
        ValueError: ``images_per_shard`` is not positive, or the crop size or face margin
            differs from the folder's.
    """
    if images_per_shard < 1:
        raise ValueError(f"images_per_shard must be at least 1, got {images_per_shard}")
    if isinstance(source, Arrays):
        name, size, parts = source.name, source.images.shape[1], iter([source])
    else:
        from detector.model import INPUT_SIZE

        name, size = Path(source).name, input_size or INPUT_SIZE
        parts = _groups_of(Path(source), size, face_margin)
    index_path = f"{out_dir}/{INDEX_FILE}"
    index = (read_index(out_dir) if tf.io.gfile.exists(index_path)
             else {"input_size": size, "mask_size": MASK_SIZE, "face_margin": face_margin, "sets": {}})
    if index["input_size"] != size:
        raise ValueError(f"{out_dir} holds {index['input_size']} px crops; {name} has {size} px crops")
    framed = index.get("face_margin", FACE_MARGIN)  # indexes written before the margin was recorded: the default
    if framed != face_margin:
        raise ValueError(f"{out_dir} holds faces framed at {framed}x the box; {name} is framed at {face_margin}x")

    folder = f"{out_dir}/{name}"
    tf.io.gfile.makedirs(folder)
    for old in tf.io.gfile.glob(f"{folder}/*.tfrecord"):
        tf.io.gfile.remove(old)
    writers: dict[tuple[str, str], _ShardWriter] = {}
    looks: dict[str, list[np.ndarray]] = {label: [] for label in LABELS}
    for part in parts:
        masks, known = manipulation_masks(part, MASK_SIZE)
        train = (part.splits == "train") & part.found
        for y, label in enumerate(LABELS):
            rows = train & (part.labels == y)
            looks[label].append(crop_looks(part.images[rows], part.native[rows]))
        for i in range(len(part)):
            key = (str(part.splits[i]), LABELS[part.labels[i]])
            if key not in writers:
                writers[key] = _ShardWriter(shard_pattern(out_dir, name, *key).replace("*", "{:05d}"), images_per_shard)
            writers[key].write(_example(part, i, masks[i], known[i]))
    for writer in writers.values():
        writer.close()

    index["sets"][name] = {s: {label: writers[(s, label)].count if (s, label) in writers else 0 for label in LABELS}
                           for s in SPLITS}
    index.setdefault("train_looks", {})[name] = {
        label: sample_looks(np.concatenate(rows)).round(2).tolist() for label, rows in looks.items()}
    with tf.io.gfile.GFile(index_path, "w") as f:
        json.dump(index, f, indent=2)
    return index


def _groups_of(root: Path, size: int, face_margin: float) -> Iterator[Arrays]:
    """A set folder's crops, one group (a source video, a person) at a time: a fake's mask
    needs the real of its group, and nothing more."""
    groups: dict[str, list] = {}
    for record in read_records(root):
        groups.setdefault(record.group, []).append(record)
    for records in groups.values():
        crops = crop_records(records, size, face_margin, workers=1)
        yield Arrays(
            root.name,
            np.stack([c.image for c in crops]),
            np.array([r.label for r in records], np.int64),
            np.array([r.split for r in records]),
            np.array([r.group for r in records]),
            np.array([str(r.path.relative_to(root)) for r in records]),
            np.array([c.found for c in crops], bool),
            np.array([c.native for c in crops], np.int64),
        )


class _ShardWriter:
    """Writes records into numbered files, starting a new file every ``per_file`` records."""

    def __init__(self, name_format: str, per_file: int) -> None:
        self.name_format, self.per_file, self.count = name_format, per_file, 0
        self._writer: tf.io.TFRecordWriter | None = None

    def write(self, record: bytes) -> None:
        if self.count % self.per_file == 0:
            self.close()
            self._writer = tf.io.TFRecordWriter(self.name_format.format(self.count // self.per_file))
        self._writer.write(record)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _example(arrays: Arrays, i: int, mask: np.ndarray, known: bool) -> bytes:
    image = np.ascontiguousarray(arrays.images[i], np.uint8)
    features = {
        "image": _bytes(image.tobytes()),
        "size": _int(image.shape[0]),
        "mask": _bytes(np.ascontiguousarray(mask, np.float32).tobytes()),
        "mask_size": _int(mask.shape[0]),
        "known": _int(known),
        "label": _int(arrays.labels[i]),
        "group": _bytes(str(arrays.groups[i]).encode()),
        "file": _bytes(str(arrays.files[i]).encode()),
        "found": _int(arrays.found[i]),
        "native": _int(arrays.native[i]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "size": tf.io.FixedLenFeature([], tf.int64),
    "mask": tf.io.FixedLenFeature([], tf.string),
    "mask_size": tf.io.FixedLenFeature([], tf.int64),
    "known": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "group": tf.io.FixedLenFeature([], tf.string),
    "file": tf.io.FixedLenFeature([], tf.string),
    "found": tf.io.FixedLenFeature([], tf.int64),
    "native": tf.io.FixedLenFeature([], tf.int64),
}


def _files(pattern: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no shard files match {pattern!r}")
    return files


def _records(files: list[str], seed: int | None) -> tf.data.Dataset:
    """Parsed records of ``files``: in order, or, with a seed, from shuffled files read
    four at a time, so neighbouring records come from different files."""
    if seed is None:
        ds = tf.data.TFRecordDataset(files)
    else:
        ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.map(lambda r: tf.io.parse_single_example(r, _FEATURES), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def read_shards(pattern: str, seed: int | None = None) -> tf.data.Dataset:
    """Streams shards as the in-memory training path's elements.

    Args:
        pattern: A glob of TFRecord files, e.g. ``shard_pattern(folder, "dfdc_faces",
            "train", "fake")``.
        seed: ``None`` reads the files in sorted order, record by record; a seed shuffles
            the file order (again on every pass) and interleaves four files.

    Returns:
        One pass over the records whose face was found, as ``(image, mask, known, label,
        native)``: ``(S, S, 3)`` uint8 pixels, the ``(M, M, 1)`` float32 manipulation mask,
        float32 1.0 where that mask is known, the float32 label (1.0 = fake) and the float32
        side of the face's region in its file.

    Raises:
        FileNotFoundError: no file matches ``pattern``.
    """
    files = _files(pattern)
    first = tf.io.parse_single_example(next(iter(tf.data.TFRecordDataset(files[:1]).take(1))), _FEATURES)
    size, mask_size = int(first["size"]), int(first["mask_size"])

    def element(r):
        image = tf.reshape(tf.io.decode_raw(r["image"], tf.uint8), [size, size, 3])
        mask = tf.reshape(tf.io.decode_raw(r["mask"], tf.float32), [mask_size, mask_size, 1])
        return (image, mask, tf.cast(r["known"], tf.float32), tf.cast(r["label"], tf.float32),
                tf.cast(r["native"], tf.float32))

    found = _records(files, seed).filter(lambda r: r["found"] > 0)
    return found.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def read_arrays(folder: str | Path, set_name: str, splits: tuple[str, ...] = SPLITS) -> Arrays:
    """Reads some splits of one set from shards into memory (validation and test data).

    Args:
        folder: The shard folder.
        set_name: The set, as named in the index.
        splits: Which splits to read.

    Returns:
        The set's ``Arrays`` for those splits, reals before fakes within each split.

    Raises:
        KeyError: the index has no set ``set_name``.
    """
    index = read_index(folder)
    if set_name not in index["sets"]:
        raise KeyError(f"{folder} holds no set {set_name!r}; it holds {sorted(index['sets'])}")
    size = index["input_size"]
    rows = []
    for split in splits:
        for label in LABELS:
            if not index["sets"][set_name][split][label]:
                continue
            for r in _records(_files(shard_pattern(folder, set_name, split, label)), seed=None).as_numpy_iterator():
                rows.append((np.frombuffer(r["image"], np.uint8).reshape(size, size, 3), r["label"], split,
                             r["group"].decode(), r["file"].decode(), bool(r["found"]), r["native"]))
    columns = list(zip(*rows)) if rows else [[]] * 7
    return Arrays(
        set_name,
        np.stack(columns[0]) if rows else np.zeros((0, size, size, 3), np.uint8),
        np.array(columns[1], np.int64),
        np.array(columns[2], dtype=str),
        np.array(columns[3], dtype=str),
        np.array(columns[4], dtype=str),
        np.array(columns[5], bool),
        np.array(columns[6], np.int64),
    )


def shard_sources(folder: str | Path, cfg) -> list[Source]:
    """The training sources of a shard folder, streamed from disk (``sampling.Source``).

    As ``sampling.group_sources`` does in memory, each set with both labels is a source and
    the one-label sets are pooled into one. Each (set, label) stream reads its files in a
    shuffled order and shuffles within a buffer of ``SHUFFLE_BUFFER`` elements: files hold
    one label each, so batches are balanced by the sampling, not by the shuffle. For the
    same reason a fake cannot be paired with its real frame here: with ``cfg.paired`` only
    self-blends come in pairs.

    Args:
        folder: A folder written by ``write_shards``.
        cfg: The run's ``TrainConfig``.

    Returns:
        The sources.
    """
    index = read_index(folder)
    train = {name: counts["train"] for name, counts in index["sets"].items()}
    both = [name for name, c in train.items() if c["real"] and c["fake"]]
    pool = [name for name, c in train.items() if name not in both and (c["real"] or c["fake"])]
    groups = [[name] for name in both]
    if pool and {label for name in pool for label in LABELS if train[name][label]} == set(LABELS):
        groups.append(pool)
    sources = []
    for i, members in enumerate(groups):
        seed = cfg.seed + 10 * i

        def stream(label: str, offset: int, _members=members, _seed=seed, _i=i) -> tf.data.Dataset:
            parts = [(read_shards(shard_pattern(folder, name, "train", label), seed=_seed + offset), train[name][label])
                     for name in _members if train[name][label]]
            ds = tf.data.Dataset.sample_from_datasets(
                [p.shuffle(SHUFFLE_BUFFER, seed=_seed + offset, reshuffle_each_iteration=True).repeat() for p, _ in parts],
                [float(n) for _, n in parts], seed=_seed + offset)
            return ds.map(lambda *element: (*element, tf.constant(_i, tf.int32)))

        looks = {}
        for y, label in enumerate(LABELS):
            # Each set's sample, drawn again in proportion to its faces.
            rows = [np.asarray(index["train_looks"][name][label], np.float32).reshape(-1, 4) for name in members]
            weights = np.concatenate([np.full(len(r), train[name][label] / max(len(r), 1)) for r, name in zip(rows, members)])
            pooled = np.concatenate(rows)
            pick = np.random.default_rng(seed).choice(len(pooled), min(len(pooled), LOOKS_PER_CLASS),
                                                      replace=False, p=weights / weights.sum()) if len(pooled) else []
            looks[y] = pooled[pick]
        has_reals = any(train[name]["real"] for name in members)
        sources.append(Source(
            " + ".join(members), sum(train[name]["real"] + train[name]["fake"] for name in members),
            {y: stream(label, y) for y, label in enumerate(LABELS)},
            stream("real", 2).map(lambda image, mask, known, label, native, source: (image, native)) if has_reals else None,
            None, looks))
    return sources
