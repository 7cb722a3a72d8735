"""Would ``python train.py`` ship this pair, or one of its networks alone? Run by hand.

A two-network recipe ships the pair only if it scores at least as well on validation as
either network did at its best epoch (``training.member_to_ship_alone``). This scores a
weights folder's fused network on the validation crops of its card's sets, as
``training.fuse_members`` does before shipping (``training.fused_validation_auc``), and prints
that figure beside its members' from the card. docs/training.md quotes it on the shipped pair.

    python bench/fusion_check.py weights/                     # ~5 minutes alone
    python bench/fusion_check.py weights/ --batch-size 16     # less memory, beside other work
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path, help="a folder with a two-network card (model.keras, model_card.json)")
    parser.add_argument("--batch-size", type=int, default=256, help="crops per call (default 256)")
    args = parser.parse_args()

    import keras

    from detector.card import MODEL_FILE, ModelCard
    from detector.training import card_sets, fused_validation_auc, member_to_ship_alone

    card = ModelCard.load(args.weights)
    members = card.training.get("members")
    if not members:
        sys.exit(f"{args.weights}: its card has one network, no pair to check")
    weighting = card.training["config"]["val_weighting"]
    model = keras.saving.load_model(args.weights / MODEL_FILE, safe_mode=True, compile=False)
    fused = fused_validation_auc(model, card_sets(card), weighting, args.batch_size)
    print(f"the pair: validation AUC {fused:.4f} (val_weighting {weighting!r})")
    for m in members:
        print(f"the {m['input_size']} px network at its best epoch: {m['best_val_auc']:.4f}")
    alone = member_to_ship_alone(fused, [m["best_val_auc"] for m in members])
    print("ships: " + ("the pair" if alone is None else f"the {members[alone]['input_size']} px network alone"))


if __name__ == "__main__":
    main()
