"""The worker against a real database with real training on digits: claims, leases, fencing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, propose
from nasdb.steer import cancel as cancel_model
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.reproduce import reproduce
from nasdb.trainers.worker import Worker, wait_for

TINY = {"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3},
                   {"type": "Activation", "fn": "relu"}]}


def queue(db: Database, n: int, epochs: int, **hp: Any) -> list[str]:
    store = EventStore(db=db)
    if store.stream_version("dataset-digits") == 0:
        register_dataset(store, "digits")
        Projector(db).catch_up()
    ds = get_dataset(db, "digits")
    hyper = Hyperparameters.from_json({"epochs": epochs, "early_stop_patience": 0, **hp})
    ids = propose(store, ds, [Proposal(Architecture.from_json(TINY), hyper, "handcrafted")] * n)
    Projector(db).catch_up()
    return ids


def start_worker(db: Database, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": db.url, "NASDB_POLL_SECONDS": "0.5"}
    return subprocess.Popen([sys.executable, "-m", "nasdb.ui.cli", "worker", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def types_of(db: Database, model_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in EventStore(db=db).read_stream(f"model-{model_id}")]


def test_a_worker_trains_and_records_every_epoch(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=3)
    assert Worker(db).run() == 1
    Projector(db).catch_up()
    kinds = [t for t, _ in types_of(db, model_id)]
    assert kinds == ["ArchitectureProposed", "TrainingRequested", "JobClaimed", "EpochCompleted",
                     "EpochCompleted", "EpochCompleted", "TrainingCompleted"]
    events = EventStore(db=db).read_stream(f"model-{model_id}")
    meta = events[3].metadata
    assert {"torch_version", "device", "seed", "dataset_fingerprint", "code_version"} <= set(meta)
    assert meta["device"] == "cpu"
    done = events[-1].data
    assert done["test_acc"] > 0.3
    assert len(done["confusion_matrix"]) == 10
    assert sum(map(sum, done["confusion_matrix"])) == sum(done["class_support"]) == 359
    assert done["checkpoint"].startswith("sha256:")
    with db.connect(dict_rows=True) as conn:
        row = conn.execute("select * from models where id = %s", (model_id,)).fetchone()
        n_epochs = conn.execute("select count(*) as n from epochs where model_id = %s",
                                (model_id,)).fetchone()
    assert row is not None and n_epochs is not None
    assert (row["status"], row["epochs_trained"], n_epochs["n"]) == ("done", 3, 3)


def test_several_worker_processes_never_train_the_same_job(db: Database) -> None:
    ids = queue(db, 10, epochs=1)
    workers = [start_worker(db, "--exit-when-idle") for _ in range(3)]
    for w in workers:
        w.wait(timeout=300)
    claims: Counter[str] = Counter()
    for model_id in ids:
        events = types_of(db, model_id)
        claims[model_id] = sum(1 for t, _ in events if t == "JobClaimed")
        assert sum(1 for t, _ in events if t == "TrainingCompleted") == 1
    assert set(claims.values()) == {1}
    Projector(db).catch_up()
    with db.connect() as conn:
        workers_seen = conn.execute("select count(distinct worker) from jobs").fetchone()
    assert workers_seen is not None and workers_seen[0] >= 2  # they really shared the queue


def test_a_killed_worker_s_job_is_trained_exactly_once_after_its_lease(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=20, batch_size=8)  # small batches: seconds, not a blink
    victim = start_worker(db, "--lease-seconds", "2", "--exit-when-idle")
    assert wait_for(db, f"exists (select 1 from epochs where model_id = '{model_id}')", 60)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert "TrainingCompleted" not in [t for t, _ in types_of(db, model_id)], \
        "the victim finished before it was killed"
    started = time.monotonic()
    assert Worker(db, lease_seconds=2, poll_seconds=0.3).run(max_jobs=1, idle_exit=False) == 1
    assert time.monotonic() - started < 30
    events = types_of(db, model_id)
    assert [d["attempt"] for t, d in events if t == "JobClaimed"] == [1, 2]
    assert sum(1 for t, _ in events if t == "TrainingCompleted") == 1
    Projector(db).catch_up()
    with db.connect() as conn:
        epochs = conn.execute("select epoch from epochs where model_id = %s order by epoch",
                              (model_id,)).fetchall()
        status = conn.execute("select status, epochs_trained from models where id = %s",
                              (model_id,)).fetchone()
    assert [e[0] for e in epochs] == list(range(1, 21))
    assert status == ("done", 20)


def test_a_worker_that_lost_its_lease_cannot_append_results(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=30, batch_size=8)
    sleeper = start_worker(db, "--lease-seconds", "2", "--exit-when-idle")
    assert wait_for(db, f"exists (select 1 from epochs where model_id = '{model_id}')", 60)
    os.kill(sleeper.pid, signal.SIGSTOP)  # paused too long: its lease runs out
    assert "TrainingCompleted" not in [t for t, _ in types_of(db, model_id)], \
        "the worker finished before it was paused"
    time.sleep(2.5)
    Worker(db, lease_seconds=30, name="rescuer").run(max_jobs=1, idle_exit=False)
    os.kill(sleeper.pid, signal.SIGCONT)  # it wakes up and tries to carry on
    output, _ = sleeper.communicate(timeout=120)
    assert "lease lost: model-" in output and "claimed by rescuer" in output
    events = EventStore(db=db).read_stream(f"model-{model_id}")
    takeover = next(e.version for e in events if e.type == "JobClaimed"
                    and e.data["worker"] == "rescuer")
    after = [e for e in events if e.version > takeover]
    assert after and all(e.metadata.get("worker") == "rescuer" for e in after)
    assert sum(1 for e in events if e.type == "TrainingCompleted") == 1


def test_a_diverging_model_fails_with_the_reason(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=2, optimizer="sgd", lr=1e9)
    assert Worker(db).run() == 0
    failed = [d for t, d in types_of(db, model_id) if t == "TrainingFailed"]
    assert len(failed) == 1
    assert failed[0]["error"].startswith("training diverged at epoch 1")
    Projector(db).catch_up()
    with db.connect() as conn:
        row = conn.execute("select status, error from models where id = %s",
                           (model_id,)).fetchone()
    assert row is not None and row[0] == "failed" and "diverged" in row[1]


def test_cancel_stops_a_running_job_at_the_next_epoch_boundary(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=200)
    store = EventStore(db=db)

    def cancel_after_first_epoch() -> None:
        assert wait_for(db, f"exists (select 1 from epochs where model_id = '{model_id}')", 60)
        cancel_model(store, model_id, "enough")

    thread = threading.Thread(target=cancel_after_first_epoch)
    thread.start()
    assert Worker(db).run() == 0
    thread.join()
    kinds = [t for t, _ in types_of(db, model_id)]
    assert "TrainingCancelled" in kinds
    assert "TrainingCompleted" not in kinds
    assert kinds.count("EpochCompleted") < 200
    Projector(db).catch_up()
    with db.connect() as conn:
        row = conn.execute("select m.status, j.state from models m join jobs j "
                           "on j.model_id = m.id where m.id = %s", (model_id,)).fetchone()
    assert row == ("cancelled", "cancelled")


def test_an_idle_worker_wakes_on_notify(db: Database) -> None:
    queue(db, 0, epochs=1)
    worker = Worker(db, poll_seconds=30)
    finished: list[float] = []

    def run() -> None:
        worker.run(max_jobs=1, idle_exit=False)
        finished.append(time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(2)
    queued_at = time.monotonic()
    queue(db, 1, epochs=1)
    thread.join(60)
    assert finished and finished[0] - queued_at < 15  # far less than the 30 s poll


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_worker_stops_cleanly_and_says_so(db: Database, signum: int) -> None:
    proc = start_worker(db)  # runs until stopped
    assert wait_for(db, "exists (select 1 from workers where state = 'running')", timeout=120)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopping after the current job" in out
    Projector(db).catch_up()
    with db.connect() as conn:
        states = [r[0] for r in conn.execute("select state from workers").fetchall()]
    assert states == ["stopped"]


def test_reproduce_retrains_from_events_alone(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=2, seed=7)
    Worker(db).run()
    report = reproduce(EventStore(db=db), model_id)
    assert report.difference == pytest.approx(0.0, abs=1e-9)
    assert report.same_predictions
