"""Shared by the projection tests: snapshots of the read models and the projector service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from nasdb.ingest import READ_MODEL_TABLES, projector_alive
from nasdb.schema import Database


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted, for comparison."""
    out = {}
    with db.connect() as conn:
        for table in READ_MODEL_TABLES:
            rows = conn.execute(f"select * from {table}").fetchall()  # type: ignore[arg-type]
            out[table] = sorted(rows, key=repr)
    return out


def start_service(db: Database, *, wait_alive: int = 1) -> subprocess.Popen[bytes]:
    """The projector service as its own process (what `ensure_projector` starts)."""
    env = {**os.environ, "NASDB_DATABASE_URL": db.url, "NASDB_POLL_SECONDS": "5"}
    proc = subprocess.Popen([sys.executable, "-m", "nasdb.ingest"], env=env)
    deadline = time.monotonic() + 120
    while projector_alive(db) < wait_alive:
        assert proc.poll() is None, "the projector service exited"
        assert time.monotonic() < deadline, "the projector service did not start"
        time.sleep(0.05)
    return proc


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.wait(30)


def checkpoint(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("select projected_to from projection_status").fetchone()
    return int(row[0]) if row else 0
