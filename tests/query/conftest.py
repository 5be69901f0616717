"""Fixtures for the query tests, on the real migrated schema (tests/conftest.py's `db_url`).

Tests that want realistic data put events through the store and the projector (test_store_db.py).
For hand-made edge cases (ties, missing metrics, exotic layers) `pg` is one connection to a fresh
migrated database inside a transaction that is rolled back: rows are inserted through the real
public views (simple views, so PostgreSQL writes them into the read-model tables) with the real
column types, NOT NULL constraints and defaults. `insert` fills the columns a hand-made row does
not care about with plain values; `temp_db` hands the connection to `nasdb.query.run`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

_NOW = "now"  # PostgreSQL reads it as the transaction's start time, as now() gives

#: The NOT NULL columns without a default, per view: what a hand-made row gets unless it says.
REQUIRED: dict[str, dict[str, Any]] = {
    "models": {"dataset_id": "d", "origin": "sampled", "architecture": Jsonb({"layers": []}),
               "glyph": "", "depth": 1, "params": 1000, "flops": 0,
               "hyperparameters": Jsonb({}), "status": "done", "created_at": _NOW},
    "epochs": {"recorded_at": _NOW},
    "class_metrics": {"dataset_id": "d"},
    "datasets": {"kind": "digits", "source": "", "fingerprint": "", "channels": 1, "height": 8,
                 "width": 8, "classes": [], "num_classes": 0, "train_size": 0, "val_size": 0,
                 "test_size": 0, "val_seed": 0, "registered_at": _NOW},
    "studies": {"strategy": "random", "settings": Jsonb({}), "space": Jsonb({}),
                "objectives": [], "budget": Jsonb({}), "state": "running", "created_at": _NOW,
                "updated_at": _NOW},
}


def insert(conn: psycopg.Connection[Any], view: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert hand-made rows through the public ``view``; unnamed required columns get
    `REQUIRED`'s values, every other column its real default (or NULL)."""
    for row in rows:
        full = {**REQUIRED[view], **row}
        if view == "class_metrics" and "class_index" not in full:
            full["class_index"] = _class_index(full["class_name"])
        columns = ", ".join(full)
        marks = ", ".join(["%s"] * len(full))
        conn.execute(f"INSERT INTO {view} ({columns}) VALUES ({marks})",  # type: ignore[arg-type]
                     list(full.values()))


def _class_index(name: str) -> int:
    return sum(ord(c) * 31**i for i, c in enumerate(name)) % 1_000_000


@pytest.fixture
def pg(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the migrated test database inside a transaction that is rolled back."""
    with psycopg.connect(db_url) as conn:
        try:
            yield conn
        finally:
            conn.rollback()


class OneConnection:
    """A `db` for `nasdb.query.run` that hands out the test's connection inside a savepoint."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        self.conn.execute("SAVEPOINT query_run")
        try:
            yield self.conn
        finally:
            self.conn.execute("ROLLBACK TO SAVEPOINT query_run")


@pytest.fixture
def temp_db(pg: psycopg.Connection[Any]) -> OneConnection:
    """`run`'s database argument over `pg`'s rolled-back transaction."""
    return OneConnection(pg)
