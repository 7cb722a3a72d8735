"""Regenerate ``weights/`` from labelled face sets.

    python train.py                      # the shipped model, from ../shared/data (< 90 min on 2 CPU cores)
    python train.py --quick --out /tmp/w # seconds, on a tiny subset: a smoke test
    python train.py --sets my_set/ other_set/ --out weights/
    python train.py --cross-set ../shared/data/dfdc_faces --epochs 8   # train on one set, test on all (into the card)
    python train.py --strategy mirrored  # one replica per GPU of this host
    TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 0}}' \
        python train.py --strategy multiworker --shards gs://bucket/shards   # on each host, with its own task index
    python -m detector shards --out shards/ && python train.py --shards shards/   # stream from TFRecords

Each set is a folder with ``real/`` and ``fake/`` images and an optional ``metadata.csv``
(``file,label,split,group``). All training logic lives in ``detector.training``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from detector.startup import import_tensorflow


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from detector.training import STRATEGIES, VAL_WEIGHTINGS, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=d.sets, help="set folders (default: both shared sets)")
    p.add_argument("--out", default=d.out_dir, help="output folder for model.keras and the card (default: weights/)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"most epochs (default {d.epochs})")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes, help=f"time budget (default {d.max_minutes})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--input-size", type=int, default=d.input_size, help=f"crop side in px (default {d.input_size})")
    p.add_argument("--stem-stride", type=int, default=d.stem_stride,
                   help=f"side and stride of the patchify stem; scale it with --input-size to keep the network's "
                   f"cost (default {d.stem_stride}; 1 for a 3x3 full-resolution stem)")
    p.add_argument("--face-margin", type=float, default=d.face_margin,
                   help=f"face crop side relative to the face box, in training and at run time (default {d.face_margin})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    p.add_argument("--paired", action=argparse.BooleanOptionalAction, default=d.paired,
                   help="train each fake beside the real face it was made from, augmented alike "
                   f"(default {'on' if d.paired else 'off'}; see TrainConfig.paired)")
    p.add_argument("--pair-loss", type=float, default=d.pair_loss_weight,
                   help=f"weight of the ranking loss on real/fake pairs (default {d.pair_loss_weight}; "
                   "see TrainConfig.pair_loss_weight)")
    p.add_argument("--val-weighting", choices=VAL_WEIGHTINGS, default=d.val_weighting,
                   help="combine the sets' validation AUCs, which pick the checkpoint, weighted by their images "
                   f"or one vote per set (default {d.val_weighting}; see TrainConfig.val_weighting)")
    p.add_argument("--cache-dir", default=None, help="cache of decoded crops (default ~/.cache/deepfake-detector)")
    p.add_argument("--quick", action="store_true", help="train for seconds on a tiny subset (smoke test)")
    p.add_argument("--strategy", choices=STRATEGIES, default=d.strategy,
                   help="tf.distribute strategy: one device, every GPU of this host, or the hosts of $TF_CONFIG "
                   "(default: default, one device); --batch-size is the global batch")
    p.add_argument("--shards", default=None,
                   help="stream the training split from this shard folder (python -m detector shards) instead of --sets")
    p.add_argument("--cross-set", nargs="*", default=None, metavar="SET",
                   help="train one model on each SET alone (default: each of --sets) with this recipe, test it "
                   "on every set, and add the result to the model card in --out (the weights stay as they are)")
    p.add_argument("--work-dir", default="runs/cross-set", help="where --cross-set keeps its models")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    import_tensorflow()  # without its start-up notices; parse_args reads defaults from detector.training
    args = parse_args(argv)
    from detector.training import TrainConfig, train

    common = dict(sets=args.sets, seed=args.seed, cache_dir=args.cache_dir, strategy=args.strategy, shards=args.shards,
                  face_margin=args.face_margin, paired=args.paired, pair_loss_weight=args.pair_loss,
                  val_weighting=args.val_weighting)
    if args.quick:
        cfg = TrainConfig.quick(args.out, **common)
    else:
        cfg = TrainConfig(out_dir=args.out, epochs=args.epochs, max_minutes=args.max_minutes,
                          input_size=args.input_size, stem_stride=args.stem_stride, batch_size=args.batch_size, **common)
    if args.cross_set is not None:
        from detector.cross_set import cross_set_report

        report = cross_set_report(cfg, args.work_dir, card_dir=args.out, train_on=args.cross_set or None)
        print(json.dumps(report, indent=2))
        return 0
    card = train(cfg)
    print(card.metrics_table("test"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
