"""A study's models as its strategy sees them: each model's row, what the strategy said when it
proposed it, and the checkpoint its training left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasdb.schema.db import Database

from ._reads import list_models
from ._rows import ModelRow

__all__ = ["TrialRow", "study_trials"]


@dataclass(frozen=True)
class TrialRow:
    """A model of a study: its row, the proposal's ``proposal`` details (ArchitectureProposed's
    ``proposal``, {} when none) and its latest TrainingCompleted's checkpoint (None before)."""

    model: ModelRow
    proposal: dict[str, Any]
    checkpoint: str | None


def study_trials(db: Database, study_id: str) -> list[TrialRow]:
    """Every model of the study, in id order (``m2`` before ``m10``)."""
    models = list_models(db, study_id=study_id)
    if not models:
        return []
    streams = [f"model-{m.id}" for m in models]
    with db.connect() as conn:
        proposals = dict(conn.execute(
            "select stream_id, data->'proposal' from events where stream_id = any(%s) and "
            "type = 'ArchitectureProposed'", (streams,)).fetchall())
        checkpoints = dict(conn.execute(
            "select distinct on (stream_id) stream_id, data->>'checkpoint' from events "
            "where stream_id = any(%s) and type = 'TrainingCompleted' "
            "order by stream_id, version desc", (streams,)).fetchall())
    return [TrialRow(m, proposals[f"model-{m.id}"] or {}, checkpoints.get(f"model-{m.id}"))
            for m in models if f"model-{m.id}" in proposals]
