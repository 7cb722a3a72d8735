"""Can the network tell when a face is unlike what it learned from? Run by hand.

A detector that fails on kinds of fake it never saw would be safer if it could say "this face is
unfamiliar" instead of giving a confident verdict. A cheap, published way (Lee et al. 2018,
"A simple unified framework for detecting out-of-distribution samples"): the Mahalanobis
distance of a crop's penultimate features (the pooled 1280 numbers the last layer weighs) to
the nearest class mean of the training crops, under one shared covariance; ``--layer`` takes an
earlier feature map instead (each channel's mean and spread: its texture). A fused pair of
networks (the shipped weights) gives each member's features side by side. This measures it for
a model trained without one family (``python train.py --leave-one-out FAMILY``): does the
distance single out the held-out family's test faces, and the wrong verdicts among them (reals
called fake; fakes called real), while sparing the sources it trained on and the gallery's real
photos? docs/unseen-fakes.md quotes it.

    python bench/novelty.py --weights runs/loso/stylegan-faces --held-out ffhq_stylegan
    python bench/novelty.py --weights weights --layer block_5_add   # the shipped model

The flag's threshold is the 95th percentile of the distances of the training sources'
validation crops, so about 5% of familiar faces are flagged by design. Verdicts come from the
Keras network with the card's calibration, so they can differ slightly from the card's, which
are scored through its int8 copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from detector.defaults import SHARED_DATA, SHARED_SETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a trained model's folder (model.keras, model_card.json)")
    parser.add_argument("--held-out", nargs="*", default=[], help="set names left out of that model's training")
    parser.add_argument("--per-source", type=int, default=1500, help="training crops per set and label to fit on")
    parser.add_argument("--quantile", type=float, default=0.95, help="share of familiar validation crops not flagged")
    parser.add_argument("--layer", default=None,
                        help="a convolutional layer to take the features of instead (each channel's mean and "
                             "standard deviation over the crop), e.g. block_12_add")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from detector.card import MODEL_FILE, ModelCard
    from detector.data import load_set
    from detector.imaging import load_image
    from detector.model import member_layers
    from detector.pipeline import Detector
    from detector.training import TrainConfig, predict_logits

    card = ModelCard.load(args.weights)
    model = keras.saving.load_model(Path(args.weights) / MODEL_FILE, safe_mode=True, compile=False)
    names = member_layers(model, args.layer or "fake_logit")  # a fused pair: each member's
    if not names:
        parser.error(f"--layer {args.layer!r}: {args.weights} has no such layer")
    if args.layer:  # a feature map: each channel's mean and spread over the crop (its texture)
        maps = keras.Model(model.input, [model.get_layer(name).output for name in names])

        def pooled(x):
            return tf.concat([stat(m, axis=[1, 2]) for m in maps(x, training=False)
                              for stat in (tf.reduce_mean, tf.math.reduce_std)], axis=1)

        embed = tf.function(pooled, reduce_retracing=True)
    else:  # what the last layer weighs: after pooling and dropout
        features = keras.Model(model.input, [model.get_layer(name).input for name in names])
        embed = tf.function(lambda x: tf.concat(features(x, training=False), axis=1), reduce_retracing=True)

    def embed_all(images: np.ndarray) -> np.ndarray:
        return np.concatenate([embed(images[i:i + 128].astype(np.float32)).numpy()
                               for i in range(0, len(images), 128)])

    cfg = TrainConfig()
    sets = {name: load_set(SHARED_DATA / name, card.input_size, cfg.cache_dir, margin=card.face_margin).with_faces()
            for name in SHARED_SETS}
    rng = np.random.default_rng(0)

    # Fit: class means and one shared covariance over the training crops of the seen sources.
    fit, labels = [], []
    for name, arrays in sets.items():
        if name in args.held_out:
            continue
        train = arrays.split("train")
        for label in (0, 1):
            rows = np.flatnonzero(train.labels == label)
            if not len(rows):  # a one-label set
                continue
            rows = rng.choice(rows, min(args.per_source, len(rows)), replace=False)
            fit.append(embed_all(train.images[rows]))
            labels.append(np.full(len(rows), label))
    fit, labels = np.concatenate(fit), np.concatenate(labels)
    means = np.stack([fit[labels == c].mean(0) for c in (0, 1)])
    centred = fit - means[labels]
    cov = np.cov(centred, rowvar=False)
    cov += np.eye(len(cov)) * 1e-3 * np.trace(cov) / len(cov)  # shrinkage: 1280 dims from ~15k crops
    precision = np.linalg.inv(cov)

    def distance(feats: np.ndarray) -> np.ndarray:
        d = [np.einsum("ij,jk,ik->i", feats - m, precision, feats - m) for m in means]
        return np.sqrt(np.min(d, axis=0))

    def probabilities(images: np.ndarray) -> np.ndarray:  # through Keras, not the card's int8 copy
        logits = predict_logits(model, images, card.scoring_views)
        return 1 / (1 + np.exp(-(logits / card.temperature + card.bias)))

    # Threshold on the seen sources' validation crops.
    seen_val = np.concatenate([distance(embed_all(a.split("val").images)) for n, a in sets.items()
                               if n not in args.held_out])
    threshold = float(np.quantile(seen_val, args.quantile))
    print(f"fitted on {len(fit)} training crops of {len(sets) - len(args.held_out)} sets; "
          f"flag from distance {threshold:.1f} (the {args.quantile:.0%} quantile of {len(seen_val)} seen val crops)\n")

    print("| set | held out | label | n | median distance | flagged | wrong verdicts | of them flagged |")
    print("|---|---|---|---|---|---|---|---|")
    seen_scores, held_scores = [], []
    lo, hi = card.uncertain_band
    for name, arrays in sets.items():
        test = arrays.split("test")
        d = distance(embed_all(test.images))
        p = probabilities(test.images)
        (held_scores if name in args.held_out else seen_scores).append(d)
        for label, word in ((0, "real"), (1, "fake")):
            rows = test.labels == label
            if not rows.any():
                continue
            wrong = (p[rows] >= card.threshold) if label == 0 else (p[rows] <= lo)
            flagged = d[rows] >= threshold
            of_wrong = f"{(flagged & wrong).sum() / max(wrong.sum(), 1):.0%}" if wrong.any() else "–"
            print(f"| {name} | {'yes' if name in args.held_out else ''} | {word} | {rows.sum()} | "
                  f"{np.median(d[rows]):.1f} | {flagged.mean():.1%} | {wrong.mean():.1%} | {of_wrong} |")

    gallery = sorted((REPO / "examples").glob("*.[jp][pn]g"))
    detector = Detector.load(args.weights)
    flagged_gallery = []
    for path in gallery:
        faces = detector.cut_faces(load_image(path))
        if faces.found:
            d = distance(embed_all(faces.crops))
            flagged_gallery += [f"{path.name}: {', '.join(f'{x:.1f}' for x in d)}"]
    print("\ngallery faces (distance):\n  " + "\n  ".join(flagged_gallery))
    if held_scores:
        seen, held = np.concatenate(seen_scores), np.concatenate(held_scores)
        auc = roc_auc_score(np.r_[np.zeros(len(seen)), np.ones(len(held))], np.r_[seen, held])
        print(f"\nROC-AUC of the distance, held-out test faces against seen sources' test faces: {auc:.3f}")


if __name__ == "__main__":
    main()
