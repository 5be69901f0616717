"""What the database holds, in numbers: row counts, models by status, recent projection failures
(what ``nasdb status`` shows)."""

from __future__ import annotations

from dataclasses import dataclass

from nasdb.schema.db import Database

__all__ = ["ProjectionFailureRow", "done_models_by_dataset", "holdings", "models_by_status",
           "recent_projection_failures"]

HOLDINGS = ("events", "datasets", "studies", "models", "jobs")
"""The log and the views `holdings` counts."""


@dataclass(frozen=True)
class ProjectionFailureRow:
    """An event the projector could not apply (the `projection_failures` view)."""

    position: int
    type: str
    stream_id: str
    handler: str
    message: str


def holdings(db: Database) -> dict[str, int]:
    """The number of rows of the event log and of each main view (`HOLDINGS`), in that order."""
    with db.connect() as conn:
        out = {}
        for name in HOLDINGS:
            row = conn.execute(f"select count(*) from {name}").fetchone()
            out[name] = int(row[0]) if row else 0
    return out


def models_by_status(db: Database, dataset_id: str | None = None) -> dict[str, int]:
    """How many models (of ``dataset_id``, or all) have each status (statuses no model has are
    left out), by status."""
    with db.connect() as conn:
        rows = conn.execute(
            "select status, count(*) from models where (%s::text is null or dataset_id = %s) "
            "group by status order by status", (dataset_id, dataset_id)).fetchall()
    return {str(status): int(n) for status, n in rows}


def done_models_by_dataset(db: Database) -> dict[str, int]:
    """Every registered dataset with its number of done models (0 included), oldest registered
    first."""
    with db.connect() as conn:
        rows = conn.execute(
            "select d.id, count(m.id) from datasets d left join models m "
            "on m.dataset_id = d.id and m.status = 'done' "
            "group by d.id, d.registered_at order by d.registered_at, d.id").fetchall()
    return {str(dataset): int(n) for dataset, n in rows}


def recent_projection_failures(db: Database, limit: int = 5) -> list[ProjectionFailureRow]:
    """The last ``limit`` events the projector could not apply, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(
            "select position, type, stream_id, handler, message from projection_failures "
            "order by position desc limit %s", (limit,)).fetchall()
    return [ProjectionFailureRow(*r) for r in reversed(rows)]
