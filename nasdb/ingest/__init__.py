"""nasdb.ingest: the event store, the projections that build the read models, and replay."""

from nasdb.ingest._artifacts import get_artifact, put_artifact
from nasdb.ingest._ids import new_model_id, new_model_ids, new_study_id
from nasdb.ingest._projections import HANDLERS, READ_MODEL_TABLES, Projector
from nasdb.ingest._store import (
    CHANNEL,
    EventStore,
    NewEvent,
    RecordedEvent,
    default_metadata,
    dumps,
    event_id_for,
)

__all__ = [
    "CHANNEL",
    "HANDLERS",
    "READ_MODEL_TABLES",
    "EventStore",
    "NewEvent",
    "Projector",
    "RecordedEvent",
    "default_metadata",
    "dumps",
    "event_id_for",
    "get_artifact",
    "new_model_id",
    "new_model_ids",
    "new_study_id",
    "put_artifact",
]
