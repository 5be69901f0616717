"""Devices: parsing `--device` / `--gpus`, choosing the device, describing it, its peak memory.

`parse_device` checks a device's spelling only (``auto``, ``cpu``, ``cuda``, ``cuda:N``);
`select_device` also checks that this machine has it. `parse_gpus` turns ``all`` or ``0,1`` into
GPU indices and refuses with one clear line on a machine without CUDA. `describe_device` is what a
job's events carry in their metadata (GPU name, memory and CUDA version; on the CPU its name and
threads), and `PeakMemory` measures the peak memory one job used (CUDA: the caching allocator's
peak; CPU: the process's peak resident set, reset per job where Linux allows it).
"""

from __future__ import annotations

import os
import platform
import re
import resource
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch

from nasdb.schema.errors import InvalidRequest

__all__ = [
    "PeakMemory",
    "cpu_name",
    "describe_device",
    "device_memory_bytes",
    "parse_device",
    "parse_gpus",
    "select_device",
]

_DEVICE = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


def parse_device(spec: str | torch.device | None) -> str:
    """The canonical spelling of a device spec: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Only the spelling is checked (this machine may lack the device; see `select_device`).
    Raises `InvalidRequest` naming the accepted forms.
    """
    text = str(spec).strip().lower() if spec is not None else "auto"
    match = _DEVICE.match(text or "auto")
    if match is None:
        raise InvalidRequest(f"unknown device {str(spec)!r}; expected auto, cpu, cuda or cuda:N "
                             "(N = a GPU index, 0 first)")
    return match.group(0) if text else "auto"


def select_device(spec: str | torch.device | None = None) -> torch.device:
    """The device to train on: `parse_device`'s spec, checked against this machine.

    ``auto`` (or None) picks ``cuda`` when torch sees a GPU, else ``cpu``. ``cuda`` and
    ``cuda:N`` raise `InvalidRequest` when CUDA is unavailable or N is out of range.
    """
    name = parse_device(spec)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InvalidRequest(f"device {name!r} was requested but torch {torch.__version__} sees no "
                             "CUDA GPU on this machine; use --device cpu")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise InvalidRequest(f"device {name!r} was requested but this machine has {count} CUDA "
                             f"GPU(s) (cuda:0 to cuda:{count - 1})")
    return device


def parse_gpus(spec: str) -> list[int]:
    """GPU indices from ``all`` or a comma list like ``0,1``; checked against this machine.

    Raises `InvalidRequest` (one line) when the spec is malformed, names a GPU this machine lacks,
    or the machine has no CUDA GPU at all.
    """
    text = spec.strip().lower()
    if text != "all" and not re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        raise InvalidRequest(f"--gpus {spec!r}: expected 'all' or GPU indices like 0,1")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise InvalidRequest(f"--gpus {spec}: torch {torch.__version__} sees no CUDA GPU on this "
                             "machine; use --device cpu (with --slots K for several jobs at once)")
    if text == "all":
        return list(range(count))
    indices = sorted({int(part) for part in text.split(",")})
    missing = [i for i in indices if i >= count]
    if missing:
        raise InvalidRequest(f"--gpus {spec}: this machine has {count} CUDA GPU(s) "
                             f"(0 to {count - 1}), not {', '.join(map(str, missing))}")
    return indices


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown cpu"


def _meminfo(field: str) -> int | None:
    with suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def device_memory_bytes(device: torch.device, *, available: bool = False) -> int:
    """The device's memory: a GPU's total (or free, with ``available``); on the CPU the machine's
    RAM (or MemAvailable)."""
    if device.type == "cuda":
        if available:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free)
        return int(torch.cuda.get_device_properties(device).total_memory)
    value = _meminfo("MemAvailable" if available else "MemTotal")
    if value is None:
        value = os.sysconf("SC_PAGE_SIZE") * os.sysconf(
            "SC_AVPHYS_PAGES" if available else "SC_PHYS_PAGES")
    return int(value)


def describe_device(device: torch.device) -> dict[str, Any]:
    """The device facts a job's events carry in their metadata (plain JSON types)."""
    facts: dict[str, Any] = {"device": str(device), "torch_version": torch.__version__,
                             "device_memory_bytes": device_memory_bytes(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(device_name=props.name, cuda_version=torch.version.cuda,
                     cudnn_version=torch.backends.cudnn.version(),
                     compute_capability=f"{props.major}.{props.minor}")
    else:
        facts.update(device_name=cpu_name(), cpu_threads=torch.get_num_threads(),
                     cpu_count=os.cpu_count())
    return facts


class PeakMemory:
    """The peak memory of the work done between `reset()` and `read()`, in bytes.

    CUDA: `torch.cuda.max_memory_allocated` (tensors only, the caching allocator's view). CPU: the
    process's peak resident set (VmHWM), which Linux resets through ``/proc/self/clear_refs``;
    where it cannot be reset the process's lifetime peak is reported (an upper bound).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        with suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def read(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        with suppress(OSError, ValueError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
