"""GPU training throughput: nasdb's device loop against the textbook loop, slots, precision, compile.

Three architectures sampled from REMAP's chain (`nasdb.search`, seeds in order, the first three
CNNs under 100k parameters) are trained on the same images from the same initial weights by:

- **textbook**: a torchvision-style dataset (one PIL image + `ToTensor` + `Normalize` per sample),
  a `DataLoader`, each batch copied to the device, `loss.item()` every step
  (`benchmarks/train_throughput.py`'s loop, on the chosen device);
- **ours fp32** and **ours bf16**: `nasdb.trainers.loop.train` with the data on the device once,
  index batches, metrics read once per epoch, channels_last on CUDA, fp32 or bf16 autocast;
- **ours compiled** (CUDA, or `--compile`): the same with `torch.compile`, whose first-run
  compile seconds are printed apart from the steady rate.

Images/s count training images over training time (device synchronised; the first run of each
loop is an untimed warm-up). GPU utilisation is sampled every 50 ms while each loop runs (NVML
through `torch.cuda.utilization`, else `nvidia-smi`); on the CPU the process's CPU utilisation is
printed instead.

**Slots**: real `nasdb worker --slots K --exit-when-idle` processes, 1 slot and then K, train the
same queue of jobs (the three architectures, repeated) in a throwaway database each
(benchmarks/_server.py); the total rate is the training images of all jobs over the time from the
first JobClaimed to the last TrainingCompleted (process start-up excluded, dataset loading and
evaluation included: what a user gets).

**Reference**: the `cnn` reference classifier trained for 10 epochs on full Fashion-MNIST (target
on one H100/H200: at most 15 s); `--quick` trains it for 1 epoch on the quick subset.

Run `python benchmarks/gpu_throughput.py` on a GPU machine, or `--quick` (any device; the suite
runs `--quick --device cpu --dataset digits`). The first line printed is the exact command.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from _server import bench_database, embedded_admin_url  # benchmarks/_server.py
from torch import nn
from train_throughput import textbook_dataset, textbook_train  # benchmarks/train_throughput.py

from nasdb.search import Architecture, count_params, sample_architecture
from nasdb.trainers.acceleration import Acceleration
from nasdb.trainers.build import build_module
from nasdb.trainers.datasets import DEFAULT_FASHION_MNIST_DIR, LoadedDataset, load_dataset
from nasdb.trainers.devices import describe_device, select_device
from nasdb.trainers.loop import train

MAX_PARAMS = 100_000


@dataclass(frozen=True)
class Sampled:
    seed: int
    arch: Architecture
    params: int
    glyph: str


def sampled_cnns(data: LoadedDataset, n: int = 3) -> list[Sampled]:
    """The first ``n`` REMAP samples (seeds 0, 1, ...) with a Conv2D and under 100k parameters."""
    shape, k = data.input_shape, data.num_classes
    chosen: list[Sampled] = []
    for seed in range(10_000):
        arch = sample_architecture(shape, k, seed=seed)
        params = count_params(arch, shape, k)
        if params < MAX_PARAMS and "Conv2D" in arch.layer_types:
            chosen.append(Sampled(seed, arch, params, arch.glyph(k)))
            if len(chosen) == n:
                break
    return chosen


# --------------------------------------------------------------------------------------------------
# utilisation
# --------------------------------------------------------------------------------------------------


class Utilisation:
    """Mean device utilisation while a block runs: GPU % (NVML / nvidia-smi) or process CPU %."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.samples: list[float] = []
        self._stop = threading.Event()

    def _gpu_percent(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no NVML bindings: ask nvidia-smi
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                     "-i", str(self.device.index or 0)], capture_output=True, text=True, timeout=5)
                return float(out.stdout.strip().splitlines()[0])
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return None

    @contextmanager
    def measure(self) -> Iterator[Utilisation]:
        self.samples = []
        if self.device.type != "cuda":
            wall, cpu = time.perf_counter(), time.process_time()
            yield self
            elapsed = max(time.perf_counter() - wall, 1e-9)
            self.samples = [100.0 * (time.process_time() - cpu) / elapsed / (os.cpu_count() or 1)]
            return
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.05):
                value = self._gpu_percent()
                if value is not None:
                    self.samples.append(value)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def text(self) -> str:
        if not self.samples:
            return "n/a"
        kind = "gpu" if self.device.type == "cuda" else "cpu"
        return f"{kind} {np.mean(self.samples):.0f}%"


# --------------------------------------------------------------------------------------------------
# loops
# --------------------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours(model: nn.Module, data: LoadedDataset, hp: dict[str, Any], device: torch.device,
         acc: Acceleration, key: str | None = None) -> tuple[float, float]:
    """(images/s over training time, seconds including compile and evaluation)."""
    t0 = time.perf_counter()
    result = train(copy.deepcopy(model), data, hp, device, acceleration=acc, compile_key=key)
    total = time.perf_counter() - t0
    return data.split_sizes["train"] * result.epochs_trained / result.train_seconds, total


def textbook(model: nn.Module, data: LoadedDataset, hp: dict[str, Any],
             device: torch.device) -> float:
    seconds, _ = textbook_train(copy.deepcopy(model), textbook_dataset(data), epochs=hp["epochs"],
                                batch_size=hp["batch_size"], lr=hp["lr"], seed=hp["seed"],
                                device=device)
    return data.split_sizes["train"] * hp["epochs"] / seconds


# --------------------------------------------------------------------------------------------------
# slots: real worker processes on a real database
# --------------------------------------------------------------------------------------------------


def slots_rate(admin_url: str, kind: str, limit: int | None, train_size: int,
               archs: list[Sampled], hp: dict[str, Any], device: torch.device, slots: int,
               jobs: int) -> tuple[float, int]:
    """(images/s over all jobs, jobs completed) for ``nasdb worker --slots K`` on a fresh queue."""
    from nasdb.ingest import EventStore, Projector
    from nasdb.migrations import ensure_schema
    from nasdb.read import get_dataset
    from nasdb.schema import Database
    from nasdb.search import Hyperparameters
    from nasdb.steer import Proposal, propose
    from nasdb.trainers.registry import register_dataset

    with bench_database(admin_url, prefix="nasdb_bench_slots") as url:
        db = Database(url)
        ensure_schema(db)
        store = EventStore(db=db)
        dataset_id = register_dataset(store, kind, limit=limit)
        Projector(db).catch_up()
        info = get_dataset(db, dataset_id)
        hyper = Hyperparameters.from_json({**hp, "schedule": "none"})
        proposals = [Proposal(archs[i % len(archs)].arch, hyper, "handcrafted")
                     for i in range(jobs)]
        propose(store, info, proposals)
        Projector(db).catch_up()
        env = {**os.environ, "NASDB_DATABASE_URL": url, "NASDB_POLL_SECONDS": "0.5"}
        cmd = [sys.executable, "-m", "nasdb.ui.cli", "worker", "--device", str(device),
               "--slots", str(slots), "--exit-when-idle"]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=3600)
        with db.connect() as conn:
            row = conn.execute(
                """select extract(epoch from max(recorded_at) filter (where type =
                          'TrainingCompleted') - min(recorded_at) filter (where type = 'JobClaimed')),
                          coalesce(sum((data->>'epochs_trained')::int)
                                   filter (where type = 'TrainingCompleted'), 0),
                          count(*) filter (where type = 'TrainingCompleted')
                   from events where stream_id like 'model-%%'""").fetchone()
        assert row is not None
        seconds, epochs, done = float(row[0] or math.nan), int(row[1]), int(row[2])
        return train_size * epochs / seconds, done


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small subset, 1 epoch, 1 repeat")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--dataset", default=None, help="fashion-mnist (default if installed) "
                        "or digits")
    parser.add_argument("--limit", type=int, default=None, help="training images (quick: 4000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (quick 1, else 2)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--architectures", type=int, default=3, help="sampled CNNs compared "
                        "(the suite's smoke test uses 1)")
    parser.add_argument("--slots", type=int, default=4, help="K for the 1-vs-K slot comparison")
    parser.add_argument("--jobs", type=int, default=None, help="jobs in the slot queue (quick: 2K)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile on "
                        "the CPU (always on CUDA)")
    parser.add_argument("--reference-epochs", type=int, default=None,
                        help="epochs of the cnn reference run (quick 1, else 10)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs, best kept "
                        "(quick 1, else 2)")
    parser.add_argument("--url", default=os.environ.get("NASDB_DATABASE_URL"),
                        help="server for the slot runs (default: a throwaway embedded one)")
    args = parser.parse_args(argv)
    print("$ " + shlex.join(["python", "benchmarks/gpu_throughput.py", *sys.argv[1:]]
                            if argv is None else ["python", "benchmarks/gpu_throughput.py", *argv]))
    device = select_device(args.device)
    kind = args.dataset or ("fashion-mnist" if any(
        (DEFAULT_FASHION_MNIST_DIR / f).exists()
        for f in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")) else "digits")
    limit = args.limit if args.limit is not None else (4000 if args.quick else None)
    if kind == "digits":
        limit = None  # 1,294 training images: all of them
    epochs = args.epochs or (1 if args.quick else 2)
    repeats = args.repeats or (1 if args.quick else 2)
    jobs = args.jobs or 2 * args.slots
    data = load_dataset(kind, limit=limit)
    facts = describe_device(device)
    print(f"device: {device} ({facts['device_name']}, "
          f"{facts['device_memory_bytes'] / 2**30:.1f} GiB"
          + (f", CUDA {facts['cuda_version']}" if device.type == "cuda" else
             f", {facts['cpu_threads']} torch threads of {os.cpu_count()} cpus")
          + f"), torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"data: {kind} {data.input_shape}, {data.split_sizes['train']} training images x "
          f"{epochs} epoch(s), batch {args.batch_size}, Adam lr 1e-3, best of {repeats} timed "
          "run(s) after one warm-up run per loop")
    archs = sampled_cnns(data, args.architectures)
    hp = {"optimizer": "adam", "lr": 1e-3, "batch_size": args.batch_size, "epochs": epochs,
          "schedule": "none", "seed": 0, "early_stop_patience": 0}
    cuda = device.type == "cuda"
    variants = [("ours fp32", Acceleration("fp32", cuda, False)),
                ("ours bf16", Acceleration("bf16", cuda, False))]
    if cuda or args.compile:
        variants.append(("ours bf16 compiled", Acceleration("bf16", cuda, True)))
    util = Utilisation(device)
    print()
    header = f"{'architecture':<40} {'params':>7} {'loop':<20} {'img/s':>10} {'vs textbook':>11} " \
             f"{'util':>9}  note"
    print(header)
    print("-" * len(header))
    speedups: dict[str, list[float]] = {name: [] for name, _ in variants}
    for cand in archs:
        torch.manual_seed(0)
        model = build_module(cand.arch, data.input_shape, data.num_classes)
        name = f"{cand.glyph} (seed {cand.seed})"[:40]
        textbook(model, data, {**hp, "epochs": 1}, device)  # warm-up
        with util.measure():
            tb = max(textbook(model, data, hp, device) for _ in range(repeats))
        print(f"{name:<40} {cand.params:>7,} {'textbook':<20} {tb:>10,.0f} {'1.00x':>11} "
              f"{util.text():>9}", flush=True)
        for label, acc in variants:
            _, first = ours(model, data, hp, device, acc, key=f"bench-{cand.seed}")  # warm-up
            with util.measure():
                runs = [ours(model, data, hp, device, acc, key=f"bench-{cand.seed}")
                        for _ in range(repeats)]
            rate = max(r for r, _ in runs)
            speedups[label].append(rate / tb)
            note = f"first run {first:.1f} s (compiles), then {min(s for _, s in runs):.1f} s" \
                if acc.compile else ""
            print(f"{'':<40} {'':>7} {label:<20} {rate:>10,.0f} {rate / tb:>10.2f}x "
                  f"{util.text():>9}  {note}".rstrip(), flush=True)
    print()
    for label, values in speedups.items():
        geo = float(np.exp(np.mean(np.log(values))))
        print(f"{label}: {geo:.2f}x the textbook loop (geometric mean; min {min(values):.2f}x, "
              f"max {max(values):.2f}x; target on one H100/H200 >= 10x)")

    print()
    admin = args.url or embedded_admin_url(["fsync = off", "synchronous_commit = off"])
    rates = {}
    for k in (1, args.slots):
        rate, done = slots_rate(admin, kind, limit, data.split_sizes["train"], archs, hp, device,
                                k, jobs)
        rates[k] = rate
        print(f"slots {k}: {rate:,.0f} img/s over {done} jobs (nasdb worker --slots {k}, "
              f"{jobs} queued jobs, real worker processes)", flush=True)
    print(f"slots {args.slots} vs 1: {rates[args.slots] / rates[1]:.2f}x total throughput "
          "(target on one H100/H200 >= 2x for 4 slots)")

    print()
    ref_epochs = args.reference_epochs or (1 if args.quick else 10)
    ref_data = data if args.quick or kind != "fashion-mnist" else load_dataset(kind)
    torch.manual_seed(0)
    cnn = build_module(Architecture(reference="cnn"), ref_data.input_shape, ref_data.num_classes)
    acc = Acceleration.resolve(device)
    t0 = time.perf_counter()
    result = train(cnn, ref_data, {**hp, "epochs": ref_epochs}, device, acceleration=acc)
    sync(device)
    wall = time.perf_counter() - t0
    print(f"cnn reference: {ref_epochs} epoch(s) on {ref_data.split_sizes['train']} {kind} images "
          f"in {wall:.1f} s wall ({result.train_seconds:.1f} s training), test accuracy "
          f"{result.test_acc:.4f}, {acc.precision}, channels_last {acc.channels_last} "
          "(target on one H100/H200: 10 epochs of full Fashion-MNIST in <= 15 s)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
