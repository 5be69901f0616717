"""The worker against a real database with real training on digits: claims, leases, fencing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, propose
from nasdb.steer import cancel as cancel_model
from nasdb.trainers.devices import cpu_name
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.reproduce import reproduce
from nasdb.trainers.worker import LISTEN_SQL, Worker, wait_for

from .._kill import signal_when

TINY = {"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3},
                   {"type": "Activation", "fn": "relu"}]}


def queue(db: Database, n: int, epochs: int, layers: dict[str, Any] | None = None,
          **hp: Any) -> list[str]:
    store = EventStore(db=db)
    if store.stream_version("dataset-digits") == 0:
        register_dataset(store, "digits")
        Projector(db).catch_up()
    ds = get_dataset(db, "digits")
    hyper = Hyperparameters.from_json({"epochs": epochs, "early_stop_patience": 0, **hp})
    arch = Architecture.from_json(layers or TINY)
    ids = propose(store, ds, [Proposal(arch, hyper, "handcrafted")] * n)
    Projector(db).catch_up()
    return ids


def start_worker(db: Database, *args: str, cwd: Path | None = None,
                 env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": db.url, "NASDB_POLL_SECONDS": "0.5", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "nasdb.ui.cli", "worker", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                            preexec_fn=preexec_fn)


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
    # the device and how it was used, on every event of the job; the peak memory on the last
    assert meta["device_name"] == cpu_name() and meta["cpu_threads"] == torch.get_num_threads()
    assert meta["device_memory_bytes"] > 0 and meta["slots"] == 1
    assert (meta["precision"], meta["channels_last"], meta["compile"]) == ("fp32", False, False)
    assert all(events[i].metadata["device_name"] == cpu_name() for i in (2, 3, -1))
    assert events[-1].metadata["peak_memory_bytes"] > 2**20
    assert "peak_memory_bytes" not in meta
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
    stream = f"model-{model_id}"
    signal_when(db, victim, "exists (select 1 from events where stream_id = %s and type = "
                "'EpochCompleted') and not exists (select 1 from events where stream_id = %s and "
                "type = 'TrainingCompleted')", (stream, stream))  # killed mid-training, always
    assert Worker(db, lease_seconds=2, poll_seconds=0.3).run(max_jobs=1, idle_exit=False) == 1
    recorded = EventStore(db=db).read_stream(stream)
    claims = [e for e in recorded if e.type == "JobClaimed"]
    assert [e.data["attempt"] for e in claims] == [1, 2]
    # taken over only once the victim's lease ran out: 2 s after its last sign of life
    last_sign_of_life = max(e.recorded_at for e in recorded if e.version < claims[1].version)
    assert (claims[1].recorded_at - last_sign_of_life).total_seconds() >= 2
    assert sum(1 for e in recorded if e.type == "TrainingCompleted") == 1
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
    # paused too long mid-training: its lease runs out. An append it had sent goes through after
    # the pause, so the condition leaves room for more than one more epoch.
    signal_when(db, sleeper, "(select count(*) from events where stream_id = %s and type = "
                "'EpochCompleted') between 1 and 25", (f"model-{model_id}",),
                signum=signal.SIGSTOP)
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
        assert wait_for(db, f"exists (select 1 from epochs where model_id = '{model_id}')", 180)
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
    worker = Worker(db, poll_seconds=86000)  # its poll would wake it tomorrow: only NOTIFY can
    thread = threading.Thread(target=lambda: worker.run(max_jobs=1, idle_exit=False), daemon=True)
    thread.start()
    with db.connect() as conn:  # the worker listens: a job queued from now on must wake it
        while not conn.execute(
                "select exists (select 1 from pg_stat_activity where query = %s and "
                "datname = current_database() and state = 'idle')", (LISTEN_SQL,)).fetchone()[0]:
            assert thread.is_alive(), "the worker ended before it listened"
            conn.rollback()
            time.sleep(0.05)
    [model_id] = queue(db, 1, epochs=1)
    thread.join()  # the suite's timeout fails a worker that sleeps through the notification
    assert "TrainingCompleted" in [t for t, _ in types_of(db, model_id)]


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
