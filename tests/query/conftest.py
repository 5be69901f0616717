"""Fixtures for the query tests: a real PostgreSQL with temporary stand-ins for the public views.

The database is NASDB_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test; tests that
need it are skipped when neither is reachable. Each test gets one connection inside a transaction
that is rolled back, with TEMP tables named like the public views (temp tables shadow permanent
ones), so nothing persists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

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


def _url() -> str:
    return os.environ.get("NASDB_TEST_DATABASE_URL") or DEFAULT_URL


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = _url()
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL at {url}: {e}")
    return url


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction with empty TEMP stand-ins for the views; rolled back."""
    with psycopg.connect(pg_url) as conn:
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
def db(pg: psycopg.Connection[Any]) -> OneConnection:
    return OneConnection(pg)
