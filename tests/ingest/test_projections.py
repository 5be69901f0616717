"""Projections: incremental = replay, read-only access to views (kill -9 and concurrent
projectors: test_service.py)."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import (
    DIGIT_CLASSES,
    completed_event,
    dataset_event,
    model_lifecycle,
    search_log,
)
from nasdb.schema import Database
from nasdb.schema.events import (
    EpochCompleted,
    JobClaimed,
    TrainingCancelled,
    TrainingFailed,
    TrainingRequested,
)
from nasdb.schema.vocabulary import (
    JOB_TRANSITIONS,
    IllegalJobTransition,
    JobState,
    job_transition,
    model_status,
)
from nasdb.trainers.worker import fold_job

from ._helpers import snapshot


def load(store: EventStore, n_models: int, seed: int = 0) -> None:
    for stream, events in search_log(n_models, seed):
        store.append(stream, events)


def test_models_view_reflects_a_model_lifecycle(db: Database) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    store.append("model-m1", model_lifecycle(random.Random(1), "m1", epochs=4))
    store.append("model-m1", [NewEvent("Pinned", {}), NewEvent("Tagged", {"tag": "baseline"}),
                              NewEvent("Noted", {"text": "looks good"})])
    Projector(db).catch_up()
    with db.connect(dict_rows=True) as conn:
        model = conn.execute("select * from models where id = 'm1'").fetchone()
        epochs = conn.execute("select epoch from epochs order by epoch").fetchall()
        classes = conn.execute("select count(*) as n from class_metrics").fetchone()
        job = conn.execute("select * from jobs").fetchone()
    assert model is not None and job is not None and classes is not None
    assert model["status"] == "done"
    assert model["epochs_trained"] == 4
    assert model["pinned"] is True
    assert model["tags"] == ["baseline"]
    assert model["notes_count"] == 1
    assert model["test_acc"] is not None
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    assert classes["n"] == 10
    assert job["state"] == "done"


def _job_event(event_type: str, attempt: int = 1) -> NewEvent:
    """An event of the job state machine, as a worker or a person appends it."""
    return {
        "TrainingRequested": lambda: NewEvent.of(TrainingRequested(priority=1)),
        "JobClaimed": lambda: NewEvent.of(JobClaimed(worker=f"w{attempt}", attempt=attempt,
                                                     lease_seconds=60.0)),
        "TrainingCompleted": lambda: replace(  # no idempotency key: a second one is appended
            completed_event(2, 0.8, [str(i) for i in range(10)], [0.8] * 10, b"\x01" * 8,
                            latency_ms=0.1, train_seconds=1.0), idempotency_key=None),
        "TrainingFailed": lambda: NewEvent.of(TrainingFailed(attempt=attempt, error="boom")),
        "TrainingCancelled": lambda: NewEvent.of(TrainingCancelled(reason="enough")),
    }[event_type]()


# A legal path to each state of the job state machine.
PATHS: dict[JobState | None, list[str]] = {
    None: [],
    "queued": ["TrainingRequested"],
    "claimed": ["TrainingRequested", "JobClaimed"],
    "done": ["TrainingRequested", "JobClaimed", "TrainingCompleted"],
    "failed": ["TrainingRequested", "JobClaimed", "TrainingFailed"],
    "cancelled": ["TrainingRequested", "TrainingCancelled"],
}


def test_the_jobs_projection_and_the_worker_follow_the_job_state_machine(db: Database) -> None:
    """Every job event in every state: the projection's ``models.status`` and ``jobs.state``, the
    worker's fold and `nasdb.schema.vocabulary`'s machine agree; an illegal event is recorded as
    a projection failure and changes nothing."""
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    rng = random.Random(3)
    cases: dict[str, tuple[JobState | None, str]] = {}
    for i, (state, path) in enumerate(PATHS.items()):
        for j, event_type in enumerate(JOB_TRANSITIONS):
            mid = f"m{i}{j}"
            attempts = iter(range(1, 9))
            events = [_job_event(t, next(attempts) if t == "JobClaimed" else 1) for t in path]
            last = _job_event(event_type, 2 if event_type == "JobClaimed" else 1)
            proposed = model_lifecycle(rng, mid, finish=False)[0]
            store.append(f"model-{mid}", [proposed, *events, last])
            cases[mid] = (state, event_type)
    Projector(db, batch_size=7).catch_up()
    with db.connect() as conn:
        status = dict(conn.execute("select id, status from models").fetchall())
        jobs = dict(conn.execute("select model_id, state from jobs").fetchall())
        failed = {(stream.removeprefix("model-"), t): message for stream, t, message in
                  conn.execute("select stream_id, type, message from projection_failures")}
    for mid, (state, event_type) in cases.items():
        try:
            expected, legal = job_transition(state, event_type), True
        except IllegalJobTransition:
            expected, legal = state, False
        assert status[mid] == model_status(expected), (state, event_type)
        # a job row exists once training was requested (a cancelled proposal never had one)
        assert jobs.get(mid, expected if expected in (None, "cancelled") else "missing") == \
            expected, (state, event_type)
        assert ((mid, event_type) in failed) == (not legal), (state, event_type)
        assert fold_job(store.read_stream(f"model-{mid}")).state == expected, (state, event_type)
    assert len(failed) == sum(1 for s, t in cases.values() if s not in JOB_TRANSITIONS[t].sources)


def test_a_claim_after_the_job_completed_is_a_projection_failure_and_changes_nothing(
    db: Database,
) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    store.append("model-m1", model_lifecycle(random.Random(1), "m1", epochs=2))
    store.append("model-m1", [_job_event("JobClaimed", attempt=2), _job_event("TrainingFailed"),
                              NewEvent.of(TrainingCancelled(reason="late"))])
    Projector(db).catch_up()
    with db.connect() as conn:
        assert conn.execute("select status, epochs_trained, error from models").fetchone() == \
            ("done", 2, None)
        assert conn.execute("select state, attempt, worker from jobs").fetchone() == \
            ("done", 1, "synthetic")
        assert conn.execute("select type, handler, message from projection_failures "
                            "order by position").fetchall() == [
            ("JobClaimed", "claimed",
             "model m1: JobClaimed cannot follow a done job: only a queued or claimed one"),
            ("TrainingFailed", "failed",
             "model m1: TrainingFailed cannot follow a done job: only a claimed one"),
            ("TrainingCancelled", "cancelled", "model m1: TrainingCancelled cannot follow a done "
             "job: only a never requested, queued or claimed one"),
        ]
    job = fold_job(store.read_stream("model-m1"))
    assert (job.state, job.attempt, job.worker) == ("done", 1, "synthetic")  # the worker agrees


def test_incremental_projection_equals_replay(db: Database) -> None:
    store = EventStore(db=db)
    projector = Projector(db, batch_size=37)
    streams = list(search_log(120, seed=3))
    for i, (stream, events) in enumerate(streams):
        store.append(stream, events)
        if i % 7 == 0:
            projector.catch_up(max_batches=1)
    projector.catch_up()
    incremental = snapshot(db)
    assert sum(len(rows) for rows in incremental.values()) > 500
    Projector(db).replay()
    assert snapshot(db) == incremental


def test_read_only_role_reads_views_and_writes_nothing(db: Database) -> None:
    store = EventStore(db=db)
    load(store, 5)
    Projector(db).catch_up()
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    with db.connect(autocommit=True) as conn:
        conn.execute(f"create role {role} login in role nasdb_reader")
    params = psycopg.conninfo.conninfo_to_dict(db.url)
    params["user"] = role
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True) as conn:
            for view in ("models", "epochs", "class_metrics", "jobs", "studies", "datasets",
                         "events"):
                conn.execute(f"select * from {view} limit 1")
            refused = [
                "select * from rm_models",
                "insert into events (event_id, stream_id, version, type, data) "
                "values (gen_random_uuid(), 'x', 1, 'Pinned', '{}')",
                "update models set pinned = true",
                "delete from datasets",
                "select * from nasdb_append('model-x', null, '[]')",
                "select nextval('model_ids')",
            ]
            for statement in refused:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)  # type: ignore[arg-type]
    finally:
        with db.connect(autocommit=True) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")


class AppendThenProject(RuleBasedStateMachine):
    """Any sequence of appends, projected incrementally in any rhythm, equals a replay."""

    url: str

    @initialize()
    def start(self) -> None:
        self.db = Database(self.url)
        self.store = EventStore(db=self.db)
        self.store.append("dataset-synthetic", [dataset_event()])
        self.rng = random.Random(0)
        self.models: list[str] = []
        self.queued: list[str] = []  # models whose training was requested, never claimed
        self.next_id = 1

    @rule(finish=st.booleans(), epochs=st.integers(1, 4), steered=st.booleans())
    def propose(self, finish: bool, epochs: int, steered: bool) -> None:
        mid = f"m{self.next_id}"
        self.next_id += 1
        parent = self.models[0] if steered and self.models else None
        self.store.append(f"model-{mid}", model_lifecycle(
            self.rng, mid, epochs=epochs, parent_id=parent, finish=finish))
        self.models.append(mid)
        if not finish:
            self.queued.append(mid)

    @rule(data=st.data(), epochs=st.integers(1, 3), complete=st.booleans())
    def retry(self, data: st.DataObject, epochs: int, complete: bool) -> None:
        """A queued model is claimed and trains, its worker dies, and attempt 2 trains it from
        scratch (the projection drops attempt 1's epochs), perhaps to completion. Rows of a model
        that an earlier batch created are replaced: the path that upserts rather than inserts."""
        if not self.queued:
            return
        mid = data.draw(st.sampled_from(self.queued))
        self.queued.remove(mid)

        def epoch(n: int, acc: float) -> NewEvent:
            return NewEvent.of(EpochCompleted(
                epoch=n, train_loss=1.0, train_acc=acc, val_loss=1.0, val_acc=acc,
                class_acc={"0": acc}, lr=0.01, seconds=0.1))

        def claim(attempt: int) -> NewEvent:
            return NewEvent.of(JobClaimed(worker="synthetic", attempt=attempt, lease_seconds=60.0))

        self.store.append(f"model-{mid}", [claim(1), *(epoch(n, 0.2) for n in range(1, 4))])
        # attempt 2 sends epoch 2 twice (a worker that resent it after a reconnect): the later
        # one wins, with a batch boundary between them
        self.store.append(f"model-{mid}", [claim(2), epoch(1, 0.3), epoch(2, 0.3)])
        Projector(self.db).catch_up()
        events = [epoch(n, 0.5) for n in range(2, epochs + 2)]
        if complete:
            events.append(completed_event(epochs + 1, 0.5, DIGIT_CLASSES, [0.5] * 10,
                                          bytes(64), latency_ms=0.1, train_seconds=1.0))
        self.store.append(f"model-{mid}", events)

    @rule(data=st.data(), kind=st.sampled_from(
        ["Pinned", "Unpinned", "Tagged", "Untagged", "Noted", "PriorityChanged",
         "TrainingCancelled"]))
    def steer(self, data: st.DataObject, kind: str) -> None:
        if not self.models:
            return
        mid = data.draw(st.sampled_from(self.models))
        payload: dict[str, Any] = {
            "Tagged": {"tag": "t"}, "Untagged": {"tag": "t"}, "Noted": {"text": "n"},
            "PriorityChanged": {"priority": data.draw(st.integers(-5, 5))},
        }.get(kind, {})
        self.store.append(f"model-{mid}", [NewEvent(kind, payload)])

    @rule(batches=st.integers(1, 3), size=st.integers(1, 50))
    def project(self, batches: int, size: int) -> None:
        Projector(self.db, batch_size=size).catch_up(max_batches=batches)

    @invariant()
    def checkpoint_never_passes_the_log(self) -> None:
        if hasattr(self, "store"):
            assert Projector(self.db).checkpoint() <= self.store.last_position()

    def teardown(self) -> None:
        if not hasattr(self, "db"):
            return
        try:
            Projector(self.db).catch_up()
            incremental = snapshot(self.db)
            Projector(self.db).replay()
            assert snapshot(self.db) == incremental
        finally:  # a failing example must not leak connections while hypothesis shrinks it
            self.store.close()
            self.db.engine.dispose()


def test_any_sequence_of_appends_projects_like_a_replay(pg_admin_url: str,
                                                         template_url: str) -> None:
    names: list[str] = []

    class Machine(AppendThenProject):
        def __init__(self) -> None:
            super().__init__()
            name = f"nasdb_h_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(pg_admin_url, autocommit=True) as conn:
                conn.execute(f'create database "{name}" template nasdb_test_template')
            names.append(name)
            params = psycopg.conninfo.conninfo_to_dict(pg_admin_url)
            params["dbname"] = name
            self.url = psycopg.conninfo.make_conninfo(**params)

    try:
        settings(max_examples=12, stateful_step_count=25, deadline=None,
                 suppress_health_check=list(HealthCheck))(Machine)
        Machine.TestCase().runTest()
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'drop database if exists "{name}" with (force)')
