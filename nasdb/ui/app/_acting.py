"""The event store as one web session sees it: every append carries the session's actor, and a
viewer may append nothing but its own session records.

The web app's only write path is `EventStore.append_batch` (``append`` goes through it), so
wrapping it here makes the signed-in user the actor of every event the app appends — steering
commands in `nasdb.steer` included — without each caller passing metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nasdb.ingest import EventStore, NewEvent, RecordedEvent
from nasdb.schema.errors import InvalidRequest

_VIEWER_MAY_APPEND = frozenset({"UiAction"})


class ActingStore(EventStore):
    """An `EventStore` sharing ``base``'s connections, appending as ``actor`` of ``session``."""

    def __init__(self, base: EventStore, *, actor: str, session: str, may_steer: bool) -> None:
        self.__dict__.update(base.__dict__)  # same database handle and per-thread connections
        self.actor = actor
        self.session = session
        self.may_steer = may_steer

    def append_batch(
        self, items: Sequence[tuple[str, Sequence[NewEvent], int | None]]
    ) -> list[RecordedEvent]:
        """As `EventStore.append_batch`, with the session's actor in every event's metadata.

        Raises `InvalidRequest` when a viewer tries to steer (nothing is appended then).
        """
        if not self.may_steer:
            refused = sorted({e.type for _, events, _ in items for e in events}
                             - _VIEWER_MAY_APPEND)
            if refused:
                raise InvalidRequest(
                    f"{self.actor} is signed in as a viewer and may not steer ({refused[0]}); "
                    "ask an operator to add you to NASDB_UI_STEERERS"
                )
        stamp: dict[str, Any] = {"actor": self.actor, "session": self.session, "source": "web"}
        stamped = [(stream, [replace(e, metadata={**(e.metadata or {}), **stamp})
                             for e in events], expected)
                   for stream, events, expected in items]
        return super().append_batch(stamped)
