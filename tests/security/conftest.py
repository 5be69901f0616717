"""Fixtures for the attacks: the everyday role's URL, the CLI as a person runs it, the log's bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from nasdb.schema.db import APP_ROLE, with_user


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def app_url(db_url: str) -> str:
    """The everyday login role (nasdb_app) on the test database."""
    return with_user(db_url, APP_ROLE)


@pytest.fixture
def cli(db_url: str, app_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """Run ``nasdb`` in this process as the everyday role, the owner known for migrations."""
    from nasdb.ui.cli import main

    monkeypatch.setenv("NASDB_DATABASE_URL", app_url)
    monkeypatch.setenv("NASDB_OWNER_URL", db_url)
    monkeypatch.delenv("NASDB_SQL_URL", raising=False)

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


def log_digest(url: str) -> str:
    """A digest of every byte of the log (and of the set of tables), to prove nothing changed."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select position, event_id, stream_id, version, type, schema_version, data::text, "
            "metadata::text, recorded_at from events order by position"
        ).fetchall()
        tables = conn.execute(
            "select string_agg(relname, ',' order by relname) from pg_class "
            "where relnamespace = 'public'::regnamespace"
        ).fetchone()
    return hashlib.sha256(repr((rows, tables)).encode()).hexdigest()
