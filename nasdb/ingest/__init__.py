"""nasdb.ingest: the event store, the projections that build the read models, and replay."""

from nasdb.ingest._artifacts import get_artifact, put_artifact
from nasdb.ingest._ids import new_model_id, new_model_ids, new_study_id
from nasdb.ingest._projections import HANDLERS, READ_MODEL_TABLES
from nasdb.ingest._projector import PROJECTED_CHANNEL, Projector
from nasdb.ingest._service import (
    ProjectionBehind,
    ProjectorService,
    ensure_projector,
    projection_status,
    projector_alive,
    wait_projected,
)
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
    "PROJECTED_CHANNEL",
    "READ_MODEL_TABLES",
    "EventStore",
    "NewEvent",
    "ProjectionBehind",
    "Projector",
    "ProjectorService",
    "RecordedEvent",
    "default_metadata",
    "dumps",
    "ensure_projector",
    "event_id_for",
    "get_artifact",
    "new_model_id",
    "new_model_ids",
    "new_study_id",
    "projection_status",
    "projector_alive",
    "put_artifact",
    "wait_projected",
]
