"""The memory guard: will a job fit this worker's device, and a hard bound where one is configured.

`estimate_job_bytes` estimates the peak memory of training one job from its architecture (built on
PyTorch's ``meta`` device, so nothing is allocated however large the model), the batch size and the
dataset, all on the device:

    16 x params                       weights, gradients and two optimizer moments (Adam's; an upper
                                      bound for SGD with momentum and RMSprop), float32
  + max(training, evaluation)         training: 4 bytes x batch x (every layer's output, kept for
                                      the backward pass, + 2 x the largest, the gradients in flight);
                                      evaluation: 4 x eval batch x 2 x the largest layer output
  + the dataset's splits              float32 images and int64 labels, placed once on the device

It is an estimate (cuDNN workspaces and allocator rounding come on top; bf16 halves most
activations), which is why the default budget leaves a tenth of the device free.

`MemoryGuard` holds a worker's budget: ``NASDB_DEVICE_MEMORY`` when set (per worker process, so per
slot), else the device's memory (a GPU's total, the machine's available RAM) less a tenth, divided
among the slots sharing the device. A job whose estimate exceeds the budget is skipped at claim time,
never failed: a worker with a larger device may take it. `MemoryGuard.enforce` makes a configured
budget a hard limit for real allocations: on CUDA the caching allocator's per-process fraction, on
Linux CPUs the process's data-segment limit (RLIMIT_DATA) above what it uses now; an allocation past
it fails as out of memory, which the loop turns into TrainingFailed with the reason.
"""

from __future__ import annotations

import math
import re
import resource
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest
from nasdb.trainers.devices import device_memory_bytes
from nasdb.trainers.loop import EVAL_BATCH_SIZE

__all__ = ["MemoryEstimate", "MemoryGuard", "estimate_job_bytes", "format_bytes", "parse_bytes"]

HEADROOM = 0.9
"""Share of a device's memory the default budget uses (the rest: CUDA context, workspaces)."""

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: str) -> int:
    """``512M``, ``2G``, ``1.5g``, ``1048576`` -> bytes (K/M/G/T are binary: KiB, MiB, ...).

    Raises `InvalidRequest` on anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise InvalidRequest(f"memory size {text!r}: expected a positive size like 512M, 2G or "
                             "1073741824")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of a job's estimated peak memory, in bytes (module docstring)."""

    params: int
    weights: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.data


def estimate_job_bytes(
    build: Callable[[], nn.Module],
    input_shape: tuple[int, ...],
    batch_size: int,
    split_sizes: tuple[int, int, int],
) -> MemoryEstimate:
    """The estimate for training the module ``build()`` makes (called under the meta device, so
    its parameters take no memory) on ``split_sizes`` (train, val, test) images of
    ``input_shape``. Raises what ``build`` raises."""
    with torch.device("meta"):
        module = build()
    params = sum(p.numel() for p in module.parameters())
    outputs: list[int] = []

    def record(_: nn.Module, __: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output[0].numel())

    leaves = [m for m in module.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            module(torch.empty((1, *input_shape), device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    image = math.prod(input_shape)
    largest = max([image, *outputs])
    n_train, n_val, n_test = split_sizes
    batch = min(batch_size, max(n_train, 1))
    train_act = 4 * batch * (image + sum(outputs) + 2 * largest)
    eval_act = 4 * min(EVAL_BATCH_SIZE, max(n_val, n_test, 1)) * 2 * largest
    data = (n_train + n_val + n_test) * (4 * image + 8)
    return MemoryEstimate(params=params, weights=16 * params,
                          activations=max(train_act, eval_act), data=data)


class MemoryGuard:
    """A worker's memory budget on its device (module docstring). ``slots`` workers share it."""

    def __init__(self, device: torch.device, *, limit: int | str | None = None,
                 slots: int = 1) -> None:
        self.device = device
        self.slots = max(int(slots), 1)
        configured = limit if limit is not None else settings.get("device_memory")
        self.configured: int | None = (
            parse_bytes(configured) if isinstance(configured, str) else configured)

    def budget(self) -> int:
        """Bytes one job may use now: the configured limit, else the device's share."""
        if self.configured is not None:
            return self.configured
        available = device_memory_bytes(self.device, available=self.device.type == "cpu")
        return int(available * HEADROOM / self.slots)

    def refusal(self, estimate: MemoryEstimate) -> str | None:
        """Why a job with this estimate does not fit (None when it fits)."""
        budget = self.budget()
        if estimate.total <= budget:
            return None
        return (f"needs about {format_bytes(estimate.total)} ({estimate.params:,} parameters: "
                f"{format_bytes(estimate.weights)} weights and optimizer state, "
                f"{format_bytes(estimate.activations)} activations, {format_bytes(estimate.data)} "
                f"data) but this worker's budget on {self.device} is {format_bytes(budget)}")

    def enforce(self) -> str | None:
        """Make the configured limit a hard bound for this process; return what was done (None
        without a configured limit, or where the platform offers no bound)."""
        if self.configured is None:
            return None
        if self.device.type == "cuda":
            total = device_memory_bytes(self.device)
            fraction = min(self.configured / total, 1.0)
            torch.cuda.set_per_process_memory_fraction(fraction, self.device)
            return f"CUDA allocations capped at {fraction:.1%} of {format_bytes(total)}"
        in_use = _data_segment_bytes()
        if in_use is None:
            return None
        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        bound = in_use + self.configured
        if hard != resource.RLIM_INFINITY:
            bound = min(bound, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (bound, hard))
        return (f"allocations capped at {format_bytes(self.configured)} above the "
                f"{format_bytes(in_use)} in use (RLIMIT_DATA)")


def _data_segment_bytes() -> int | None:
    """The process's data segment (Linux VmData: heap and private writable mappings)."""
    with suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return None
