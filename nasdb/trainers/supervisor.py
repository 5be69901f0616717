"""The supervisor behind `nasdb worker --gpus` and `--slots`: one worker process per device slot.

`plan_children` lays out the children: for each device (every GPU of ``--gpus``, or the one
``--device``) ``slots`` worker processes, each told which device it trains on and how many slots
share that device (its memory budget and, on the CPU, its threads are divided by that number).

`Supervisor.run` starts them as ``nasdb worker`` processes. Each child is an ordinary worker with
its own name, lease and heartbeat, so the database needs to know nothing about supervisors. The
supervisor:

- restarts a child that ends with a non-zero code or a signal (a crash, an out-of-memory kill),
  after `RESTART_DELAY` seconds, except exit codes 2 (bad input) and 3 (database unreachable),
  which a restart cannot cure; a child that crashes `MAX_CRASHES` times within
  `CRASH_WINDOW` seconds is given up (the others keep working) and the supervisor exits 1 at the
  end;
- leaves a child that exits 0 (``--exit-when-idle``, ``--max-jobs`` reached) alone, and returns
  when every child has ended;
- on SIGTERM or SIGINT (Ctrl-C) passes the signal on to every child, which stops after its
  current job (a second signal interrupts it at once), and returns when they all have ended.

Children run in their own process group (Ctrl-C in a terminal reaches them only through the
supervisor, once) and, on Linux, receive SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChildSpec", "Supervisor", "plan_children"]

RESTART_DELAY = 1.0
NOT_RESTARTED = {2: "bad input", 3: "database unreachable"}
"""Exit codes a restart cannot cure: the slot is given up (a launcher may restart the supervisor)."""
MAX_CRASHES = 5
CRASH_WINDOW = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """One worker process: its device, its slot on that device and how many share the device."""

    device: str
    slot: int
    slots: int

    @property
    def label(self) -> str:
        return f"{self.device}#{self.slot}"


def plan_children(devices: Sequence[str], slots: int) -> list[ChildSpec]:
    """``slots`` children per device, device-major."""
    return [ChildSpec(device, slot, slots) for device in devices for slot in range(slots)]


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    given_up: bool = False
    done: bool = False
    restart_at: float | None = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Runs ``command(spec)`` for every spec and keeps them running (module docstring)."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        command: Callable[[ChildSpec], list[str]],
        *,
        env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        poll_seconds: float = 0.2,
    ) -> None:
        self.children = [_Child(spec) for spec in specs]
        self.command = command
        self.env = env
        self.log = log or (lambda message: None)
        self.poll_seconds = poll_seconds
        self.stopping = False
        self.restarts = 0

    def _start(self, child: _Child) -> None:
        child.process = subprocess.Popen(self.command(child.spec), env=self.env,
                                         process_group=0, preexec_fn=_die_with_parent)
        child.restart_at = None
        self.log(f"supervisor: started worker process {child.process.pid} on {child.spec.label}")

    def _signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    def run(self) -> int:
        """Start the children and supervise them until all have ended; 0 when none was given up.

        Installs SIGTERM/SIGINT handlers when called from the main thread (restored on return).
        """
        handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            for child in self.children:
                self._start(child)
            while not all(c.done for c in self.children):
                self._step()
                time.sleep(self.poll_seconds)
        finally:
            self._signal_all(signal.SIGTERM)  # only children still running (an error above)
            for restored, previous in handlers.items():
                signal.signal(restored, previous)
        return 1 if any(c.given_up for c in self.children) else 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        again = self.stopping
        self.stopping = True
        name = signal.Signals(signum).name
        self.log(f"supervisor: {name}{' again' if again else ''}: passing it to "
                 f"{sum(1 for c in self.children if not c.done)} worker process(es)")
        self._signal_all(signum)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask every child to stop (as a signal to the supervisor would); thread-safe enough for
        tests and embedding: the children are signalled, `run` returns when they have ended."""
        self._on_signal(signum, None)

    def _step(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.done:
                continue
            if child.process is None:
                if self.stopping:
                    child.done = True
                elif child.restart_at is not None and now >= child.restart_at:
                    self.restarts += 1
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            pid, child.process = child.process.pid, None
            if code == 0 or self.stopping:
                child.done = True
                continue
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            if code in NOT_RESTARTED:
                child.done = child.given_up = True
                self.log(f"supervisor: worker process {pid} on {child.spec.label} ended with "
                         f"{how} ({NOT_RESTARTED[code]}): not restarting it")
                continue
            child.crashes.append(now)
            while child.crashes and now - child.crashes[0] > CRASH_WINDOW:
                child.crashes.popleft()
            if len(child.crashes) >= MAX_CRASHES:
                child.done = child.given_up = True
                self.log(f"supervisor: worker process {pid} on {child.spec.label} ended with "
                         f"{how}, {len(child.crashes)} times in {CRASH_WINDOW:.0f} s: giving up "
                         "on this slot")
                continue
            child.restart_at = now + RESTART_DELAY
            self.log(f"supervisor: worker process {pid} on {child.spec.label} ended with {how}; "
                     f"restarting it in {RESTART_DELAY:.0f} s")
