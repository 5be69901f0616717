"""The projector service: keeps the read models following the log, so reads never write.

`ProjectorService` LISTENs on the store's channel (``nasdb_events``, notified by every append) and
catches the projector up on each notification, and at least every ``poll_seconds``. It runs

- as a thread inside every worker and the web app (`ProjectorService.start`);
- as a background process for everything else (`ensure_projector`, run by each CLI command and by
  `wait_projected` when no projector is alive for the database): ``python -m
  nasdb.ingest``, which exits after ``idle_exit`` seconds without events or when its
  database goes away (a dropped test database). On the embedded server it holds a handle like any
  nasdb process, so the server and its projector stay up together until it idles out.

Any number may run at once: the projector's lock makes them take turns, exactly once per event.
A running service holds a shared advisory lock (`ALIVE_LOCK_KEY`) for as long as it lives, which
is how `projector_alive` tells that someone is projecting.

Commands that must read their own writes call `wait_projected`: it waits (LISTEN on
``nasdb_projected``) until the checkpoint reaches the log's last position as of the call.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg

from nasdb.ingest._projector import NAME, PROJECTED_CHANNEL, Projector
from nasdb.ingest._store import CHANNEL
from nasdb.schema import settings
from nasdb.schema.db import Database
from nasdb.schema.errors import DatabaseUnavailable, NasdbError

log = logging.getLogger(__name__)

ALIVE_LOCK_KEY = 5_310_203
DEFAULT_WAIT_SECONDS = 60.0
DAEMON_IDLE_EXIT_SECONDS = 600.0
_ALIVE_SQL = f"""
    select count(*) from pg_locks
     where locktype = 'advisory' and classid = 0 and objid = {ALIVE_LOCK_KEY} and objsubid = 1
       and granted and database = (select oid from pg_database where datname = current_database())
"""
_STATUS_SQL = """
    select coalesce((select position from projection_checkpoints where name = %s), 0),
           (select coalesce(max(position), 0) from events)"""


class ProjectionBehind(NasdbError):
    """The read models did not reach the wanted position in time."""

    exit_code = 1


def _positions(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(checkpoint, the log's last position)."""
    row = conn.execute(_STATUS_SQL, (NAME,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def projector_alive(db: Database) -> int:
    """How many projector services are running against this database."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(_ALIVE_SQL).fetchone()
    return int(row[0]) if row else 0


def projection_status(db: Database) -> dict[str, int]:
    """The checkpoint, the log's last position, the lag, failures and projectors alive."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(_STATUS_SQL, (NAME,)).fetchone()
        failures = conn.execute("select count(*) from projection_failures").fetchone()
        alive = conn.execute(_ALIVE_SQL).fetchone()
    projected, last = (int(row[0]), int(row[1])) if row else (0, 0)
    return {"projected_to": projected, "last_position": last, "lag": last - projected,
            "failures": int(failures[0]) if failures else 0,
            "projectors": int(alive[0]) if alive else 0}


def ensure_projector(db: Database) -> bool:
    """Start a background projector process for ``db`` unless one is alive; True if started."""
    if projector_alive(db):
        return False
    home = settings.home()
    home.mkdir(parents=True, exist_ok=True)
    # The URL goes in the environment, not argv (ps would show a password). For the embedded
    # server the process joins it like any nasdb command, so the server stays up while it runs.
    env = dict(os.environ)
    if db.embedded:
        env.pop("NASDB_DATABASE_URL", None)
    else:
        env["NASDB_DATABASE_URL"] = db.url
    with open(home / "projector.log", "ab") as err:
        subprocess.Popen(
            [sys.executable, "-m", "nasdb.ingest",
             "--idle-exit", str(DAEMON_IDLE_EXIT_SECONDS)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True, close_fds=True,
        )
    return True


def wait_projected(db: Database, position: int | None = None, *,
                   timeout: float = DEFAULT_WAIT_SECONDS) -> int:
    """Block until the read models include ``position`` (default: the log's last position now).

    Starts a projector process when none is alive. Returns the checkpoint reached; raises
    `ProjectionBehind` after ``timeout`` seconds. Writes nothing.
    """
    deadline = time.monotonic() + timeout
    with db.connect(autocommit=True) as conn:
        conn.execute(f"listen {PROJECTED_CHANNEL}")
        projected, last = _positions(conn)
        target = last if position is None else position
        checked_alive = 0.0
        while projected < target:
            now = time.monotonic()
            if now >= deadline:
                raise ProjectionBehind(
                    f"the read models reached position {projected} of {target} in {timeout:.0f} s; "
                    "is a projector running? `nasdb status` shows the lag and the projectors"
                )
            if now - checked_alive > 5.0:
                ensure_projector(db)
                checked_alive = now
            for _ in conn.notifies(timeout=min(0.5, deadline - now), stop_after=1):
                pass
            projected, _ = _positions(conn)
    return projected


class ProjectorService:
    """Follows the log until stopped (module docstring). One thread or process per instance."""

    def __init__(self, db: Database, *, poll_seconds: float | None = None,
                 idle_exit: float | None = None, give_up_after: float | None = None,
                 batch_size: int = 5000) -> None:
        self.db = db
        self.projector = Projector(db, batch_size=batch_size)
        self.poll_seconds = float(poll_seconds or settings.number("poll_seconds"))
        self.idle_exit = idle_exit
        self.give_up_after = give_up_after
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.projected = 0

    def start(self) -> ProjectorService:
        """Run in a daemon thread (for workers and the web app); `stop` ends it."""
        self.thread = threading.Thread(target=self.run, name="nasdb-projector", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        """Project until stopped; reconnect when the database goes away (or give up after
        ``give_up_after`` seconds of not reaching it)."""
        lost_since: float | None = None
        while not self.stopping.is_set():
            try:
                self._follow()
                return
            except (DatabaseUnavailable, psycopg.OperationalError) as e:
                now = time.monotonic()
                lost_since = lost_since or now
                if self.give_up_after is not None and now - lost_since > self.give_up_after:
                    log.warning("projector: giving up on %s: %s", self.db.display_url, e)
                    return
                log.warning("projector: %s; retrying", e)
                self.stopping.wait(1.0)

    def _follow(self) -> None:
        with self.db.connect(autocommit=True) as listener, self.projector.connect() as conn:
            listener.execute("select pg_advisory_lock_shared(%s)", (ALIVE_LOCK_KEY,))
            listener.execute(f"listen {CHANNEL}")
            idle_since = time.monotonic()
            while not self.stopping.is_set():
                n = self.projector.catch_up(conn=conn)
                self.projected += n
                now = time.monotonic()
                if n:
                    idle_since = now
                elif self.idle_exit is not None and now - idle_since > self.idle_exit:
                    return
                self._wait(listener)

    def _wait(self, listener: psycopg.Connection[Any]) -> None:
        """Until an append is notified, the poll interval passes, or `stop` is called."""
        waited = 0.0
        while waited < self.poll_seconds and not self.stopping.is_set():
            step = min(0.5, self.poll_seconds - waited)
            if any(True for _ in listener.notifies(timeout=step, stop_after=1)):
                return
            waited += step


def main(argv: list[str] | None = None) -> int:
    """The background projector process (`ensure_projector`); also ``nasdb project --follow``."""
    parser = argparse.ArgumentParser(prog="python -m nasdb.ingest")
    parser.add_argument("--idle-exit", type=float, default=None,
                        help="exit after this many seconds without new events")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    try:
        db = Database()
    except NasdbError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    ProjectorService(db, idle_exit=args.idle_exit, give_up_after=10.0).run()
    return 0
