"""Migrations: an empty database goes to head, back to base and up again; old data upgrades."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, Projector, event_id_for
from nasdb.ingest.synthetic import dataset_event
from nasdb.migrations import ensure_schema
from nasdb.migrations.runner import current_revision, downgrade, head_revision, upgrade
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
