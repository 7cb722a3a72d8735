"""Regenerate ``weights/`` from labelled face sets.

    python train.py                      # the shipped model from the six sets of ../shared/data (140-min budget):
                                         # a network at 160 px, one at 192 px, fused (--second-size 0: the first alone)
    python train.py --resume             # go on from the last finished epoch of an interrupted run
    python train.py --quick --out /tmp/w # seconds, on a tiny subset: a smoke test
    python train.py --sets my_set/ other_set/ --out my_weights/
    python train.py --backbone scratch --stem-stride 5 --out runs/scratch   # the from-scratch network, for comparison
    python train.py --patch-layer block_5_add --out runs/patch5   # the patch-level network, for comparison
    python train.py --patch-loss 0.5 --out runs/patch-head   # the whole network, with a training-only patch head
    python train.py --leave-one-out --epochs 3 --second-epochs 3   # one run per fake family held out, tested on it (into the card)
    python train.py --strategy mirrored  # one replica per GPU of this host
    TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 0}}' \
        python train.py --strategy multiworker --shards gs://bucket/shards --second-size 0   # on each host, with its own task index
    python -m detector shards --out shards/ && python train.py --shards shards/ --second-size 0   # stream from TFRecords

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
    from detector.model import BACKBONES, PATCH_LAYERS

    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=d.sets, help="set folders (default: the six shared sets)")
    p.add_argument("--out", default=d.out_dir, help="output folder for model.keras and the card (default: weights/)")
    p.add_argument("--resume", action="store_true",
                   help="go on from the last epoch the run into --out finished (its run/ folder), same options")
    p.add_argument("--backbone", choices=BACKBONES, default=d.backbone, help=f"the network (default {d.backbone})")
    p.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=d.pretrained,
                   help="start MobileNetV2 from the ImageNet weights in third_party/ (default on)")
    p.add_argument("--patch-layer", choices=sorted(PATCH_LAYERS), default=d.patch_layer,
                   help="cut MobileNetV2 at this layer and classify patches of the face, averaged (default: the whole "
                   "network; see model.make_model)")
    p.add_argument("--train-batchnorm", action=argparse.BooleanOptionalAction, default=d.train_batchnorm,
                   help="train MobileNetV2's BatchNorms from their inputs' statistics instead of freezing them (default "
                   f"{'on' if d.train_batchnorm else 'off'}; see TrainConfig.train_batchnorm)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"most epochs (default {d.epochs})")
    p.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch,
                   help=f"steps between validations (default {d.steps_per_epoch})")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help=f"peak learning rate (default {d.learning_rate})")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes, help=f"time budget (default {d.max_minutes})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--input-size", type=int, default=d.input_size, help=f"crop side in px (default {d.input_size})")
    p.add_argument("--second-size", type=int, default=d.second_size or 0,
                   help="also train a second network on crops of this side and ship the two fused, the mean of their "
                   f"calibrated logits (default {d.second_size or 0}; 0: one network; see TrainConfig.second_size)")
    p.add_argument("--second-epochs", type=int, default=d.second_epochs,
                   help=f"most epochs of the second network (default {d.second_epochs})")
    p.add_argument("--stem-stride", type=int, default=d.stem_stride,
                   help=f"scratch network: side and stride of the patchify stem; scale it with --input-size to keep the "
                   f"network's cost (default {d.stem_stride}; 1 for a 3x3 full-resolution stem)")
    p.add_argument("--face-margin", type=float, default=d.face_margin,
                   help=f"face crop side relative to the face box, in training and at run time (default {d.face_margin})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    p.add_argument("--match-resolution", action=argparse.BooleanOptionalAction, default=d.match_resolution,
                   help="show each face at the resolution of a face of the other class of its source (default on; "
                   "see TrainConfig.match_resolution)")
    p.add_argument("--match-look", action=argparse.BooleanOptionalAction, default=d.match_look,
                   help="give half the faces the brightness, contrast and colour of a face of the other class of "
                   "their source (default on; see TrainConfig.match_look)")
    p.add_argument("--paired", action=argparse.BooleanOptionalAction, default=d.paired,
                   help="train each fake beside the real face it was made from, augmented alike "
                   f"(default {'on' if d.paired else 'off'}; see TrainConfig.paired)")
    p.add_argument("--self-blend-share", type=float, default=d.self_blend_share,
                   help=f"share of each source's fakes made by blending a real face into itself (default "
                   f"{d.self_blend_share}; 0: none; see TrainConfig.self_blend_share)")
    p.add_argument("--smooth-prob", type=float, default=d.augment.smooth_prob,
                   help="chance that a training crop, real or fake alike, is smoothed as beauty modes and retouching "
                   f"smooth skin (default {d.augment.smooth_prob}; 0: none; see AugmentConfig.smooth_prob)")
    p.add_argument("--pair-loss", type=float, default=d.pair_loss_weight,
                   help=f"weight of the ranking loss on real/fake pairs (default {d.pair_loss_weight}; "
                   "see TrainConfig.pair_loss_weight)")
    p.add_argument("--patch-loss", type=float, default=d.patch_loss_weight,
                   help="weight of a training-only head that scores the face patch by patch from the network's "
                   f"stride-8 features (default {d.patch_loss_weight}: off; tried and not shipped, docs/training.md run G)")
    p.add_argument("--val-weighting", choices=VAL_WEIGHTINGS, default=d.val_weighting,
                   help="combine the sources' validation AUCs, which pick the checkpoint, one vote per source or "
                   f"weighted by their images (default {d.val_weighting}; see TrainConfig.val_weighting)")
    p.add_argument("--cache-dir", default=None, help="cache of decoded crops (default ~/.cache/deepfake-detector)")
    p.add_argument("--quick", action="store_true", help="train for seconds on a tiny subset (smoke test)")
    p.add_argument("--strategy", choices=STRATEGIES, default=d.strategy,
                   help="tf.distribute strategy: one device, every GPU of this host, or the hosts of $TF_CONFIG "
                   "(default: default, one device); --batch-size is the global batch")
    p.add_argument("--shards", default=None,
                   help="stream the training split from this shard folder (python -m detector shards) instead of --sets")
    p.add_argument("--leave-one-out", nargs="*", default=None, metavar="FAMILY",
                   help="train one model per fake family held out (default: every family of detector.loso.FAMILIES) "
                   "with this recipe, test it on what it never saw, and add the result to the model card in --out "
                   "(the weights stay as they are)")
    p.add_argument("--work-dir", default="runs/leave-one-out", help="where --leave-one-out keeps its models")
    p.add_argument("--keep-finished", action="store_true",
                   help="--leave-one-out: reuse finished runs in --work-dir even if their recipe differs from this one "
                   "(the card names the settings that differ) instead of training them again")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    import_tensorflow()  # without its start-up notices; parse_args reads defaults from detector.training
    args = parse_args(argv)
    from detector.augment import AugmentConfig
    from detector.training import TrainConfig, train

    common = dict(sets=args.sets, seed=args.seed, cache_dir=args.cache_dir, strategy=args.strategy, shards=args.shards,
                  face_margin=args.face_margin, paired=args.paired, pair_loss_weight=args.pair_loss,
                  self_blend_share=args.self_blend_share,
                  patch_loss_weight=args.patch_loss,
                  val_weighting=args.val_weighting, match_resolution=args.match_resolution,
                  match_look=args.match_look, augment=AugmentConfig(smooth_prob=args.smooth_prob))
    if args.quick:
        cfg = TrainConfig.quick(args.out, **common)
    else:
        cfg = TrainConfig(out_dir=args.out, backbone=args.backbone, pretrained=args.pretrained,
                          patch_layer=args.patch_layer, train_batchnorm=args.train_batchnorm, epochs=args.epochs,
                          steps_per_epoch=args.steps_per_epoch, learning_rate=args.learning_rate,
                          max_minutes=args.max_minutes, input_size=args.input_size, stem_stride=args.stem_stride,
                          second_size=args.second_size or None, second_epochs=args.second_epochs,
                          batch_size=args.batch_size, **common)
    if args.leave_one_out is not None:
        from detector.loso import leave_one_out_report

        report = leave_one_out_report(cfg, args.work_dir, card_dir=args.out, families=args.leave_one_out or None,
                                      resume=args.resume, keep_finished=args.keep_finished)
        print(json.dumps(report, indent=2))
        return 0
    card = train(cfg, resume=args.resume)
    print(card.metrics_table("test"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
