"""`nasdb worker --slots/--gpus`: a supervisor of real worker processes on a real database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import torch

from nasdb.ingest import EventStore, Projector
from nasdb.schema import Database
from nasdb.trainers.supervisor import ChildSpec, Supervisor, plan_children

from .test_worker import queue, start_worker


def started_pids(db: Database) -> list[int]:
    """Pids of every worker process that started, in start order."""
    with db.connect() as conn:
        rows = conn.execute("select data->>'pid' from events where type = 'WorkerStarted' "
                            "order by position").fetchall()
    return [int(r[0]) for r in rows]


def until(condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split(")")[-1].split()[0] != "Z"


def test_plan_is_slots_per_device() -> None:
    assert plan_children(["cuda:0", "cuda:1"], 2) == [
        ChildSpec("cuda:0", 0, 2), ChildSpec("cuda:0", 1, 2),
        ChildSpec("cuda:1", 0, 2), ChildSpec("cuda:1", 1, 2)]


def test_the_supervisor_restarts_a_crashed_child_and_stops_all_on_sigterm(db: Database) -> None:
    supervisor = start_worker(db, "--slots", "2", "--device", "cpu")
    assert until(lambda: len(started_pids(db)) == 2), supervisor.communicate(timeout=5)[0]
    first = started_pids(db)
    assert supervisor.pid not in first and all(alive(pid) for pid in first)
    os.kill(first[0], signal.SIGKILL)  # a crash
    assert until(lambda: len(started_pids(db)) == 3)
    replacement = started_pids(db)[2]
    assert replacement not in first and alive(replacement) and alive(first[1])
    supervisor.send_signal(signal.SIGTERM)
    output, _ = supervisor.communicate(timeout=120)
    assert supervisor.returncode == 0, output
    # either slot's child may be the first to record WorkerStarted
    assert re.search(rf"worker process {first[0]} on cpu#[01] ended with signal SIGKILL; "
                     "restarting", output), output
    assert "SIGTERM: passing it to 2 worker process(es)" in output
    assert not any(alive(pid) for pid in [*first, replacement])
    Projector(db).catch_up()
    with db.connect() as conn:
        stopped = conn.execute("select count(*) from events where type = 'WorkerStopped'"
                               ).fetchone()
    assert stopped == (2,)  # the two live children stopped cleanly; the killed one could not


def test_slots_share_the_queue_and_each_job_is_trained_once(db: Database) -> None:
    ids = queue(db, 6, epochs=2)
    supervisor = start_worker(db, "--slots", "2", "--device", "cpu", "--exit-when-idle")
    output, _ = supervisor.communicate(timeout=300)
    assert supervisor.returncode == 0, output
    store = EventStore(db=db)
    workers = set()
    for model_id in ids:
        events = store.read_stream(f"model-{model_id}")
        assert [e.type for e in events].count("TrainingCompleted") == 1
        claims = [e for e in events if e.type == "JobClaimed"]
        assert len(claims) == 1
        workers.add(claims[0].data["worker"])
        meta = events[-1].metadata
        assert meta["slots"] == 2 and meta["cpu_threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert len(workers) == 2  # both slots trained


def test_a_child_that_keeps_crashing_is_given_up() -> None:
    fail = [sys.executable, "-c", "import sys; sys.exit(7)"]
    logs: list[str] = []
    supervisor = Supervisor([ChildSpec("cpu", 0, 1)], lambda spec: fail, log=logs.append,
                            poll_seconds=0.01)
    import nasdb.trainers.supervisor as module
    delay, module.RESTART_DELAY = module.RESTART_DELAY, 0.0
    try:
        assert supervisor.run() == 1
    finally:
        module.RESTART_DELAY = delay
    assert supervisor.restarts == module.MAX_CRASHES - 1
    assert logs[-1].endswith(f"ended with exit code 7, {module.MAX_CRASHES} times in 60 s: "
                             "giving up on this slot")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path with no CUDA device")
def test_gpus_without_a_gpu_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "nasdb.ui.cli", "worker", "--gpus", "all"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NASDB_DATABASE_URL": "postgresql://127.0.0.1:9/x"})
    assert proc.returncode == 2
    assert proc.stderr == (f"error: --gpus all: torch {torch.__version__} sees no CUDA GPU on "
                           "this machine; use --device cpu (with --slots K for several jobs at "
                           "once)\n")


def test_a_child_that_cannot_reach_the_database_is_not_restarted() -> None:
    logs: list[str] = []
    supervisor = Supervisor([ChildSpec("cpu", 0, 1)],
                            lambda spec: [sys.executable, "-c", "import sys; sys.exit(3)"],
                            log=logs.append, poll_seconds=0.01)
    assert supervisor.run() == 1
    assert supervisor.restarts == 0
    assert logs[-1].endswith("ended with exit code 3 (database unreachable): not restarting it")
