"""No poison job: a model too large is refused when proposed; a job that breaks while it is set up
or trained ends with TrainingFailed and the reason; attempts that die are counted and end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg
import pytest

from nasdb.ingest import EventStore, NewEvent, Projector, put_artifact
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.schema.events import JobClaimed, TrainingRequested
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, propose
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.worker import Worker
from tests.security.conftest import Result, log_digest

SMALL = {"layers": [{"type": "Dense", "units": 16}]}


@pytest.fixture
def store(db: Database) -> EventStore:
    s = EventStore(db=db)
    register_dataset(s, "digits")
    Projector(db).catch_up()
    return s


def _types(store: EventStore, model_id: str) -> list[str]:
    return [e.type for e in store.read_stream(f"model-{model_id}")]


def test_the_issue_s_poison_model_is_refused_naming_the_layer(
        store: EventStore, cli: Callable[..., Result]) -> None:
    before = log_digest(store.db.url)
    result = cli("train", "--dataset", "digits", "--layers",
                 '[{"type":"Dense","units":99999999999}]')
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: layer 0 (Dense 99999999999) has 6.5T parameters, which brings the model to "
        "6.5T, above the limit of 200M (NASDB_MAX_PARAMS); make the layer smaller"]
    assert log_digest(store.db.url) == before


def test_activation_memory_is_bounded_too(store: EventStore, cli: Callable[..., Result],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_MAX_ACTIVATION_MB", "64")
    result = cli("train", "--dataset", "digits", "--batch-size", "4096", "--layers",
                 '[{"type":"Conv2D","filters":512,"kernel":3,"padding":"same"}]')
    assert result.code == 2
    assert result.err.startswith("error: layer 0 (Conv2D")
    assert "NASDB_MAX_ACTIVATION_MB" in result.err and "MiB" in result.err


def test_a_poison_job_appended_around_propose_fails_and_the_worker_goes_on(
        store: EventStore) -> None:
    dataset = get_dataset(store.db, "digits")
    (good,) = propose(store, dataset, [Proposal(Architecture.from_json(SMALL),
                                                Hyperparameters(epochs=1), "handcrafted")])
    (bad,) = propose(store, dataset, [Proposal(Architecture.from_json(SMALL),
                                               Hyperparameters(epochs=1), "handcrafted")],
                     queue=False)
    # Rewrite nothing: a second proposal stream, as a client bypassing `propose` would append it.
    proposed = store.read_stream(f"model-{bad}")[0].data
    huge = {**proposed, "model_id": "m99", "architecture": {
        "layers": [{"type": "Dense", "units": 99999999999}]}}
    store.append("model-m99", [NewEvent("ArchitectureProposed", huge),
                               NewEvent.of(TrainingRequested(priority=5))])
    Projector(store.db).catch_up()
    done = Worker(store.db, lease_seconds=30).run()
    assert done == 1
    (failed,) = [e for e in store.read_stream("model-m99") if e.type == "TrainingFailed"]
    assert "could not start training" in failed.data["error"]
    assert "NASDB_MAX_PARAMS" in failed.data["error"]
    assert _types(store, good)[-1] == "TrainingCompleted"


def test_a_corrupt_checkpoint_fails_the_job_not_the_worker(store: EventStore) -> None:
    dataset = get_dataset(store.db, "digits")
    (model,) = propose(store, dataset, [Proposal(Architecture.from_json(SMALL),
                                                 Hyperparameters(epochs=1), "handcrafted")],
                       queue=False)
    garbage = put_artifact(store.db, b"not a torch checkpoint", "checkpoint")
    store.append(f"model-{model}", NewEvent.of(TrainingRequested(resume_from=garbage)))
    Projector(store.db).catch_up()
    assert Worker(store.db, lease_seconds=30).run() == 0
    (failed,) = [e for e in store.read_stream(f"model-{model}") if e.type == "TrainingFailed"]
    assert failed.data["error"].startswith("could not start training: UnpicklingError")


def test_attempts_that_died_end_the_job_after_max_attempts(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_MAX_ATTEMPTS", "3")
    dataset = get_dataset(store.db, "digits")
    (model,) = propose(store, dataset, [Proposal(Architecture.from_json(SMALL),
                                                 Hyperparameters(epochs=1), "handcrafted")])
    for attempt in (1, 2, 3):  # three workers claimed it and died before renewing their lease
        store.append(f"model-{model}", NewEvent.of(JobClaimed(
            worker=f"dead-{attempt}", attempt=attempt, lease_seconds=0.05)))
    time.sleep(0.2)
    Projector(store.db).catch_up()
    assert Worker(store.db, lease_seconds=30).run() == 0
    types = _types(store, model)
    assert types.count("JobClaimed") == 3 and types[-1] == "TrainingFailed"
    error = store.read_stream(f"model-{model}")[-1].data["error"]
    assert error.startswith("gave up after 3 attempts") and "dead-3" in error


def test_a_killed_worker_s_job_is_retried_then_given_up(
        db_url: str, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing: a worker process killed mid-job (as the OOM killer would)."""
    dataset = get_dataset(store.db, "digits")
    (model,) = propose(store, dataset, [Proposal(Architecture.from_json(SMALL),
                                                 Hyperparameters(epochs=200), "handcrafted")])
    env = {**os.environ, "NASDB_DATABASE_URL": db_url, "NASDB_LEASE_SECONDS": "1.5"}
    proc = subprocess.Popen([sys.executable, "-m", "nasdb.ui.cli", "worker", "--once",
                             "--device", "cpu"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while "EpochCompleted" not in _types(store, model):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)  # the lease runs out
    monkeypatch.setenv("NASDB_MAX_ATTEMPTS", "1")
    Projector(store.db).catch_up()
    assert Worker(store.db, lease_seconds=30).run() == 0
    assert _types(store, model)[-1] == "TrainingFailed"
    with psycopg.connect(db_url) as conn:
        state = conn.execute("select state from jobs where model_id = %s", (model,)).fetchone()
    assert state is not None and state[0] != "claimed"
