"""Riding out a database restart: retry while the server is away, for a bounded window.

`retrying` runs an action and, while the database is unreachable (`DatabaseUnavailable`, or a
connection that broke mid-statement: ``psycopg.OperationalError``, bare or wrapped by SQLAlchemy
as the read side's sessions raise it), tries again with exponential
backoff (0.25 s doubling to 5 s) until ``NASDB_RECONNECT_SECONDS`` have passed, then raises
`DatabaseUnavailable`. It says what happened once when the database goes away and once when it is
back, so a log never shows a misleading failure. The action must be safe to repeat: a read, or an
append whose events carry fixed ids (idempotency keys), which the store records once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from nasdb.schema import settings
from nasdb.schema.errors import DatabaseUnavailable

T = TypeVar("T")

_FIRST_DELAY = 0.25
_MAX_DELAY = 5.0


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database is away (SQLAlchemy keeps psycopg's error in ``orig``)."""
    if isinstance(error, DatabaseUnavailable | psycopg.OperationalError):
        return True
    return isinstance(getattr(error, "orig", None), psycopg.OperationalError)


def retrying(action: Callable[[], T], *, what: str, log: Callable[[str], None],
             window: float | None = None, sleep: Callable[[float], object] = time.sleep) -> T:
    """``action()``, retried while the database is unreachable for up to ``window`` seconds.

    ``what`` names the work in the messages ("claiming a job"). Raises `DatabaseUnavailable` when
    the window passes; any other error propagates at once. Thread-safe (no shared state).
    """
    limit = window if window is not None else settings.number("reconnect_seconds")
    lost_at: float | None = None
    delay = _FIRST_DELAY
    while True:
        try:
            result = action()
        except Exception as e:
            if not _unreachable(e):
                raise
            now = time.monotonic()
            if lost_at is None:
                lost_at = now
                log(f"lost the database while {what} ({_reason(e)}); reconnecting for up to "
                    f"{limit:g} s (NASDB_RECONNECT_SECONDS)")
            elif now - lost_at >= limit:
                raise DatabaseUnavailable(
                    f"the database was unreachable for {now - lost_at:.0f} s while {what} "
                    f"({_reason(e)}); gave up after NASDB_RECONNECT_SECONDS={limit:g}"
                ) from e
            sleep(min(delay, max(0.0, limit - (now - lost_at))))
            delay = min(delay * 2, _MAX_DELAY)
            continue
        if lost_at is not None:
            log(f"the database is back after {time.monotonic() - lost_at:.1f} s; {what} goes on")
        return result
