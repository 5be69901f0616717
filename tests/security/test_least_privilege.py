"""The everyday role reads and appends only through the append function; the database itself
refuses payloads that break the catalogue generated from the payload classes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, NewEvent
from nasdb.migrations import ensure_schema
from nasdb.schema import Database, SchemaOutOfDate, events
from nasdb.schema.catalogue_sql import field_rules
from nasdb.schema.events import Pinned, Tagged
from tests.security.conftest import Result, log_digest


def append_raw(url: str, event_type: str, data: Any, version: int = 1) -> list[Any]:
    """Call the append function as a client that bypasses Python would."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select * from nasdb_append_many(array['model-raw'], array[null::int], %s)",
            (Jsonb([{"s": 1, "event_id": str(uuid.uuid4()), "type": event_type,
                     "schema_version": version, "data": data, "metadata": {}}]),),
        ).fetchall()


@pytest.mark.parametrize("statement", [
    "update events set type = 'Forged'",
    "delete from events",
    "truncate events",
    "alter table events disable trigger events_no_update",
    "insert into events (event_id, stream_id, version, type, data) "
    "values (gen_random_uuid(), 'model-x', 1, 'Pinned', '{}')",
    "drop view models",
    "create table forged (a int)",
    "create or replace function nasdb_json_type_ok(v jsonb, types text[]) returns boolean "
    "language sql as $$ select true $$",
    "delete from nasdb_event_fields",
    "set role postgres",
])
def test_the_everyday_role_cannot_change_the_log_or_the_schema(
        db: Database, app_url: str, statement: str) -> None:
    EventStore(db=db).append("model-m1", NewEvent.of(Tagged(tag="a")))
    before = log_digest(db.url)
    with psycopg.connect(app_url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute(statement)
    assert log_digest(db.url) == before


@pytest.mark.parametrize(("event_type", "data", "problem"), [
    ("Exploded", {}, "unknown event type"),
    ("Tagged", {"tag": 5}, "field tag: must be string"),
    ("Tagged", {}, "field tag: is required"),
    ("Tagged", {"tag": "a", "extra": 1}, "field extra is not declared"),
    ("Tagged", [1, 2], "not a JSON object"),
    ("PriorityChanged", {"priority": 1.5}, "field priority: must be integer"),
    ("JobClaimed", {"worker": "w", "attempt": 1, "lease_seconds": "60"},
     "field lease_seconds: must be null or number"),
    ("Pinned", {}, "unknown event type or schema version"),  # with version 99 below
])
def test_the_append_function_refuses_what_python_would(
        db: Database, app_url: str, event_type: str, data: Any, problem: str) -> None:
    before = log_digest(db.url)
    version = 99 if event_type == "Pinned" else 1
    with pytest.raises(psycopg.errors.CheckViolation, match=problem):
        append_raw(app_url, event_type, data, version)
    assert log_digest(db.url) == before


def test_a_valid_raw_append_is_accepted_and_names_its_login_role(db: Database,
                                                                  app_url: str) -> None:
    assert len(append_raw(app_url, "Tagged", {"tag": "ok"})) == 1
    assert len(append_raw(app_url, "PriorityChanged", {"priority": 3.0})) == 1  # integral
    (event,) = [e for e in EventStore(db=db).read_all() if e.type == "Tagged"]
    assert event.metadata["db_user"] == "nasdb_app"


def test_every_required_field_is_enforced_by_the_database(db: Database, app_url: str) -> None:
    """Generated from the classes: dropping any required field of any type is refused."""
    required = [r for r in field_rules() if r.required]
    assert {r.type for r in required} >= {"Tagged", "ArchitectureProposed", "EpochCompleted"}
    sample = {"string": "x", "integer": 1, "number": 0.5, "boolean": True, "array": [],
              "object": {}, "null": None}
    for rule in required:
        data = {r.field: sample[(r.json_types or ("string",))[0]]
                for r in field_rules() if r.type == rule.type and r.field != rule.field}
        with pytest.raises(psycopg.errors.CheckViolation, match=f"field {rule.field}: is req"):
            append_raw(app_url, rule.type, data, rule.schema_version)


def test_the_store_records_the_everyday_role(app_url: str, db_url: str) -> None:
    store = EventStore(db=Database(app_url, owner_url=db_url))
    (recorded,) = store.append("model-m1", NewEvent.of(Pinned()))
    assert recorded.metadata["db_user"] == "nasdb_app"
    assert store.read_stream("model-m1")[0].metadata == recorded.metadata


class Exploded(events.Payload):
    TYPE: ClassVar[str] = "Exploded"
    size: int


def test_a_new_payload_class_reaches_the_database_through_the_owner(
        app_url: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(events.PAYLOAD_TYPES, "Exploded", Exploded)
    with pytest.raises(SchemaOutOfDate, match="NASDB_OWNER_URL"):
        ensure_schema(Database(app_url, owner_url=app_url))
    store = EventStore(db=Database(app_url, owner_url=db_url))  # migrates as the owner
    store.append("model-m1", NewEvent.of(Exploded(size=3)))
    with pytest.raises(psycopg.errors.CheckViolation, match="field size: must be integer"):
        append_raw(app_url, "Exploded", {"size": "big"})


def test_cli_commands_run_as_the_everyday_role(db: Database, cli: Callable[..., Result]) -> None:
    assert cli("dataset", "add", "digits").code == 0
    status = cli("status", "--format", "json")
    assert status.code == 0, status
    assert "user=nasdb_app" in json.loads(status.out)[0]["database"]


def test_the_embedded_server_connects_as_the_application_role(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_HOME", str(tmp_path))
    for name in ("NASDB_DATABASE_URL", "NASDB_OWNER_URL", "NASDB_SQL_URL"):
        monkeypatch.delenv(name, raising=False)
    db = Database()
    ensure_schema(db)
    with db.connect() as conn:
        row = conn.execute("select current_user, has_table_privilege('events', 'update')")
        assert row.fetchone() == ("nasdb_app", False)
    with psycopg.connect(db.owner_url) as conn:  # the owner is another role, used to migrate
        assert conn.execute("select current_user").fetchone() != ("nasdb_app",)
    from nasdb.schema import db as db_module

    db.engine.dispose()
    db_module._embedded_servers.pop(str(tmp_path / "pgdata")).cleanup()
