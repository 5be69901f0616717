"""The memory guard: estimates, a job skipped (not failed) by a small device, a configured bound
that refuses a real allocation, and an out-of-memory job that ends as TrainingFailed while the
worker lives on."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest
import torch

from nasdb.ingest import Projector
from nasdb.schema import Database
from nasdb.schema.errors import InvalidRequest
from nasdb.search import Architecture
from nasdb.trainers.build import build_module
from nasdb.trainers.memory import estimate_job_bytes, parse_bytes
from nasdb.trainers.worker import Worker

from .test_worker import TINY, queue, start_worker, types_of

WIDE = {"layers": [{"type": "Conv2D", "filters": 64, "kernel": 3, "padding": "same"},
                   {"type": "Activation", "fn": "relu"}] * 2}
HUNGRY = {"layers": [{"type": "Conv2D", "filters": 256, "kernel": 1},
                     *[{"type": "Activation", "fn": fn} for fn in ("tanh", "relu") * 4]]}
"""Little arithmetic, much memory: nine 256x8x8 outputs per image, about 760 MiB at batch 1294."""
DIGITS = ((1, 8, 8), (1294, 144, 359))


def estimate(layers: dict[str, object], batch_size: int) -> int:
    arch = Architecture.from_json(layers)
    return estimate_job_bytes(lambda: build_module(arch, DIGITS[0], 10), DIGITS[0], batch_size,
                              DIGITS[1]).total


def test_sizes_parse() -> None:
    assert [parse_bytes(t) for t in ("512M", "2G", "1.5g", "1048576", "64KiB")] == \
        [2**29, 2**31, 3 * 2**29, 2**20, 2**16]
    for bad in ("", "-1G", "lots", "0"):
        with pytest.raises(InvalidRequest, match="expected a positive size like 512M"):
            parse_bytes(bad)


def test_the_estimate_counts_weights_activations_and_data() -> None:
    arch = Architecture.from_json(WIDE)
    module = build_module(arch, DIGITS[0], 10)
    params = sum(p.numel() for p in module.parameters())
    small = estimate_job_bytes(lambda: build_module(arch, DIGITS[0], 10), DIGITS[0], 64, DIGITS[1])
    large = estimate_job_bytes(lambda: build_module(arch, DIGITS[0], 10), DIGITS[0], 1024,
                               DIGITS[1])
    assert small.params == large.params == params
    assert small.weights == 16 * params
    assert small.data == sum(DIGITS[1]) * (4 * 64 + 8)
    # per image: input 64 + four 64x8x8 outputs (conv, relu, conv, relu) + logits 10 (the head
    # flattens inside its Dense), plus 2x the largest for the gradients in flight
    per_image = 64 + 4 * 4096 + 10 + 2 * 4096
    assert large.activations == 4 * 1024 * per_image
    assert small.activations == 4 * 359 * 2 * 4096  # evaluation (359 test images) dominates
    huge = Architecture.from_json({"layers": [{"type": "Dense", "units": 10**9}]})
    assert estimate_job_bytes(lambda: build_module(huge, DIGITS[0], 10), DIGITS[0], 8,
                              DIGITS[1]).params > 7 * 10**10  # estimated, never allocated


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_estimate_bounds_what_training_really_allocates_on_a_gpu() -> None:
    from nasdb.trainers.datasets import load_dataset
    from nasdb.trainers.loop import train

    data = load_dataset("digits")
    arch = Architecture.from_json(WIDE)
    torch.cuda.reset_peak_memory_stats()
    train(build_module(arch, DIGITS[0], 10), data, {"epochs": 1, "batch_size": 1024,
                                                   "early_stop_patience": 0}, "cuda")
    assert torch.cuda.max_memory_allocated() <= estimate(WIDE, 1024)


def test_a_job_too_large_for_this_device_is_left_queued_for_a_larger_one(db: Database) -> None:
    [wide] = queue(db, 1, epochs=1, layers=WIDE, batch_size=1024)
    small_jobs = queue_tiny(db, 2)
    budget = (estimate(TINY, 256) + estimate(WIDE, 1024)) // 2
    logs: list[str] = []
    assert Worker(db, memory_limit=budget, log=logs.append, name="small").run() == 2
    assert [t for t, _ in types_of(db, wide)] == ["ArchitectureProposed", "TrainingRequested"]
    assert any(f"small: leaving {wide} to a larger device: needs about" in m for m in logs)
    for model_id in small_jobs:
        assert "TrainingCompleted" in [t for t, _ in types_of(db, model_id)]
    Projector(db).catch_up()
    with db.connect() as conn:
        assert conn.execute("select state from jobs where model_id = %s", (wide,)
                            ).fetchone() == ("queued",)
    assert Worker(db, memory_limit="4G", name="large").run() == 1
    claims = [d for t, d in types_of(db, wide) if t == "JobClaimed"]
    assert [c["worker"] for c in claims] == ["large"]


def queue_tiny(db: Database, n: int) -> list[str]:
    return queue(db, n, epochs=1)


def test_a_configured_bound_refuses_a_real_allocation() -> None:
    code = textwrap.dedent("""
        import torch
        from nasdb.trainers.loop import _is_oom
        from nasdb.trainers.memory import MemoryGuard
        print(MemoryGuard(torch.device("cpu"), limit="128M").enforce())
        torch.ones(32 * 2**20 // 4)  # 32 MiB fits
        try:
            torch.ones(512 * 2**20 // 4)
        except Exception as e:
            print("refused", _is_oom(e))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("allocations capped at 128.0 MiB above the ")
    assert lines[1] == "refused True"


def _data_segment_now() -> int:
    code = "import nasdb.ui.cli, nasdb.trainers.worker, torch; torch.ones(1); " \
           "print(open('/proc/self/status').read().split('VmData:')[1].split()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return int(out.stdout) * 1024


def test_out_of_memory_fails_the_job_with_the_reason_and_the_worker_carries_on(
        db: Database) -> None:
    [hungry] = queue(db, 1, epochs=1, layers=HUNGRY, batch_size=2048)
    [tiny] = queue_tiny(db, 1)
    # the machine runs short under the worker: the OS refuses allocations 400 MiB above what a
    # started worker uses (the guard's estimate, made for the whole machine, lets the job in)
    limit = _data_segment_now() + 400 * 2**20

    def short_of_memory() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))

    proc = start_worker(db, "--exit-when-idle", preexec_fn=short_of_memory)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    failed = [d for t, d in types_of(db, hungry) if t == "TrainingFailed"]
    assert len(failed) == 1, output
    assert failed[0]["error"].startswith("out of memory on cpu at epoch 1 with batch_size 2048")
    assert "TrainingCompleted" in [t for t, _ in types_of(db, tiny)]
    assert f"{hungry} failed: out of memory" in output

