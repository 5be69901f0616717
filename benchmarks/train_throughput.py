"""Training throughput: nasdb's tensor loop against the textbook DataLoader loop.

For three architectures of different sizes (sampled from REMAP's chain by `nasdb.search` and built
by `nasdb.trainers.build`; three fixed `nn.Sequential` CNNs if those packages are missing) this
trains the same initial weights with the same optimizer, batch size and number of images twice:

- **ours**: `nasdb.trainers.loop.train` — the split lives in one tensor, batches are
  `randperm` index slices; the clock is `TrainResult.train_seconds` (training steps only).
- **textbook**: a torchvision-style `Dataset` that turns each uint8 image into a PIL image and
  applies `ToTensor()` + `Normalize()` per sample, a `DataLoader(shuffle=True)` with the same batch
  size, and the usual `zero_grad / forward / loss / backward / step / loss.item()` loop; the clock
  covers the epoch loop including data loading (that is the loop's cost), and no evaluation.

Both see exactly `images x epochs` training images from the same initial weights (a deep copy of
one module per run). Before the timed runs, each architecture does a few untimed forward/backward
steps so one-time kernel set-up is excluded equally from both; the two loops alternate
``--repeats`` times and each reports its median time (the machine may be shared; the load average
is printed at the start and the end).
Training FLOPs are taken as 3x the forward FLOPs counted by `torch.utils.flop_counter`; the peak is
the best of several large float32 `torch.mm` calls on this machine.

Run: `python benchmarks/train_throughput.py --quick` (< 2 minutes on 2 cores) or without `--quick`
for the full 54k-image Fashion-MNIST training split. The first line printed is the exact command.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from nasdb.trainers.datasets import DEFAULT_FASHION_MNIST_DIR, LoadedDataset, load_dataset
from nasdb.trainers.devices import cpu_name
from nasdb.trainers.loop import train

# --------------------------------------------------------------------------------------------------
# architectures
# --------------------------------------------------------------------------------------------------

#: Forward FLOPs per image the three architectures are chosen near (small, medium, large).
FLOP_TARGETS = (1e5, 1e6, 1e7)


@dataclass
class Candidate:
    name: str
    make: Callable[[], nn.Module]


def sampled_architectures(data: LoadedDataset, seeds: int = 400) -> tuple[list[Candidate], str]:
    """Three REMAP-sampled architectures whose forward FLOPs are nearest `FLOP_TARGETS`."""
    from nasdb.search import count_flops, sample_architecture
    from nasdb.trainers.build import build_module

    shape, k = data.input_shape, data.num_classes
    pool = []
    for seed in range(seeds):
        arch = sample_architecture(shape, k, seed=seed)
        pool.append((count_flops(arch, shape, k), seed, arch))
    chosen = []
    for target in FLOP_TARGETS:
        _, seed, arch = min(pool, key=lambda t: (abs(np.log(max(t[0], 1) / target)), t[1]))
        chosen.append(
            Candidate(
                name=f"{arch.glyph(k)} (seed {seed})",
                make=functools.partial(build_module, arch, shape, k),
            )
        )
    return chosen, "sampled from nasdb.search's REMAP chain, built by nasdb.trainers.build"


def fixed_cnns(data: LoadedDataset) -> tuple[list[Candidate], str]:
    """Three plain CNNs of growing size (used when nasdb.search / build are not importable)."""
    c, h, w = data.input_shape
    k = data.num_classes

    def cnn(widths: tuple[int, ...]) -> Callable[[], nn.Module]:
        def make() -> nn.Module:
            layers: list[nn.Module] = []
            channels, size = c, (h, w)
            for width in widths:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
                channels, size = width, (size[0] // 2, size[1] // 2)
            layers += [nn.Flatten(), nn.Linear(channels * size[0] * size[1], k)]
            return nn.Sequential(*layers)

        return make

    specs = [(8,), (16, 32), (32, 64, 128)]
    cands = [Candidate("CNN " + "-".join(map(str, s)), cnn(s)) for s in specs]
    return cands, "fixed nn.Sequential CNNs (nasdb.search / nasdb.trainers.build not importable)"


def forward_flops(module: nn.Module, shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass on one image, counted by torch.utils.flop_counter."""
    module.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.zeros(1, *shape))
    module.train()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------------------------------
# the textbook loop
# --------------------------------------------------------------------------------------------------


class TextbookImages(Dataset[tuple[torch.Tensor, int]]):
    """torchvision's MNIST-style dataset: uint8 arrays, one PIL image + transform per sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images = images  # (N, H, W) or (N, H, W, C) uint8
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[index])
        return self.transform(img), int(self.labels[index])


def textbook_dataset(data: LoadedDataset) -> TextbookImages:
    """The same training images as uint8 (undoing our normalisation; exact for 8-bit sources)."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    raw = ((data.x_train * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    images = raw[:, 0] if raw.shape[1] == 1 else raw.transpose(0, 2, 3, 1)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])
    return TextbookImages(np.ascontiguousarray(images), data.y_train.numpy(), transform)


def textbook_train(
    model: nn.Module, dataset: TextbookImages, *, epochs: int, batch_size: int, lr: float, seed: int,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """The tutorial loop; returns (seconds including data loading, mean loss of the last epoch).

    On a GPU the model lives there and each batch is copied to it (``.to(device)``), as tutorials
    do; the per-batch ``loss.item()`` synchronises with the device every step."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    model.train()
    last = 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        running, batches = 0.0, 0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
            batches += 1
        last = running / max(batches, 1)
    return time.perf_counter() - t0, last


# --------------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------------


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Best-of-`repeats` float32 n x n matmul rate, GFLOP/s (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def warm_up(model: nn.Module, data: LoadedDataset, batch_size: int, steps: int = 3) -> None:
    """A few untimed training steps on a throw-away copy (kernel set-up, allocator warm-up)."""
    scratch = copy.deepcopy(model)
    opt = torch.optim.Adam(scratch.parameters(), lr=1e-3)
    for i in range(steps):
        xb = data.x_train[i * batch_size : (i + 1) * batch_size]
        yb = data.y_train[i * batch_size : (i + 1) * batch_size]
        opt.zero_grad()
        F.cross_entropy(scratch(xb), yb).backward()
        opt.step()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k images, 1 epoch (< 2 minutes)")
    parser.add_argument("--limit", type=int, default=None, help="training images (default 10k "
                        "with --quick, else the whole split)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=None, help="epochs (1 quick, else 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (REMAP: 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dataset",
        default=None,
        help="fashion-mnist or digits (default: fashion-mnist if installed)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="timed runs per loop, the median reported (3 quick, else 5)"
    )
    parser.add_argument("--fixed", action="store_true", help="use the fixed CNNs, not sampled ones")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    limit = args.limit if args.limit is not None else (10_000 if args.quick else None)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 2)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)

    print("$ " + shlex.join(["python", "benchmarks/train_throughput.py", *sys.argv[1:]]))
    kind = args.dataset or (
        "fashion-mnist" if (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()
        or (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte").exists() else "digits"
    )  # fmt: skip
    data = load_dataset(kind, limit=limit)
    n = data.split_sizes["train"]
    peak = matmul_peak_gflops()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cpus, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"data: {kind} {data.input_shape}, {n} training images x {epochs} epoch(s), "
        f"batch {args.batch_size}, Adam lr {args.lr:g}, median of {repeats} run(s) per loop"
    )
    print(f"matmul peak (float32 2048x2048 torch.mm, best of 7): {peak:.1f} GFLOP/s")

    if args.fixed:
        candidates, origin = fixed_cnns(data)
    else:
        try:
            candidates, origin = sampled_architectures(data)
        except ImportError:
            candidates, origin = fixed_cnns(data)
    print(f"architectures: {origin}")
    print()

    textbook_data = textbook_dataset(data)
    hp = {
        "optimizer": "adam", "lr": args.lr, "batch_size": args.batch_size, "epochs": epochs,
        "schedule": "none", "seed": args.seed, "early_stop_patience": 0,
    }  # fmt: skip
    header = (
        f"{'architecture':<44} {'params':>9} {'MFLOP/img':>10} {'ours img/s':>11} "
        f"{'textbook img/s':>15} {'speedup':>8} {'ours GFLOP/s (peak)':>20} "
        f"{'textbook GFLOP/s (peak)':>24} {'last loss ours/textbook':>24}"
    )
    print(header)
    print("-" * len(header))
    speedups = []
    for cand in candidates:
        torch.manual_seed(args.seed)
        model = cand.make()
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        fwd = forward_flops(model, data.input_shape)
        warm_up(model, data, args.batch_size)
        ours_times: list[float] = []
        tb_times: list[float] = []
        ours_loss = tb_loss = float("nan")
        for _ in range(repeats):  # alternate the two loops; the median of `repeats` for each
            result = train(copy.deepcopy(model), data, hp, device="cpu")
            ours_times.append(result.train_seconds)
            ours_loss = result.history[-1].train_loss
            seconds, tb_loss = textbook_train(
                copy.deepcopy(model),
                textbook_data,
                epochs=epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
            )
            tb_times.append(seconds)
        ours_s, tb_s = float(np.median(ours_times)), float(np.median(tb_times))
        images = n * epochs
        ours_ips, tb_ips = images / ours_s, images / tb_s
        ours_gf, tb_gf = 3 * fwd * ours_ips / 1e9, 3 * fwd * tb_ips / 1e9
        speedups.append(ours_ips / tb_ips)
        print(
            f"{cand.name[:44]:<44} {params:>9,} {fwd / 1e6:>10.3f} {ours_ips:>11,.0f} "
            f"{tb_ips:>15,.0f} {ours_ips / tb_ips:>7.2f}x "
            f"{f'{ours_gf:.2f} ({ours_gf / peak:.1%})':>20} "
            f"{f'{tb_gf:.2f} ({tb_gf / peak:.1%})':>24} "
            f"{f'{ours_loss:.3f} / {tb_loss:.3f}':>24}",
            flush=True,
        )
    print()
    geo = float(np.exp(np.mean(np.log(speedups))))
    print(
        f"speedup: min {min(speedups):.2f}x, geometric mean {geo:.2f}x, max {max(speedups):.2f}x "
        f"(target >= 3x); load average at the end {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
