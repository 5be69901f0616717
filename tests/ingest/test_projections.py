"""Projections: incremental = replay, read-only access to views (kill -9 and concurrent
projectors: test_service.py)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import dataset_event, model_lifecycle, search_log
from nasdb.schema import Database

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
        self.next_id = 1

    @rule(finish=st.booleans(), epochs=st.integers(1, 4), steered=st.booleans())
    def propose(self, finish: bool, epochs: int, steered: bool) -> None:
        mid = f"m{self.next_id}"
        self.next_id += 1
        parent = self.models[0] if steered and self.models else None
        self.store.append(f"model-{mid}", model_lifecycle(
            self.rng, mid, epochs=epochs, parent_id=parent, finish=finish))
        self.models.append(mid)

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
        Projector(self.db).catch_up()
        incremental = snapshot(self.db)
        Projector(self.db).replay()
        assert snapshot(self.db) == incremental
        self.store.close()


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
