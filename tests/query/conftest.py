"""Fixtures for the query tests, on the project's real database fixture (tests/conftest.py).

`db` / `db_url` (from tests/conftest.py) are a fresh migrated database per test on the embedded
PostgreSQL (or NASDB_TEST_DATABASE_URL); tests that want real data put events through the store and
the projector (see test_store_db.py). For hand-made edge cases (ties, missing metrics, exotic
layers) `pg` is one connection to that database inside a transaction that is rolled back, with TEMP
tables named like the public views (temp tables shadow the views), and `temp_db` hands that
connection to `nasdb.query.run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

VIEWS_DDL = """
CREATE TEMP TABLE models (
  id text PRIMARY KEY, study_id text, dataset_id text, origin text, parent_id text,
  changes text[], architecture jsonb, layer_types text[] NOT NULL DEFAULT '{}', glyph text,
  depth int, params bigint, flops bigint, optimizer text, lr double precision,
  weight_decay double precision, batch_size int, epochs_planned int, hyperparameters jsonb,
  status text NOT NULL DEFAULT 'done', priority double precision, epochs_trained int,
  best_val_acc double precision, last_val_acc double precision, last_val_loss double precision,
  last_train_loss double precision, test_acc double precision, test_loss double precision,
  latency_ms double precision, train_seconds double precision, pinned bool NOT NULL DEFAULT false,
  tags text[] NOT NULL DEFAULT '{}', notes_count int NOT NULL DEFAULT 0,
  predicted_acc double precision, error text, created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE epochs (
  model_id text, epoch int, train_loss double precision, train_acc double precision,
  val_loss double precision, val_acc double precision, lr double precision,
  seconds double precision, class_acc jsonb, recorded_at timestamptz DEFAULT now()
) ON COMMIT DROP;
CREATE TEMP TABLE class_metrics (
  model_id text, dataset_id text, class_index int, class_name text,
  accuracy double precision, precision double precision, recall double precision,
  specificity double precision, support int
) ON COMMIT DROP;
CREATE TEMP TABLE datasets (
  id text, name text, kind text, source text, fingerprint text, channels int, height int,
  width int, classes text[], num_classes int, train_size int, val_size int, test_size int,
  val_seed int, registered_at timestamptz DEFAULT now()
) ON COMMIT DROP;
CREATE TEMP TABLE studies (id text, dataset_id text, created_at timestamptz DEFAULT now())
  ON COMMIT DROP;
"""


@pytest.fixture
def pg(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction with empty TEMP stand-ins for the views; rolled back."""
    with psycopg.connect(db_url) as conn:
        conn.execute(VIEWS_DDL)
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
    """`run`'s database argument over `pg`'s TEMP tables."""
    return OneConnection(pg)
