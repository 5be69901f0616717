"""The projector: applies the log to the read models, exactly once, never stopped by one event.

`Projector.catch_up` applies the events after its checkpoint in batches. Each batch is one
transaction that takes the projector lock (a transaction-level advisory lock, so any number of
projectors may run: they take turns and the later ones find less to do), reads the checkpoint,
loads the rows the batch's events refer to, folds the events into them in log order (the
handlers in ``_projections.py``), writes the result set-based (``_rows.py``), records the events
it could not apply and advances the checkpoint - all or nothing (eventsourcing's tracking
records). Killing it at any point and restarting gives the same tables.

Poison events. An event whose payload does not fit its type (an old log, an event appended by
hand) or whose handler cannot apply it is recorded in ``projection_failures`` (position, type,
stream, handler, message) and skipped; the rest of the batch is applied. Should the database
still refuse a batch's writes, the batch is split in halves inside savepoints until the one
event at fault is isolated, recorded and skipped. A failure depends on the event alone, so a
replay records the same failures and builds the same tables.

`replay` rebuilds every read model from position 0 in one transaction, so readers see the old
tables until the new ones are complete. After each batch the projector NOTIFYs channel
``nasdb_projected`` with its new checkpoint (delivered on commit).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads

from nasdb.ingest import _rows
from nasdb.ingest._projections import (
    HANDLERS,
    READ_MODEL_TABLES,
    Handler,
    ProjectionFailure,
    collect_keys,
)
from nasdb.ingest._store import RecordedEvent
from nasdb.schema import events as ev
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidEvent

NAME = "read_models"
PROJECTOR_LOCK_KEY = 5_310_202
IDLE_IN_BATCH_SECONDS = 30
"""How long a projector's session may wait for its own process inside a batch (folding a batch
in memory takes well under a second); then the server ends the session and releases its lock."""
PROJECTED_CHANNEL = "nasdb_projected"

# The database refused a write because of the data (not because it went away).
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError,
                psycopg.InternalError, psycopg.NotSupportedError)

_FETCH = """
    select position, event_id, stream_id, version, type, schema_version, data,
           case when type = 'Noted' then metadata end, recorded_at
      from events where position > %s order by position limit %s"""

Item = tuple[RecordedEvent, ev.Payload, Handler]


def _failure(e: RecordedEvent, handler: str, message: str) -> dict[str, Any]:
    return {"position": e.position, "stream_id": e.stream_id, "type": e.type,
            "handler": handler, "message": message[:2000], "recorded_at": e.recorded_at}


def _parse(rows: Sequence[Sequence[Any]], failures: list[dict[str, Any]]) -> list[Item]:
    """Typed payloads of the batch's events; those that do not fit are recorded as failures."""
    items: list[Item] = []
    for position, event_id, stream_id, version, type_, schema_version, data, meta, at in rows:
        e = RecordedEvent(position=position, stream_id=stream_id, version=version, type=type_,
                          data=data, metadata=meta or {}, recorded_at=at, event_id=event_id,
                          schema_version=schema_version)
        handler = HANDLERS.get(type_)
        if handler is None:
            failures.append(_failure(e, "-", f"no handler for event type {type_!r}"))
            continue
        try:
            payload = e.payload
        except InvalidEvent as error:
            failures.append(_failure(e, "payload", str(error)))
            continue
        items.append((e, payload, handler))
    return items


def _fold(cur: psycopg.Cursor[Any], items: Sequence[Item],
          failures: list[dict[str, Any]]) -> None:
    models: set[str] = set()
    studies: set[str] = set()
    workers: set[str] = set()
    for e, p, _ in items:
        collect_keys(e, p, models, studies, workers)
    batch = _rows.load(cur, models, studies, workers)
    for e, p, handler in items:
        try:
            handler(batch, e, p)
        except ProjectionFailure as error:
            failures.append(_failure(e, handler.__name__, str(error)))
        except Exception as error:  # a handler's bug must not stop the projector either
            failures.append(_failure(e, handler.__name__, f"{type(error).__name__}: {error}"))
    _rows.write(cur, batch)


def _apply(conn: psycopg.Connection[Any], items: Sequence[Item],
           failures: list[dict[str, Any]]) -> None:
    """Apply ``items`` in a savepoint; on a refused write, bisect down to the event at fault."""
    if not items:
        return
    found: list[dict[str, Any]] = []
    try:
        with conn.transaction(), conn.cursor() as cur:
            _fold(cur, items, found)
    except _DATA_ERRORS as error:
        if len(items) == 1:
            message = (error.diag.message_primary or str(error)).strip()
            failures.append(_failure(items[0][0], "write", f"{type(error).__name__}: {message}"))
            return
        half = len(items) // 2
        _apply(conn, items[:half], failures)
        _apply(conn, items[half:], failures)
        return
    failures.extend(found)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch: a batch allocates tens of thousands of
    short-lived objects (rows, payloads), and the collections they trigger, each walking the
    growing heap, cost three times the work itself (measured). Nothing in a batch makes cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Projector:
    """Applies the log to the read models, exactly once per event (see the module docstring).

    Not thread-safe: one instance per thread (several instances may run at once).
    """

    def __init__(self, db: Database, *, batch_size: int = 5000) -> None:
        self.db = db
        self.batch_size = batch_size

    def checkpoint(self) -> int:
        with self.db.connect() as conn:
            row = conn.execute(
                "select position from projection_checkpoints where name = %s", (NAME,)
            ).fetchone()
        return int(row[0]) if row else 0

    def connect(self) -> psycopg.Connection[Any]:
        """A connection ready to project on (JSON decoded by orjson). A session that sits idle
        inside a batch for `IDLE_IN_BATCH_SECONDS` (its process frozen, or stopped with SIGSTOP)
        is ended by the server, so the projector lock it holds never stalls the other projectors;
        its batch rolls back and is applied again.

        Every statement is planned for its own parameters (``plan_cache_mode``): a replay
        truncates the read models, and a generic plan cached while they were empty (a sequential
        scan) made loading a batch's rows ten times slower once they had grown (measured)."""
        conn = self.db.connect(
            options=f"-c idle_in_transaction_session_timeout={IDLE_IN_BATCH_SECONDS * 1000} "
                    "-c plan_cache_mode=force_custom_plan")
        set_json_loads(orjson.loads, conn)
        return conn

    def catch_up(
        self, *, max_batches: int | None = None, on_batch: Callable[[int], None] | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> int:
        """Apply every event after the checkpoint; return how many were applied."""
        if conn is None:
            with self.connect() as own:
                return self.catch_up(max_batches=max_batches, on_batch=on_batch, conn=own)
        applied = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            with conn.transaction():
                n = self._apply_batch(conn)
            if n == 0:
                break
            applied += n
            batches += 1
            if on_batch is not None:
                on_batch(applied)
        return applied

    def _apply_batch(self, conn: psycopg.Connection[Any]) -> int:
        conn.execute("select pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
        row = conn.execute(
            "insert into projection_checkpoints (name, position) values (%s, 0) "
            "on conflict (name) do update set position = projection_checkpoints.position "
            "returning position",
            (NAME,),
        ).fetchone()
        after = int(row[0]) if row else 0
        with _no_cyclic_gc():
            rows = conn.execute(_FETCH, (after, self.batch_size)).fetchall()
            if not rows:
                return 0
            failures: list[dict[str, Any]] = []
            items = _parse(rows, failures)
            _apply(conn, items, failures)
        last = int(rows[-1][0])
        with conn.cursor() as cur:
            _rows.write_failures(cur, sorted(failures, key=lambda f: int(f["position"])))
            cur.execute("update projection_checkpoints set position = %s where name = %s",
                        (last, NAME))
            cur.execute("select pg_notify(%s, %s)", (PROJECTED_CHANNEL, str(last)))
        return len(rows)

    def replay(self, *, on_batch: Callable[[int], None] | None = None,
               conn: psycopg.Connection[Any] | None = None) -> int:
        """Drop every read model and rebuild it from the whole log, in one transaction."""
        if conn is None:
            with self.connect() as own:
                return self.replay(on_batch=on_batch, conn=own)
        applied = 0
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
            conn.execute(f"truncate {', '.join(READ_MODEL_TABLES)}")
            conn.execute(
                "insert into projection_checkpoints (name, position) values (%s, 0) "
                "on conflict (name) do update set position = 0",
                (NAME,),
            )
            while True:
                n = self._apply_batch(conn)
                if n == 0:
                    break
                applied += n
                if on_batch is not None:
                    on_batch(applied)
        return applied
