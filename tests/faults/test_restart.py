"""A database restart under a running worker loses nothing and fails nothing."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, cancel, propose
from nasdb.trainers.registry import register_dataset
from tests.faults.conftest import Server, nasdb_process

MODEL = {"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3},
                    {"type": "Activation", "fn": "relu"}, {"type": "Dense", "units": 32}]}


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_a_worker_rides_out_a_database_restart(throwaway_server: Server) -> None:
    """The job is long (100,000 epochs, no early stop), so the restart lands mid-training on any
    machine: with 12 epochs a fast machine finished the job before the server stopped. Once
    training has gone on after the restart, the job is cancelled and the worker exits idle."""
    db = Database(throwaway_server.app_url, owner_url=throwaway_server.owner_url)
    store = EventStore(db=db)
    register_dataset(store, "digits")
    Projector(db).catch_up()
    propose(store, get_dataset(db, "digits"), [
        Proposal(Architecture.from_json(MODEL),
                 Hyperparameters(epochs=100_000, early_stop_patience=0), "handcrafted")])
    store.close()
    db.engine.dispose()

    env = {**throwaway_server.env(), "NASDB_RECONNECT_SECONDS": "60",
           "NASDB_LEASE_SECONDS": "30"}
    worker = nasdb_process(env, "worker", "--exit-when-idle", "--device", "cpu")
    url = throwaway_server.owner_url
    epochs_sql = "select count(*) from events where type = 'EpochCompleted'"
    deadline = time.monotonic() + 120
    while _count(url, epochs_sql) < 2:
        assert worker.poll() is None and time.monotonic() < deadline, worker.stdout
        time.sleep(0.2)
    throwaway_server.stop()  # under the training worker
    time.sleep(3)
    throwaway_server.start()
    before = _count(url, epochs_sql)
    deadline = time.monotonic() + 120
    while _count(url, epochs_sql) <= before:  # training goes on after the restart
        assert worker.poll() is None and time.monotonic() < deadline, worker.stdout
        time.sleep(0.2)
    db = Database(throwaway_server.app_url, owner_url=throwaway_server.owner_url)
    store = EventStore(db=db)
    Projector(db).catch_up()
    cancel(store, "m1", "the restart was ridden out")
    store.close()
    db.engine.dispose()
    out, _ = worker.communicate(timeout=240)

    assert worker.returncode == 0, out
    assert "lost the database" in out and "the database is back after" in out, out
    assert "m1 failed" not in out and "Traceback" not in out, out  # (libpq's own words may say
    # "consuming input failed" in the projector's reconnect lines: those are not about the job)
    with psycopg.connect(url) as conn:
        types = [r[0] for r in conn.execute(
            "select type from events where stream_id = 'model-m1' order by version")]
        epochs = [r[0] for r in conn.execute(
            "select (data->>'epoch')::int from events where stream_id = 'model-m1' "
            "and type = 'EpochCompleted' order by version")]
    assert types.count("JobClaimed") == 1  # the lease was kept: no second claim
    assert types[-1] == "TrainingCancelled" and "TrainingFailed" not in types
    assert len(epochs) > before >= 2
    assert epochs == sorted(set(epochs)) == list(range(1, len(epochs) + 1))


def test_a_study_driver_and_a_web_session_ride_out_a_restart(
        throwaway_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker: the driver proposes its first step, then waits; the server restarts under it
    and under a web session's polling; both carry on and say what happened."""
    from nasdb.steer import create_study, run_study
    from nasdb.ui.app import App, AppState

    monkeypatch.setenv("NASDB_RECONNECT_SECONDS", "60")
    db = Database(throwaway_server.app_url, owner_url=throwaway_server.owner_url)
    store = EventStore(db=db)
    register_dataset(store, "digits")
    Projector(db).catch_up()
    study = create_study(store, "digits", "random", budget={"models": 2})
    said: list[str] = []
    stop = threading.Event()
    outcome: list[object] = []

    def drive() -> None:
        try:
            outcome.append(run_study(db, study, poll_seconds=0.2, on_progress=said.append,
                                     stop=stop))
        except Exception as e:  # the assertion below names it
            outcome.append(e)

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 60
    while not any("proposed" in m for m in said):
        assert time.monotonic() < deadline and driver.is_alive(), (said, outcome)
        time.sleep(0.1)
    app = App(AppState(db, actor="tester"))
    throwaway_server.stop()
    app.poll()
    assert app.state.notice.startswith("⚠ lost the database")
    time.sleep(2)
    throwaway_server.start()
    app.poll()
    assert app.state.notice == "the database is back"
    deadline = time.monotonic() + 60
    while not any("the database is back" in m for m in said):
        assert time.monotonic() < deadline and driver.is_alive(), (said, outcome)
        time.sleep(0.2)
    stop.set()
    driver.join(30)
    assert outcome == ["running"], (said, outcome)
    assert any(m.startswith("lost the database while driving study") for m in said), said


def test_a_worker_gives_up_when_the_database_stays_away(throwaway_server: Server) -> None:
    env = {**throwaway_server.env(), "NASDB_RECONNECT_SECONDS": "3", "NASDB_POLL_SECONDS": "0.2"}
    worker = nasdb_process(env, "worker", "--device", "cpu")
    url = throwaway_server.owner_url
    deadline = time.monotonic() + 120
    while _count(url, "select count(*) from events where type = 'WorkerStarted'") < 1:
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    throwaway_server.stop()
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 3, out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("error: the database was unreachable for "), out
    assert "gave up after NASDB_RECONNECT_SECONDS=3" in lines[-1]
    assert "Traceback" not in out
