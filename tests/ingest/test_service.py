"""The projector service against a real server: latency, kill -9 mid-batch, two at once."""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest

from nasdb.ingest import EventStore, NewEvent, Projector, projection_status, wait_projected
from nasdb.ingest.synthetic import dataset_event, model_lifecycle, search_log
from nasdb.schema import Database

from ._helpers import checkpoint, snapshot, start_service, stop_service


def test_committed_events_are_visible_within_a_second_without_any_reader_projecting(
    db: Database,
) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    service = start_service(db)
    rng = random.Random(1)
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def read() -> None:  # a psql user: plain SELECTs on the view, nothing else
        with db.connect(autocommit=True) as conn:
            while not done.is_set():
                now = time.monotonic()
                for (mid,) in conn.execute("select id from models").fetchall():
                    seen.setdefault(mid, now)
                time.sleep(0.01)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 41):  # a steady writer: 10 models a second for 4 seconds
            mid = f"m{i}"
            store.append(f"model-{mid}", model_lifecycle(rng, mid, finish=False))
            committed[mid] = time.monotonic()
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while len(seen) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        reader.join()
        stop_service(service)
    latencies = [seen[m] - committed[m] for m in committed if m in seen]
    assert len(latencies) == len(committed), "some committed models never became visible"
    assert statistics.median(latencies) < 1.0, sorted(latencies)


def _blocked_projector_pid(db: Database, timeout: float = 120) -> int:
    """The backend of a projector that is waiting on a row lock inside its batch."""
    deadline = time.monotonic() + timeout
    with db.connect(autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select pid from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock' and query like 'update rm_models %'"
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError("the projector never reached the locked row")


def _backend_gone(db: Database, pid: int) -> None:
    with db.connect(autocommit=True) as conn:
        for _ in range(3000):
            if not conn.execute("select 1 from pg_stat_activity where pid = %s",
                                (pid,)).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")


def test_kill_minus_nine_mid_batch_loses_and_doubles_nothing(db: Database) -> None:
    """Each kill lands inside an open batch by construction, never by timing: the test holds a
    row lock on a model the batch must update, waits until the service's batch transaction is
    blocked on it (having already inserted the batch's new models), and kills the service then."""
    store = EventStore(db=db)
    for stream, events in search_log(30, seed=5):
        store.append(stream, events)
    Projector(db).catch_up()
    rng = random.Random(2)
    next_id = 1000
    for _ in range(3):
        before = checkpoint(db)
        new_ids = [f"m{next_id + k}" for k in range(20)]
        next_id += 20
        store.append_batch([(f"model-{mid}", model_lifecycle(rng, mid), None)
                            for mid in new_ids]
                           + [("model-m1", [NewEvent("Noted", {"text": "kept once"})], None)])
        with db.connect() as holder:
            holder.execute("select 1 from rm_models where id = 'm1' for update")
            service = start_service(db)
            backend = _blocked_projector_pid(db)
            with db.connect(autocommit=True) as conn:  # mid-batch: its lock is held, nothing committed
                assert conn.execute(
                    "select count(*) from pg_locks where locktype = 'advisory' and objid = "
                    "5310202 and pid = %s and granted", (backend,)).fetchone() == (1,)
            os.kill(service.pid, signal.SIGKILL)
            service.wait()
            holder.rollback()
        _backend_gone(db, backend)
        assert checkpoint(db) == before
        with db.connect() as conn:
            assert conn.execute("select count(*) from models where id = any(%s)",
                                (new_ids,)).fetchone() == (0,)
    service = start_service(db)
    try:
        wait_projected(db, timeout=120)
    finally:
        stop_service(service)
    with db.connect() as conn:
        assert conn.execute("select notes_count from models where id = 'm1'").fetchone() == (3,)
        assert conn.execute("select count(*) from notes").fetchone() == (3,)
        assert conn.execute("select count(*) from models").fetchone() == (90,)
    killed = snapshot(db)
    Projector(db).replay()
    assert snapshot(db) == killed


def test_two_projectors_at_once_apply_each_event_exactly_once(db: Database) -> None:
    store = EventStore(db=db)
    first, second = start_service(db), start_service(db, wait_alive=2)
    rng = random.Random(4)
    notes = 0
    try:
        streams = list(search_log(120, seed=8))
        for i, (stream, events) in enumerate(streams):
            store.append(stream, events)
            if i % 3 == 0 and i > 3:
                mid = f"m{rng.randint(1, i - 1)}"
                store.append(f"model-{mid}", [NewEvent("Noted", {"text": f"n{i}"})])
                notes += 1
        wait_projected(db, timeout=120)
        status = projection_status(db)
        assert status["projectors"] == 2
        assert status["lag"] == 0 and status["failures"] == 0
    finally:
        stop_service(first)
        stop_service(second)
    with db.connect() as conn:
        assert conn.execute("select sum(notes_count) from models").fetchone() == (notes,)
        assert conn.execute("select count(*) from notes").fetchone() == (notes,)
        assert conn.execute("select count(*) from models").fetchone() == (120,)
    incremental = snapshot(db)
    Projector(db).replay()
    assert snapshot(db) == incremental


def test_wait_projected_starts_a_projector_when_none_is_alive(db: Database) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    store.append("model-m1", model_lifecycle(random.Random(0), "m1"))
    assert projection_status(db)["projectors"] == 0
    assert wait_projected(db, timeout=120) == store.last_position()
    with db.connect() as conn:
        assert conn.execute("select status from models").fetchone() == ("done",)
    assert projection_status(db)["projectors"] >= 1  # the background service stays


@pytest.mark.parametrize("lease", [1.0])
def test_a_worker_that_stopped_heartbeating_shows_as_lost(db: Database, lease: float) -> None:
    store = EventStore(db=db)
    store.append("worker-w1", [NewEvent("WorkerStarted", {
        "worker": "w1", "host": "h", "pid": 1, "device": "cpu", "lease_seconds": lease})])
    store.append("worker-w2", [NewEvent("WorkerStarted", {
        "worker": "w2", "host": "h", "pid": 2, "device": "cpu", "lease_seconds": 600.0})])
    Projector(db).catch_up()
    with db.connect() as conn:
        states = dict(conn.execute("select worker, state from workers").fetchall())
    assert states == {"w1": "running", "w2": "running"}
    time.sleep(lease + 0.5)
    store.append("worker-w2", [NewEvent("WorkerHeartbeat", {"worker": "w2",
                                                            "lease_seconds": 600.0})])
    Projector(db).catch_up()
    with db.connect() as conn:
        states = dict(conn.execute("select worker, state from workers").fetchall())
    assert states == {"w1": "lost", "w2": "running"}
    store.append("worker-w1", [NewEvent("WorkerHeartbeat", {"worker": "w1",
                                                            "lease_seconds": lease})])
    Projector(db).catch_up()
    with db.connect() as conn:
        assert conn.execute("select state from workers where worker = 'w1'").fetchone() == (
            "running",)


def test_the_projector_process_starts_without_a_warning_in_its_log() -> None:
    """Every spawned projector writes its stderr to NASDB_HOME/projector.log; starting it as
    ``-m nasdb.ingest._service`` put a RuntimeWarning there (the package imports that module)."""
    done = subprocess.run([sys.executable, "-m", "nasdb.ingest", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m nasdb.ingest" in done.stdout
    assert done.stderr == ""
