"""Does a frozen ImageNet start with a linear probe carry to unseen fakes? Run by hand.

The fine-tuned network reads the families of fakes it trained on well and the ones held out of
its training poorly (docs/unseen-fakes.md). Ojha et al. (2023, "Towards Universal Fake Image
Detectors", UnivFD) found that a network's pretrained features, left frozen, with only a linear
classifier fitted on top, carried to generators left out of training better than a network
trained through, which learns the training generators' traces and little else. Their features
are CLIP's; the one pretrained network here is ImageNet MobileNetV2 (``detector.pretrained``), so this
measures the same idea with it: the training start of ``detector.model.make_model`` (160 px,
pixels scaled to [-1, 1] inside), never trained, and a logistic regression on two kinds of
its features, the 1280 pooled numbers of its last layer and each channel's mean and spread over
the face at an earlier stage (``--layer``, its texture, as ``bench/novelty.py`` takes them).

For each family of ``detector.loso.FAMILIES`` (text-to-image pools ``sfhq_t2i`` with
``utkface_wild_crops``, as the card does), the probe is fitted on the training crops of every
other family's sets and scored on the held-out family's test split, beside the fine-tuned pair's
figure for the same family (the card's leave-one-out section); and once on every set's training
crops, scored per set's test split, beside the shipped pair's test figures. docs/unseen-fakes.md
quotes it.

    python bench/frozen_probe.py
    python bench/frozen_probe.py --per-source 1500 --layer block_12_add --features runs/frozen_probe.npz
    python bench/frozen_probe.py --inner sources   # C chosen by leaving one training source out

The probe: standardized features, a logistic regression (L2) with every source weighted alike
and each source's two classes alike (one-label sets pooled into one source, as in training).
Its C is chosen among ``--c-grid`` on the training crops only, never on the held-out family:
by default by 5 folds of whole groups (a DFDC video stays in one fold), for the best mean
per-source ROC-AUC on the left-out fold; with ``--inner sources`` by leaving one training source
out at a time. Beside the chosen C's figure, the table gives the lowest and highest held-out
ROC-AUC over the whole grid, so a reading that holds across that span does not hang on the
rule. Training crops are capped at ``--per-source`` per set and label (drawn at random); test
splits are whole. Crops are the training cache's (faces found only), undegraded and with no
look matching. It prints the crops' count and the features' speed, each fit's line (C, its inner
figure, the held-out figure for every C), the held-out table (with the probe's ROC-AUC on the seen
sets' test splits, pooled and the mean per source), the trained-on-all table, and the run's
minutes and peak memory (9 minutes, 4.5 GB here; the features of 14k crops take under one).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Regularization strengths tried for the probe (sklearn's C: larger is weaker).
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def source_weights(sources: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sample weights giving every source the same total, split evenly between its classes.

    Args:
        sources: ``(N,)`` the source of each crop.
        labels: ``(N,)`` 0 real, 1 fake.

    Returns:
        ``(N,)`` weights with mean 1.
    """
    weights = np.zeros(len(labels))
    names = np.unique(sources)
    for name in names:
        for label in (0, 1):
            rows = (sources == name) & (labels == label)
            if rows.any():
                weights[rows] = 1.0 / rows.sum()
    return weights * len(weights) / weights.sum()


def fit_probe(features: np.ndarray, labels: np.ndarray, sources: np.ndarray, c: float):
    """A standardized logistic regression, every source and class weighted alike.

    Args:
        features: ``(N, D)`` frozen features.
        labels: ``(N,)`` 0 real, 1 fake.
        sources: ``(N,)`` the source of each crop (``source_weights``).
        c: Inverse regularization strength.

    Returns:
        The fitted ``sklearn`` pipeline.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    probe.fit(features, labels, logisticregression__sample_weight=source_weights(sources, labels))
    return probe


def inner_folds(sources: np.ndarray, groups: np.ndarray, rule: str, k: int = 5) -> list[np.ndarray]:
    """The validation rows of each inner fold, for choosing C.

    Args:
        sources: ``(N,)`` the source of each training crop.
        groups: ``(N,)`` its group within its set, prefixed by the set (a DFDC video, a person).
        rule: ``"groups"``: ``k`` folds of whole groups, every source in each (how well the
            probe reads the sources it is fitted on); ``"sources"``: one fold per source, left
            out (how well it reads a source it was not fitted on).
        k: Folds of the ``"groups"`` rule.

    Returns:
        A boolean mask per fold: its validation rows.
    """
    from sklearn.model_selection import GroupKFold

    if rule == "sources":
        return [sources == name for name in np.unique(sources)]
    folds = []
    for _, rows in GroupKFold(k).split(groups, groups=groups):
        mask = np.zeros(len(groups), bool)
        mask[rows] = True
        folds.append(mask)
    return folds


def per_source_auc(labels: np.ndarray, scores: np.ndarray, sources: np.ndarray) -> float:
    """The mean over sources of each source's ROC-AUC (sources holding both labels).

    A pooled ROC-AUC over several sources also rewards telling the sources apart where their
    shares of fakes differ; this one does not.
    """
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(labels[sources == s], scores[sources == s]) for s in np.unique(sources)
            if len(np.unique(labels[sources == s])) == 2]
    return float(np.mean(aucs))


def choose_c(features: np.ndarray, labels: np.ndarray, sources: np.ndarray, folds: list[np.ndarray],
             grid: tuple[float, ...] = C_GRID) -> tuple[float, float]:
    """The C whose probe best scores the crops of an inner fold it was not fitted on.

    Args:
        features: ``(N, D)`` the training crops' features.
        labels: ``(N,)`` 0 real, 1 fake.
        sources: ``(N,)`` the source of each crop.
        folds: Validation masks (``inner_folds``); the probe is fitted on the other rows.
        grid: The Cs to try.

    Returns:
        ``(C, its mean validation ROC-AUC per source)``.
    """
    scores = {}
    for c in grid:
        aucs = []
        for out in folds:
            probe = fit_probe(features[~out], labels[~out], sources[~out], c)
            aucs.append(per_source_auc(labels[out], probe.decision_function(features[out]), sources[out]))
        scores[c] = float(np.mean(aucs))
    best = max(scores, key=scores.get)
    return best, scores[best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-source", type=int, default=1500, help="training crops per set and label to fit on")
    parser.add_argument("--layer", default="block_12_add",
                        help="the earlier layer whose channels' mean and standard deviation over the crop "
                             "are the second kind of features")
    parser.add_argument("--input-size", type=int, default=160, help="side of the crops (a cached size)")
    parser.add_argument("--inner", choices=("groups", "sources"), default="groups",
                        help="how C is chosen on the training crops: grouped folds over every training source, "
                             "or leaving one training source out at a time")
    parser.add_argument("--c-grid", type=float, nargs="+", default=list(C_GRID), help="the probe's Cs to choose among")
    parser.add_argument("--features", default=None,
                        help="an .npz to keep the features in: read if it exists (same settings), else written")
    parser.add_argument("--weights", default=str(REPO / "weights"), help="the folder of the card to compare with")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.time()
    from sklearn.metrics import roc_auc_score

    from detector.card import ModelCard
    from detector.loso import FAMILIES

    card = ModelCard.load(args.weights)
    source_of = {name: " + ".join(names) for names in FAMILIES.values() for name in names}
    set_names = list(source_of)
    kinds = ("last", args.layer)

    cached = Path(args.features) if args.features else None
    settings = f"2|{args.per_source}|{args.layer}|{args.input_size}|{args.seed}|{','.join(set_names)}"
    if cached is not None and cached.exists() and str(np.load(cached)["settings"]) == settings:
        z = np.load(cached)
        feats = {k: z[f"features_{k}"] for k in kinds}
        labels, sets, splits, groups = z["labels"], z["sets"], z["splits"], z["groups"]
        print(f"features read from {cached}: {len(labels)} crops")
    else:
        feats, labels, sets, splits, groups = extract(args, set_names, kinds)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cached, settings=np.array(settings), labels=labels, sets=sets, splits=splits, groups=groups,
                     **{f"features_{k}": v for k, v in feats.items()})
    sources = np.array([source_of[s] for s in sets])
    groups = np.char.add(np.char.add(sets.astype(str), "/"), groups.astype(str))
    train, test = splits == "train", splits == "test"
    grid = tuple(args.c_grid)

    def probe_scores(fit_rows: np.ndarray, kind: str) -> tuple[dict[float, np.ndarray], float, float]:
        """The probe's scores of every crop for each C of the grid, fitted on ``fit_rows``; the
        C the inner rule chooses and its inner ROC-AUC."""
        folds = inner_folds(sources[fit_rows], groups[fit_rows], args.inner)
        x, y, src = feats[kind][fit_rows], labels[fit_rows], sources[fit_rows]
        c, inner = choose_c(x, y, src, folds, grid)
        return {g: fit_probe(x, y, src, g).decision_function(feats[kind]) for g in grid}, c, inner

    def auc(rows: np.ndarray, scores: np.ndarray) -> float:
        return float(roc_auc_score(labels[rows], scores[rows]))

    # Held out: fitted on every other family's training crops, scored on the family's test split.
    held = {}
    fine_tuned = {source: row["roc_auc"] for _, source, row in card.unseen_rows()}
    for family, names in FAMILIES.items():
        source = " + ".join(names)
        unseen, seen = test & (sources == source), test & (sources != source)
        for kind in kinds:
            t = time.time()
            by_c, c, inner = probe_scores(train & (sources != source), kind)
            over_grid = [auc(unseen, by_c[g]) for g in grid]
            held[family, kind] = {
                "unseen": auc(unseen, by_c[c]), "range": (min(over_grid), max(over_grid)),
                "pooled": auc(seen, by_c[c]), "per_source": per_source_auc(labels[seen], by_c[c][seen], sources[seen])}
            print(f"  {family}, {kind}: C {c:g} (inner ROC-AUC {inner:.3f}); held-out test "
                  f"{held[family, kind]['unseen']:.3f}, over the C grid "
                  f"{', '.join(f'{g:g}: {a:.3f}' for g, a in zip(grid, over_grid))}; seen tests pooled "
                  f"{held[family, kind]['pooled']:.3f}, mean per source {held[family, kind]['per_source']:.3f} "
                  f"({time.time() - t:.0f} s)", flush=True)

    # Trained on all: every family's training crops, scored per source's test split.
    everything = {}
    for kind in kinds:
        by_c, c, inner = probe_scores(train, kind)
        everything[kind] = {"c": c, **{s: auc(test & (sources == s), by_c[c]) for s in dict.fromkeys(source_of.values())}}
        print(f"  all sources, {kind}: C {c:g} (inner ROC-AUC {inner:.3f})", flush=True)

    print(f"\nHeld out: ROC-AUC on the held-out family's test split (C chosen by inner folds of {args.inner}; "
          f"the lowest and highest over the C grid {', '.join(f'{g:g}' for g in grid)}), and the probe's "
          f"ROC-AUC on the seen sets' test splits (pooled / mean per source):\n")
    print(f"| held out | tested on | n | fine-tuned pair (card) | frozen probe, last layer | frozen probe, {args.layer} "
          f"| seen tests, last layer | seen tests, {args.layer} |")
    print("|---|---|---|---|---|---|---|---|")
    for family, names in FAMILIES.items():
        source = " + ".join(names)
        n = int((test & (sources == source)).sum())
        ft = fine_tuned.get(source)
        rows = [held[family, k] for k in kinds]
        cells = [f"**{r['unseen']:.3f}** ({r['range'][0]:.3f}–{r['range'][1]:.3f})" for r in rows]
        seen = [f"{r['pooled']:.3f} / {r['per_source']:.3f}" for r in rows]
        print(f"| {family} | {source} | {n} | {'–' if ft is None else f'{ft:.3f}'} | {cells[0]} | {cells[1]} "
              f"| {seen[0]} | {seen[1]} |")

    shipped = card.metrics.get("test", {}).get("sets", {})
    print(f"\nTrained on all: ROC-AUC on each source's test split (C last layer {everything['last']['c']:g}, "
          f"{args.layer} {everything[args.layer]['c']:g}):\n")
    print(f"| test split | n | shipped pair (card) | frozen probe, last layer | frozen probe, {args.layer} |")
    print("|---|---|---|---|---|")
    for source in dict.fromkeys(source_of.values()):
        n = int((test & (sources == source)).sum())
        ft = (shipped.get(source) or {}).get("roc_auc")
        print(f"| {source} | {n} | {'–' if ft is None else f'{ft:.3f}'} | {everything['last'][source]:.3f} | "
              f"{everything[args.layer][source]:.3f} |")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\n{(time.time() - start) / 60:.1f} minutes, peak RSS {rss:.1f} GB")


def extract(args: argparse.Namespace, set_names: list[str],
            kinds: tuple[str, str]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The frozen features of every set's capped training crops and whole test split.

    Args:
        args: The command line (``per_source``, ``layer``, ``input_size``, ``seed``).
        set_names: The sets to read.
        kinds: ``("last", <layer>)``: the names of the two kinds of features.

    Returns:
        ``(features by kind, labels, set names, splits, groups)``, one row per crop.
    """
    import gc

    import keras
    import tensorflow as tf

    from detector.data import load_set
    from detector.defaults import SHARED_DATA
    from detector.faces import FACE_MARGIN
    from detector.model import GRADCAM_LAYER, make_model

    # The fine-tuned network's start, as training builds it: MobileNetV2 (alpha 1.0) with the
    # converted ImageNet weights, pixels in 0-255 scaled to [-1, 1] inside; never trained here.
    model = make_model(args.input_size, "mobilenet_v2", pretrained=True)
    last = keras.layers.GlobalAveragePooling2D()(model.get_layer(GRADCAM_LAYER).output)
    stage = model.get_layer(args.layer).output
    extractor = keras.Model(model.input, [last, stage])

    @tf.function(reduce_retracing=True)
    def embed(x):
        pooled, maps = extractor(x, training=False)
        return pooled, tf.concat([tf.reduce_mean(maps, axis=[1, 2]), tf.math.reduce_std(maps, axis=[1, 2])], axis=1)

    rng = np.random.default_rng(args.seed)
    out = {k: [] for k in kinds}
    labels, sets, splits, groups = [], [], [], []
    crops, seconds = 0, 0.0
    for name in set_names:
        arrays = load_set(SHARED_DATA / name, args.input_size, margin=FACE_MARGIN).with_faces()
        train = arrays.split("train")
        keep = [rng.choice(np.flatnonzero(train.labels == label),
                           min(args.per_source, int((train.labels == label).sum())), replace=False)
                for label in (0, 1) if (train.labels == label).any()]
        parts = {"train": train.select(np.sort(np.concatenate(keep))), "test": arrays.split("test")}
        del arrays, train
        gc.collect()
        for split, part in parts.items():
            t = time.time()
            for i in range(0, len(part), 64):
                pooled, texture = embed(part.images[i:i + 64].astype(np.float32))
                out["last"].append(pooled.numpy())
                out[kinds[1]].append(texture.numpy())
            seconds += time.time() - t
            crops += len(part)
            labels.append(part.labels)
            sets.append(np.full(len(part), name))
            splits.append(np.full(len(part), split))
            groups.append(part.groups)
            print(f"  {name} {split}: {len(part)} crops ({int(part.labels.sum())} fake)", flush=True)
        del parts
        gc.collect()
    print(f"features of {crops} crops in {seconds / 60:.1f} minutes ({crops / seconds:.0f} crops/s)\n", flush=True)
    return ({k: np.concatenate(v) for k, v in out.items()}, np.concatenate(labels), np.concatenate(sets),
            np.concatenate(splits), np.concatenate(groups))


if __name__ == "__main__":
    main()
