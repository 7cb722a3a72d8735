"""How much of MobileNetV2's last layer is silent: the ReLU6 the classifier reads. Run by hand.

For each network (each member of a fused pair), the validation crops of the shared sets
(``--per-set`` faces of each at most) are run up to ``out_relu`` (1280 channels, just before
pooling and the classifier), and the table gives the share of its activations that are exactly 0,
the share at the ReLU6's ceiling (6), and the share of channels that are 0 for every face (dead to
the classifier). ``imagenet`` is the network training starts from (``make_model`` before any step).
docs/training.md quotes it for runs trained with frozen and with trained BatchNorms.

    python bench/silent_units.py                           # the ImageNet start and weights/
    python bench/silent_units.py imagenet weights runs/bn  # any weights folders
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LAYER = "out_relu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("networks", nargs="*", default=["imagenet", str(REPO / "weights")],
                        help="weights folders, or 'imagenet' for the starting point (default: imagenet weights/)")
    parser.add_argument("--per-set", type=int, default=200, help="validation faces of each set at most (default 200)")
    args = parser.parse_args()

    import keras
    import numpy as np

    from detector.card import ModelCard
    from detector.data import load_set
    from detector.defaults import SHARED_DATA, SHARED_SETS
    from detector.faces import FACE_MARGIN
    from detector.model import INPUT_SIZE, make_model, member_layers

    def network(name: str) -> tuple[keras.Model, int, float]:
        if name == "imagenet":
            return make_model(INPUT_SIZE), INPUT_SIZE, FACE_MARGIN
        card = ModelCard.load(name)
        return keras.saving.load_model(Path(name) / "model.keras", safe_mode=True), card.input_size, card.face_margin

    rng = np.random.default_rng(0)
    print(f"{'network':<24} {'zero':>7} {'at 6':>7} {'dead channels':>14}")
    crops: dict[tuple[int, float], np.ndarray] = {}
    for name in args.networks:
        model, size, margin = network(name)
        if (size, margin) not in crops:
            parts = []
            for set_name in SHARED_SETS:
                val = load_set(SHARED_DATA / set_name, size, margin=margin).split("val").with_faces()
                parts.append(val.images[rng.permutation(len(val.images))[: args.per_set]])
            crops[size, margin] = np.concatenate(parts)
        for layer in member_layers(model, LAYER):
            probe = keras.Model(model.input, model.get_layer(layer).output)
            acts = np.concatenate([np.asarray(probe(crops[size, margin][i:i + 64].astype("float32"), training=False))
                                   for i in range(0, len(crops[size, margin]), 64)])
            zero, ceiling = float(np.mean(acts == 0)), float(np.mean(acts >= 6))
            dead = float(np.mean(np.all(acts.reshape(-1, acts.shape[-1]) == 0, axis=0)))
            label = (Path(name).name or name) + (f" {layer.removesuffix(LAYER)}" if layer != LAYER else "")
            print(f"{label:<24} {zero:>7.1%} {ceiling:>7.1%} {dead:>14.1%}")


if __name__ == "__main__":
    main()
