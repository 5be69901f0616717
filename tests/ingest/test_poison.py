"""No poison event: out-of-range payloads are refused before append; an old log's bad events are
recorded and skipped, and every command keeps working."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import dataset_event, model_lifecycle
from nasdb.schema import Database
from nasdb.schema.errors import InvalidEvent

from ._helpers import snapshot


def nasdb(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "nasdb.ui.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def event_count(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("select count(*) from events").fetchone()
    return int(row[0]) if row else 0


def one_line_error(out: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert out.returncode == code, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.mark.timeout(1800)  # ten CLI processes, each importing torch, on a shared machine
def test_values_no_column_can_hold_are_refused_at_the_command(db: Database) -> None:
    assert nasdb(db.url, "dataset", "add", "digits").returncode == 0
    before = event_count(db)
    line = one_line_error(nasdb(db.url, "train", "--dataset", "digits", "--reference", "cnn",
                                "--epochs", "100000000000"))
    assert "epochs" in line and "2147483647" in line
    assert event_count(db) == before  # nothing appended

    queued = nasdb(db.url, "train", "--dataset", "digits", "--reference", "cnn", "--epochs", "1")
    assert queued.returncode == 0, queued.stderr
    model = queued.stdout.strip().splitlines()[-1]
    before = event_count(db)
    line = one_line_error(nasdb(db.url, "priority", model, "99999999999"))
    assert "priority" in line
    assert event_count(db) == before

    # every command the issue saw fail still works
    for args in (("models",), ("query", "top 5 by acc"), ("replay",), ("cancel", model),
                 ("worker", "--once")):
        out = nasdb(db.url, *args)
        assert out.returncode == 0, (args, out.stderr)
    rows = json.loads(nasdb(db.url, "models", "--format", "json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(model, "cancelled")]


@pytest.mark.parametrize("event", [
    NewEvent("TrainingRequested", {"priority": 0, "epochs": 100_000_000_000}),
    NewEvent("PriorityChanged", {"priority": 99_999_999_999}),
    NewEvent("EpochCompleted", {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5,
                                "val_loss": float("nan"), "val_acc": 0.5, "lr": 0.1,
                                "seconds": 1.0}),
    NewEvent("JobClaimed", {"worker": "w", "attempt": 1, "lease_seconds": 1e300}),
])
def test_the_store_refuses_out_of_range_payloads(db: Database, event: NewEvent) -> None:
    store = EventStore(db=db)
    with pytest.raises(InvalidEvent):
        store.append("model-m1", [event])
    assert event_count(db) == 0


def raw_append(db: Database, stream: str, type_: str, data: dict[str, Any]) -> int:
    """An event as an old log may hold it: through the SQL append function, with none of
    today's validation in Python."""
    payload = [{"s": 1, "event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
                "data": data, "metadata": {"actor": "old-nasdb"}}]
    with db.connect(autocommit=True) as conn:
        row = conn.execute("select o_position from nasdb_append_many(%s, %s, %s)",
                           ([stream], [None], Jsonb(payload))).fetchone()
    assert row is not None
    return int(row[0])


def test_poison_events_in_an_old_log_are_recorded_skipped_and_replayed_alike(
    db: Database, db_url: str,
) -> None:
    # A type an older nasdb knew and this one does not: its catalogue row is still in the database
    with psycopg.connect(db_url, autocommit=True) as owner:
        owner.execute("insert into nasdb_event_types (type, schema_version) values "
                      "('Exploded', 1) on conflict do nothing")
    store = EventStore(db=db)
    rng = random.Random(3)
    store.append("dataset-synthetic", [dataset_event()])
    store.append("model-m1", model_lifecycle(rng, "m1", finish=False))
    proposed = model_lifecycle(rng, "m2", finish=False)[0].data
    bad = {
        raw_append(db, "model-m1", "TrainingRequested",
                   {"priority": 0, "epochs": 100_000_000_000}): ("TrainingRequested", "payload"),
        raw_append(db, "model-m1", "PriorityChanged",
                   {"priority": 99_999_999_999}): ("PriorityChanged", "payload"),
        raw_append(db, "model-m2", "ArchitectureProposed",
                   {**proposed, "hyperparameters": {**proposed["hyperparameters"],
                                                    "epochs": 100_000_000_000}}):
            ("ArchitectureProposed", "payload"),
        raw_append(db, "model-m1", "Exploded", {}): ("Exploded", "-"),
        raw_append(db, "model-m1", "TrainingCompleted", {"test_acc": 0.5}):
            ("TrainingCompleted", "payload"),
        raw_append(db, "model-m999", "Pinned", {}): ("Pinned", "pinned"),
        raw_append(db, "model-m1", "LeaseRenewed", {"worker": "w", "lease_seconds": 1e300}):
            ("LeaseRenewed", "payload"),
    }
    store.append("model-m1", [NewEvent("Tagged", {"tag": "after"}),
                              NewEvent("PriorityChanged", {"priority": 7})])  # the correction
    Projector(db, batch_size=3).catch_up()  # batches cut through the bad events

    with db.connect() as conn:
        failures = conn.execute(
            "select position, type, handler, message from projection_failures order by position"
        ).fetchall()
        m1 = conn.execute("select tags, priority, status, epochs_planned from models "
                          "where id = 'm1'").fetchone()
        m2 = conn.execute("select count(*) from models where id = 'm2'").fetchone()
    assert {p: (t, h) for p, t, h, _ in failures} == bad
    assert all(message for *_, message in failures)
    assert m1 == (["after"], 7, "queued", 3)  # the rest applied; the correction took
    assert m2 == (0,)
    incremental = snapshot(db)
    Projector(db).replay()
    assert snapshot(db) == incremental

    status = json.loads(nasdb(db.url, "status", "--format", "json").stdout)[0]
    assert status["projection_failures"] == len(bad)
    assert status["projection_lag"] == 0
    shown = [str(v) for k, v in status.items() if k.startswith("failure_")]  # the latest five
    assert len(shown) == 5 and "LeaseRenewed in model-m1 (payload)" in shown[-1]
    for args in (("models",), ("query", "top 5 by acc"), ("replay",), ("cancel", "m1"),
                 ("events", "--limit", "3")):
        out = nasdb(db.url, *args)
        assert out.returncode == 0, (args, out.stderr)


def test_a_write_the_database_refuses_is_isolated_by_bisection(db: Database) -> None:
    """A failure only the database sees (here: a column narrowed after the events were
    written) costs one event, not the batch."""
    store = EventStore(db=db)
    rng = random.Random(5)
    store.append("dataset-synthetic", [dataset_event()])
    for i in range(1, 9):
        store.append(f"model-m{i}", model_lifecycle(rng, f"m{i}", finish=False))
    store.append("model-m4", [NewEvent("Tagged", {"tag": "x" * 40})])
    with db.connect(autocommit=True) as conn:
        conn.execute("alter table rm_models add constraint short_tags "
                     "check (coalesce(length(array_to_string(tags, ',')), 0) < 30)")
    Projector(db).catch_up()
    with db.connect() as conn:
        failures = conn.execute("select type, handler from projection_failures").fetchall()
        count = conn.execute("select count(*) from models").fetchone()
    assert failures == [("Tagged", "write")]
    assert count == (8,)
