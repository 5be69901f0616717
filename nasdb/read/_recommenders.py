"""The fitted recommenders as the log records them (RecommenderTrained events): the newest of a
kind, or one by id. Recommenders have no view of their own; their events are the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nasdb.schema.db import Database

__all__ = ["RecordedRecommender", "latest_recommender", "recorded_recommender"]


@dataclass(frozen=True)
class RecordedRecommender:
    """A RecommenderTrained payload and when it was recorded."""

    data: dict[str, Any]
    recorded_at: datetime


def latest_recommender(db: Database, kind: str) -> RecordedRecommender | None:
    """The newest recommender of ``kind`` (encoder, similarity, predictor), or None."""
    return _newest(db, "data->>'kind' = %s", kind)


def recorded_recommender(db: Database, recommender_id: str) -> RecordedRecommender | None:
    """The newest RecommenderTrained event of the recommender ``recommender_id``, or None."""
    return _newest(db, "stream_id = %s", f"recommender-{recommender_id}")


def _newest(db: Database, where: str, value: str) -> RecordedRecommender | None:
    with db.connect() as conn:
        row = conn.execute(
            "select data, recorded_at from events where type = 'RecommenderTrained' "
            f"and {where} order by position desc limit 1", (value,)).fetchone()
    return RecordedRecommender(dict(row[0]), row[1]) if row else None
