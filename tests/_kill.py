"""Signal a process at a chosen point of the event log: by construction, never by timing luck.

`signal_when` holds the log's append ordering lock while it looks at the log, so no append can
commit between the look and the signal. The lock is the one every writer takes in
``nasdb_append_many`` (migrations 0004 and 0015), so holding it freezes the log, nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import psycopg

from nasdb.schema import Database

APPEND_LOCK_KEY = 5_310_101  # nasdb_append_many's pg_advisory_xact_lock key


def signal_when(db: Database, proc: subprocess.Popen[Any], condition_sql: str,
                args: tuple[object, ...] = (), *, signum: int = signal.SIGKILL,
                timeout: float = 300.0) -> None:
    """Send ``signum`` to ``proc`` at the first moment ``select <condition_sql>`` holds.

    With SIGKILL the process is reaped and an append it had sent that still waits for the lock is
    cancelled before the lock is released: the log is exactly what the condition saw, as if the
    process had died at that moment. With another signal a waiting append goes through after the
    lock is released (keep that one append's worth of headroom in the condition).

    ``timeout`` only guards against a process that never reaches the condition.
    """
    deadline = time.monotonic() + timeout
    with db.connect(autocommit=True) as conn:
        while True:
            assert proc.poll() is None, "the process ended before the condition held"
            assert time.monotonic() < deadline, f"the condition never held: {condition_sql}"
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,))
                row = conn.execute(f"select {condition_sql}", args).fetchone()
                if row and row[0]:
                    os.kill(proc.pid, signum)
                    if signum == signal.SIGKILL:
                        proc.wait()
                        _cancel_waiting_appends(conn)
                    return
            time.sleep(0.02)


def _cancel_waiting_appends(conn: psycopg.Connection[Any]) -> None:
    """End the sessions that wait for the append lock (only a killed process's can, here)."""
    waiting = [r[0] for r in conn.execute(
        "select pid from pg_locks where locktype = 'advisory' and objid = %s and not granted "
        "and database = (select oid from pg_database where datname = current_database())",
        (APPEND_LOCK_KEY,)).fetchall()]
    for pid in waiting:
        conn.execute("select pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 60
    while conn.execute("select count(*) from pg_stat_activity where pid = any(%s)",
                       (waiting,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"sessions {waiting} did not end"
        time.sleep(0.02)
