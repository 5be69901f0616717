"""How the training loop uses the device: data placement, bf16 autocast, channels_last, compile.

`Acceleration` says what a job uses; `Acceleration.resolve` turns the settings (``auto`` by
default) into concrete choices for a device:

- **precision**: ``bf16`` autocast on a CUDA GPU that supports bfloat16, else ``fp32``. The loss
  is computed in float32; bf16 needs no gradient scaler. On the CPU the default stays ``fp32`` so
  that CPU training stays bit-for-bit deterministic and `nasdb reproduce` can compare exactly.
- **channels_last**: on CUDA for image inputs (NHWC is what cuDNN's tensor-core kernels want).
- **compile**: ``off`` by default; ``on`` compiles every job; ``auto`` compiles on CUDA when the
  job runs at least `COMPILE_MIN_STEPS` optimizer steps (compiling costs seconds; it pays only
  on long jobs). Compiled modules are cached per architecture key in this process
  (`COMPILE_CACHE_SIZE`, least recently used dropped): the next job with the same architecture
  loads its initial weights into the cached module instead of compiling again.

`place_splits` moves a dataset's splits to the device once (channels_last when chosen); batches
are then index slices of those tensors, so the hot loop never copies from the host. The loop
reads metrics from the device once per epoch (running sums stay on the device), so no batch
waits for the host.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest

__all__ = [
    "COMPILE_CACHE_SIZE",
    "COMPILE_MIN_STEPS",
    "Acceleration",
    "autocast",
    "compiled_module",
    "place_splits",
]

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("off", "on", "auto")
COMPILE_MIN_STEPS = 5000
"""`compile=auto` compiles a job with at least this many optimizer steps (not yet measured on a GPU:
`benchmarks/gpu_throughput.py` prints compile time and the compiled rate to set it)."""
COMPILE_CACHE_SIZE = 16
"""Compiled architectures kept per process."""
COMPILE_BACKEND = "inductor"
"""`torch.compile`'s backend (tests use "eager": the same tracing and caching, no code generation,
which takes minutes on a small CPU)."""


@dataclass(frozen=True)
class Acceleration:
    """What one job uses on its device (recorded in the job's metadata)."""

    precision: str = "fp32"  # fp32 | bf16
    channels_last: bool = False
    compile: bool = False

    @classmethod
    def resolve(
        cls,
        device: torch.device,
        *,
        precision: str | None = None,
        channels_last: bool | None = None,
        compile: str | None = None,
        steps: int = 0,
        image_input: bool = True,
    ) -> Acceleration:
        """Concrete choices for ``device`` from the given values, else the settings ``precision``
        and ``compile`` (``auto`` when unset); ``steps`` is the job's planned optimizer steps.
        Raises `InvalidRequest` for an unknown value or bf16 on a GPU without bfloat16."""
        cuda = device.type == "cuda"
        precision = (precision or settings.get("precision") or "auto").lower()
        if precision not in PRECISIONS:
            raise InvalidRequest(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if precision == "auto":
            precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        elif precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            raise InvalidRequest(f"precision bf16: {device} does not support bfloat16; use fp32")
        mode = (compile or settings.get("compile") or "off").lower()
        if mode not in COMPILE_MODES:
            raise InvalidRequest(f"compile {mode!r} is not one of {', '.join(COMPILE_MODES)}")
        compiled = mode == "on" or (mode == "auto" and cuda and steps >= COMPILE_MIN_STEPS)
        if channels_last is None:
            channels_last = cuda and image_input
        return cls(precision=precision, channels_last=bool(channels_last), compile=compiled)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def place_splits(
    device: torch.device, acc: Acceleration, *tensors: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The tensors on ``device`` (4-D image batches in channels_last when chosen), moved once."""
    placed = []
    for t in tensors:
        t = t.to(device, non_blocking=True)
        if acc.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        placed.append(t)
    return tuple(placed)


def autocast(device: torch.device, acc: Acceleration) -> AbstractContextManager[Any]:
    """The autocast region of a forward pass (a no-op for fp32)."""
    if acc.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


_compiled: OrderedDict[str, tuple[nn.Module, nn.Module]] = OrderedDict()


def compiled_module(
    module: nn.Module, device: torch.device, acc: Acceleration, key: str | None
) -> tuple[nn.Module, nn.Module]:
    """``(trained, forward)``: the module whose parameters are trained and the callable that runs
    it. Without compile both are ``module`` (moved to ``device``, channels_last when chosen).

    With compile and a ``key``, training happens in the cache's own copy of the module (compiled
    once per key: a later job of the same architecture, input and class count gets it back with
    its own initial weights loaded, so nothing is compiled again); the caller copies the trained
    weights back into ``module``. Not thread-safe.
    """
    module.to(device)
    if acc.channels_last:
        module.to(memory_format=torch.channels_last)
    if not acc.compile:
        return module, module
    if key is not None and key in _compiled:
        cached, forward = _compiled[key]
        _compiled.move_to_end(key)
        cached.load_state_dict(module.state_dict())
        return cached, forward
    dynamo_config: Any = torch._dynamo.config
    # every nn.Sequential shares one forward code object: allow one graph per cached architecture
    dynamo_config.recompile_limit = max(int(dynamo_config.recompile_limit),
                                        4 * COMPILE_CACHE_SIZE)
    if key is None:
        return module, cast(nn.Module, torch.compile(module, backend=COMPILE_BACKEND))
    owned = copy.deepcopy(module)  # the cache's own instance: the caller's module stays its own
    forward = cast(nn.Module, torch.compile(owned, backend=COMPILE_BACKEND))
    _compiled[key] = (owned, forward)
    while len(_compiled) > COMPILE_CACHE_SIZE:
        _compiled.popitem(last=False)
    return owned, forward
