"""The event store: append to streams, read a stream, read the whole log in order.

Ordering choice. Every append goes through one SQL function, ``nasdb_append_many`` (one call per
batch, any number of streams), which takes a
transaction-level advisory lock and holds it until commit (the way Message DB and the Python
``eventsourcing`` library do it). Positions come from an identity column allocated under that
lock, so positions are committed in increasing order: a reader that polls ``position >
last_seen`` can never see position n+1 before n is visible, and so never skips an event. A
rolled-back append leaves a gap in the positions that is never filled later. The price is that
appends are serialised, commit included, so concurrent single-event appends cannot share a disk
sync (no group commit); the batched path amortises the lock over many events. The alternative —
no global lock, readers filtering below ``pg_snapshot_xmin`` and ordering by transaction id — was
rejected: it would let concurrent commits share a disk sync, at the cost of a cursor that is no
longer a plain position (benchmarks/ingest.py measures the price of the lock: store-single against
raw INSERT with 1 and 8 writers).

Guarantees (each tested against a real server in tests/ingest/):
- optimistic concurrency: ``expected_version`` None = any, 0 = the stream must not exist,
  n = its current version must be n, else `ConcurrencyConflict`;
- idempotency: an event whose ``event_id`` was already appended is not appended again; the call
  returns the original events (events with an ``idempotency_key`` get a deterministic id);
- validation: every payload is validated against its class (bounds included) before it is
  appended - when its typed payload is built for `NewEvent.of`, on append for a plain dict -
  and unknown types are refused;
- atomicity: one `append_batch` call, however many streams it names, commits all its events or
  none;
- the log is append-only: the database refuses UPDATE, DELETE and TRUNCATE on ``events`` and
  application roles may only write through ``nasdb_append_many``, which checks each payload
  against the catalogue generated from the payload classes (a client that bypasses this module is
  refused too) and records the login role that appended it as ``metadata.db_user``.

`EventStore` keeps one connection per thread; it is safe to share between threads. Each append
commits on its own unless it runs inside `EventStore.transaction`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from nasdb.migrations import ensure_schema
from nasdb.schema import events as catalogue
from nasdb.schema import settings
from nasdb.schema.db import Database
from nasdb.schema.errors import ConcurrencyConflict, DatabaseUnavailable, InvalidEvent

EVENT_NAMESPACE = uuid.UUID("6f0c4b1e-2f7a-4d0e-9a57-1f4a3c9b2d10")
CHANNEL = "nasdb_events"


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``idempotency_key`` makes its id deterministic within its stream.

    An event made by `of` carries the JSON dump of a payload that was validated (bounds included)
    when it was built - payloads are frozen - so the store does not validate it a second time;
    an event built from a plain dict is validated on append.
    """

    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None
    idempotency_key: str | None = None
    _validated: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def of(cls, payload: catalogue.Payload, *, metadata: dict[str, Any] | None = None,
           idempotency_key: str | None = None) -> NewEvent:
        """The event that records ``payload``: producers build the typed payload, never a dict."""
        return cls(payload.TYPE, payload.model_dump(mode="json"), metadata, idempotency_key,
                   _validated=type(payload) is catalogue.PAYLOAD_TYPES.get(payload.TYPE))


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its global ``position`` and per-stream ``version``."""

    position: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    #: the payload version of ``data`` (events read from the store carry data already upcast)
    schema_version: int = 1

    @property
    def payload(self) -> catalogue.Payload:
        """The typed payload, lifted to the current version of its type by the upcasters.

        Raises `InvalidEvent` for an unknown type or a payload its type no longer accepts.
        """
        data = catalogue.upcast(self.type, self.schema_version, self.data)
        return catalogue.payload(self.type, data)


def event_id_for(stream_id: str, idempotency_key: str) -> uuid.UUID:
    """The deterministic id of the event with this key in this stream."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{stream_id}\x1f{idempotency_key}")


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def _event_id_text(stream_id: str, idempotency_key: str) -> str:
    """``str(event_id_for(...))`` without the UUID object (the append path makes one per event)."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{stream_id}\x1f{idempotency_key}".encode()).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def code_version() -> str:
    """The nasdb version, plus the git commit when running from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        base = version("nasdb")
    except PackageNotFoundError:
        base = "0+unknown"
    head = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".git")
    try:
        with open(os.path.join(head, "HEAD")) as f:
            ref = f.read().strip()
        if ref.startswith("ref: "):
            with open(os.path.join(head, ref[5:])) as f:
                ref = f.read().strip()
        return f"{base}+g{ref[:10]}"
    except OSError:
        return base


_STATIC_METADATA: dict[str, Any] = {}


def _dumps(value: Any) -> bytes:
    """JSON for the append path (orjson: the encoding is a large share of an append's cost)."""
    return orjson.dumps(value)


def default_metadata() -> dict[str, Any]:
    """Who, where and with which code: added to every event's metadata unless given."""
    if not _STATIC_METADATA:
        _STATIC_METADATA.update(
            host=socket.gethostname(), code_version=code_version(), pid=os.getpid()
        )
        _STATIC_METADATA["_user"] = getpass.getuser()
    actor = settings.get("actor") or _STATIC_METADATA["_user"]
    return {"actor": actor, **{k: v for k, v in _STATIC_METADATA.items() if k != "_user"}}


def _row_to_event(row: Sequence[Any]) -> RecordedEvent:
    position, event_id, stream_id, version, type_, schema_version, data, metadata, at = row
    return RecordedEvent(
        position=position,
        stream_id=stream_id,
        version=version,
        type=type_,
        data=catalogue.upcast(type_, schema_version, data),
        metadata=metadata,
        recorded_at=at,
        event_id=event_id,
        # `data` is lifted to the current version, so `payload` does not upcast it again
        schema_version=catalogue.current_version(type_),
    )


_COLUMNS = "position, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at"


class EventStore:
    """Append-only event store over PostgreSQL (see the module docstring for its guarantees)."""

    def __init__(self, url: str | None = None, *, db: Database | None = None) -> None:
        self.db = db or Database(url)
        ensure_schema(self.db)
        self._local = threading.local()

    # --- connections -----------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self.db.connect(autocommit=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run this thread's appends inside one transaction: committed when the block ends, rolled
        back when it raises.

        The ordering lock is taken by the first append and held until the block ends, so every
        other writer waits for it: keep the block short. Not reentrant.
        """
        with self._conn().transaction():
            yield

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- writing ---------------------------------------------------------------------------

    def _encode(self, stream_id: str, events: Iterable[NewEvent]) -> list[dict[str, Any]]:
        base = default_metadata()
        encoded = []
        for e in events:
            data = e.data if e._validated else catalogue.validate_payload(e.type, e.data)
            event_id = (
                _event_id_text(stream_id, e.idempotency_key)
                if e.idempotency_key is not None
                else str(uuid.uuid4())
            )
            encoded.append(
                {
                    "event_id": event_id,
                    "type": e.type,
                    "schema_version": catalogue.current_version(e.type),
                    "data": data,
                    "metadata": {**base, **(e.metadata or {})},
                }
            )
        if not encoded:
            raise InvalidEvent("an append needs at least one event")
        return encoded

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent] | NewEvent,
        expected_version: int | None = None,
    ) -> list[RecordedEvent]:
        """Append events to one stream atomically; return them as recorded.

        Raises `ConcurrencyConflict` when ``expected_version`` is not the stream's version,
        `InvalidEvent` for an unknown type or a payload that fails its schema, and
        `DatabaseUnavailable` when the server cannot be reached (nothing is appended then).
        """
        batch = [events] if isinstance(events, NewEvent) else list(events)
        return self.append_batch([(stream_id, batch, expected_version)])

    def append_batch(
        self, items: Sequence[tuple[str, Sequence[NewEvent], int | None]]
    ) -> list[RecordedEvent]:
        """Append to several streams in one statement and transaction: all or nothing.

        Each item is (stream id, events, expected version). A stream may appear once per call.
        """
        streams = [stream for stream, _, _ in items]
        if len(set(streams)) != len(streams):
            raise InvalidEvent("append_batch takes each stream at most once per call")
        encoded: list[dict[str, Any]] = []
        for ordinal, (stream, events, _) in enumerate(items, start=1):
            for event in self._encode(stream, events):
                event["s"] = ordinal
                encoded.append(event)
        expected = [exp for _, _, exp in items]
        return self._run(lambda conn: self._append_on(conn, streams, expected, encoded))

    def _append_on(
        self,
        conn: psycopg.Connection[Any],
        streams: list[str],
        expected: list[int | None],
        payload: list[dict[str, Any]],
    ) -> list[RecordedEvent]:
        try:
            rows = conn.execute(
                "select * from nasdb_append_many(%s, %s, %s)",
                (streams, expected, Jsonb(payload, dumps=_dumps)),
            ).fetchall()
        except psycopg.errors.SerializationFailure as e:
            detail = dict(
                part.split("=", 1) for part in (e.diag.message_detail or "").split() if "=" in part
            )
            raise ConcurrencyConflict(
                detail.get("stream", streams[0]),
                int(detail.get("expected", -1)),
                int(detail.get("actual", -1)),
            ) from e
        if rows and rows[0][5]:  # an idempotent retry: return the events as first recorded
            found = conn.execute(
                f"select {_COLUMNS} from events where event_id = any(%s) order by position",
                ([r[1] for r in rows],),
            ).fetchall()
            return [_row_to_event(r) for r in found]
        return [
            RecordedEvent(
                position=position,
                stream_id=stream_id,
                version=version,
                type=event["type"],
                data=event["data"],
                metadata={**event["metadata"], "db_user": conn.info.user},
                recorded_at=recorded_at,
                event_id=event_id,
                schema_version=event["schema_version"],
            )
            for (position, event_id, stream_id, version, recorded_at, _), event in zip(
                rows, payload, strict=True
            )
        ]

    def _run(self, work: Any) -> Any:
        try:
            return work(self._conn())
        except psycopg.OperationalError as e:
            self.close()
            raise DatabaseUnavailable(
                f"lost the database at {self.db.display_url} while appending: "
                f"{str(e).strip().splitlines()[-1] if str(e).strip() else e}; nothing was appended"
            ) from e

    # --- reading ---------------------------------------------------------------------------

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it does not exist)."""
        row = self._conn().execute(
            "select coalesce(max(version), 0) from events where stream_id = %s", (stream_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """The stream's events in version order."""
        rows = self._conn().execute(
            f"select {_COLUMNS} from events where stream_id = %s and version > %s order by version",
            (stream_id, after_version),
        ).fetchall()
        return [_row_to_event(r) for r in rows]

    def read_all(
        self,
        after: int = 0,
        limit: int | None = None,
        *,
        types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> list[RecordedEvent]:
        """Events with position > ``after`` in position order (optionally filtered)."""
        where = ["position > %s"]
        args: list[Any] = [after]
        if types:
            where.append("type = any(%s)")
            args.append(list(types))
        if stream_prefix:
            where.append("stream_id like %s")
            args.append(stream_prefix.replace("%", r"\%").replace("_", r"\_") + "%")
        sql = f"select {_COLUMNS} from events where {' and '.join(where)} order by position"
        if limit is not None:
            sql += " limit %s"
            args.append(limit)
        rows = self._conn().execute(sql, args).fetchall()
        return [_row_to_event(r) for r in rows]

    def last_position(self) -> int:
        row = self._conn().execute("select coalesce(max(position), 0) from events").fetchone()
        return int(row[0]) if row else 0


def dumps(event: RecordedEvent) -> str:
    """One event as a JSON line."""
    return json.dumps(
        {
            "position": event.position,
            "stream_id": event.stream_id,
            "version": event.version,
            "type": event.type,
            "data": event.data,
            "metadata": event.metadata,
            "recorded_at": event.recorded_at.isoformat(),
        },
        default=str,
    )
