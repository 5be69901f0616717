"""nasdb.schema: event payload types, settings, errors and the database connection."""

from nasdb.schema import events, settings
from nasdb.schema.db import Database, mask_url
from nasdb.schema.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    DatasetError,
    DatasetNotChosen,
    InvalidArchitecture,
    InvalidEvent,
    InvalidRequest,
    LeaseLost,
    NasdbError,
    NotFound,
    QuerySyntaxError,
    SchemaOutOfDate,
    TrainingError,
)

__all__ = [
    "ConcurrencyConflict",
    "Database",
    "DatabaseUnavailable",
    "DatasetError",
    "DatasetNotChosen",
    "InvalidArchitecture",
    "InvalidEvent",
    "InvalidRequest",
    "LeaseLost",
    "NasdbError",
    "NotFound",
    "QuerySyntaxError",
    "SchemaOutOfDate",
    "TrainingError",
    "events",
    "mask_url",
    "settings",
]
