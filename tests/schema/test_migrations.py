"""Migrations: an empty database goes to head, back to base and up again; old data upgrades."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, Projector, event_id_for
from nasdb.ingest.synthetic import dataset_event, search_log
from nasdb.migrations import ensure_schema
from nasdb.migrations.runner import (
    all_revisions,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from nasdb.schema import Database
from nasdb.schema.errors import SchemaOutOfDate


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert {"events", "models", "epochs", "class_metrics", "jobs", "studies", "datasets",
            "rm_models"} <= tables(empty_db_url)
    downgrade(db, "base")
    assert current_revision(db) is None
    assert tables(empty_db_url) <= {"alembic_version"}
    upgrade(db)
    assert current_revision(db) == head_revision()


def test_events_written_at_the_first_revision_survive_the_upgrade(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    upgrade(db, "0001")
    event = dataset_event("old")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "select * from nasdb_append('dataset-old', 0, %s)",
            (Jsonb([{"event_id": str(event_id_for("dataset-old", "x")), "type": event.type,
                     "schema_version": 1, "data": event.data, "metadata": {}}]),),
        )
    fresh = Database(empty_db_url)
    ensure_schema(fresh)  # what every command does first
    assert current_revision(fresh) == head_revision()
    Projector(fresh).catch_up()
    with fresh.connect() as conn:
        assert conn.execute("select id from datasets").fetchall() == [("old",)]
    assert len(EventStore(db=fresh).read_all()) == 1


def test_a_schema_newer_than_the_code_is_refused_with_the_fix(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update alembic_version set version_num = '9999'")
    with pytest.raises(SchemaOutOfDate) as err:
        ensure_schema(Database(db_url))
    assert "is at schema revision 9999, which this nasdb does not know (it is newer); " \
           "upgrade nasdb: pip install -U nasdb" in str(err.value)


def _snapshot(url: str) -> tuple[list[tuple[object, ...]], ...]:
    events = _snapshot_events(url)
    with psycopg.connect(url) as conn:
        models = conn.execute("select id, status, params, test_acc, epochs_trained, best_val_acc,"
                              " tags, pinned from models order by id").fetchall()
        metrics = conn.execute("select model_id, class_name, accuracy, recall from class_metrics"
                               " order by model_id, class_index").fetchall()
        epochs = conn.execute("select model_id, epoch, val_acc from epochs "
                              "order by model_id, epoch").fetchall()
    return events, models, metrics, epochs


def test_a_database_with_data_downgrades_step_by_step_and_comes_back(db_url: str) -> None:
    """Every downgrade from head to the first revision runs on a database holding events and
    read models; the log survives untouched, and upgrading again and projecting gives the same
    views (the read models are derived data; the downgrades drop them, never events)."""
    db = Database(db_url)
    store = EventStore(db=db)
    store.append_batch([(stream, events, 0) for stream, events in search_log(12, seed=3)])
    Projector(db).catch_up()
    before = _snapshot(db_url)
    assert len(before[0]) > 50 and len(before[1]) == 12 and before[2] and before[3]
    revisions = sorted(all_revisions())
    for target in reversed(revisions[:-1]):  # head-1, ..., 0001: one revision at a time
        downgrade(db, target)
        assert current_revision(db) == target
        assert _snapshot_events(db_url) == before[0]
    assert "models" not in tables(db_url) and "events" in tables(db_url)
    upgrade(db)
    assert current_revision(db) == head_revision()
    fresh = Database(db_url)
    Projector(fresh).catch_up()
    assert _snapshot(db_url) == before


def _snapshot_events(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("select position, event_id, stream_id, version, type, "
                            "schema_version, data, metadata, recorded_at from events "
                            "order by position").fetchall()
