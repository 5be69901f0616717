"""Studies launched from the page keep going: one driver thread per study, shared by a server."""

from __future__ import annotations

import logging
import threading

from nasdb.ingest import EventStore
from nasdb.schema.db import Database
from nasdb.steer import run_study

log = logging.getLogger(__name__)


class StudyDrivers:
    """Drives the studies launched from the web app: `nasdb.steer.run_study` on a thread each,
    proposing the study's models step by step as its strategy asks; workers elsewhere (``nasdb
    worker``) train the jobs it queues. One per server, shared by its sessions.

    `stop` ends every driver at its next look at the log. A study left unfinished stays
    ``running`` in the log and goes on when something drives it again (``nasdb study run ID``):
    drivers keep no state of their own.
    """

    def __init__(self, db: Database, poll_seconds: float = 1.0) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self, study_id: str, store: EventStore | None = None) -> bool:
        """Drive ``study_id`` unless a driver of this server already does; True if started.
        ``store`` appends the driver's events: the launching session's, so the person who
        launched the study is the actor of what its driver proposes."""
        with self._lock:
            running = self._threads.get(study_id)
            if self._stop.is_set() or (running is not None and running.is_alive()):
                return False
            thread = threading.Thread(target=self._drive, args=(study_id, store), daemon=True,
                                      name=f"nasdb-study-{study_id}")
            self._threads[study_id] = thread
            thread.start()
            return True

    def driving(self) -> list[str]:
        """The studies a driver of this server is running now."""
        with self._lock:
            return sorted(s for s, t in self._threads.items() if t.is_alive())

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def _drive(self, study_id: str, store: EventStore | None) -> None:
        from nasdb.ui._ranker import lazy_ranker

        try:
            state = run_study(self.db, study_id, poll_seconds=self.poll_seconds, stop=self._stop,
                              on_progress=lambda message: log.info("%s", message),
                              rank=lazy_ranker(self.db), store=store)
            log.info("study %s: driver ended, the study is %s", study_id, state)
        except Exception:  # a driver must not take the server down; the log has the reason
            log.exception("driving study %s failed", study_id)
