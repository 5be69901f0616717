"""The modern recipe's augmentation rule: ``augment="auto"`` against always cropping and flipping.

The same model, the same images, the same seed and the same number of epochs, trained twice by
nasdb's training loop: once with the modern recipe as nasdb runs it (``augment="auto"``: no
augmentation in a run shorter than its ``augment_from_steps`` optimizer steps,
`MODERN_AUGMENT_FROM_STEPS`) and once with the baseline, the same recipe with random crops and
flips always on (``augment="crop-flip"``, what the recipe did before). Test accuracy on the
official 10,000 Fashion-MNIST test images.

    python benchmarks/recipe.py                # 15,000 training images, 4 epochs (the demo's size)
    python benchmarks/recipe.py --long         # all 54,000 images, 9 and 27 epochs (the default
                                               # study's top rungs on full Fashion-MNIST)
    python benchmarks/recipe.py --quick        # 3,000 images, 2 epochs
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

from _machine import machine_load  # benchmarks/_machine.py

from nasdb.search import Architecture, ConvBlock, GlobalAvgPool, HyperparameterSpace
from nasdb.search._hyperparameters import effective_augment
from nasdb.trainers.build import build_seeded
from nasdb.trainers.datasets import load_dataset
from nasdb.trainers.loop import train

FMNIST = "/usr/share/datasets/fashion-mnist"
#: The best model of a 240 s demo search (2.2 MFLOPs per image, 56,506 parameters).
MODEL = Architecture.of(ConvBlock(16, 3, 2, "gelu"), ConvBlock(32, 3, 2, "gelu"),
                        ConvBlock(32, 5, 2), ConvBlock(32, 5, 1, "gelu"), GlobalAvgPool())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 images, 2 epochs")
    parser.add_argument("--long", action="store_true",
                        help="all 54,000 training images, 9 and 27 epochs")
    parser.add_argument("--limit", type=int, default=None, help="training images (15,000)")
    parser.add_argument("--epochs", default=None,
                        help="epochs per run, comma-separated for several lengths (4)")
    args = parser.parse_args()
    limit = args.limit or (3000 if args.quick else None if args.long else 15_000)
    epochs = [int(e) for e in (args.epochs or ("2" if args.quick else "9,27" if args.long
                                                else "4")).split(",")]
    data = load_dataset("fashion-mnist", FMNIST, limit=limit)
    recipe = HyperparameterSpace.modern().base
    print(f"machine: {machine_load()}")
    for n in epochs:
        steps = n * math.ceil(int(data.y_train.shape[0]) / recipe.batch_size)
        print(f"{MODEL.glyph(data.num_classes)} on {data.y_train.shape[0]:,} Fashion-MNIST "
              f"images, {n} epochs ({steps} steps; auto augments from "
              f"{recipe.augment_from_steps})")
        for name, augment in (("nasdb (augment=auto)", "auto"),
                              ("baseline (augment=crop-flip)", "crop-flip")):
            hp = replace(recipe, epochs=n, augment=augment)
            module = build_seeded(MODEL, data.input_shape, data.num_classes, hp.seed)
            started = time.perf_counter()
            result = train(module, data, hp)
            used = effective_augment(augment, data.hflip, steps, hp.augment_from_steps)
            print(f"{name:30s} trains with {used:9s}: test acc {result.test_acc:.4f}, "
                  f"best val acc {result.best_val_acc or 0:.4f}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    print(f"machine: {machine_load()}")


if __name__ == "__main__":
    main()
