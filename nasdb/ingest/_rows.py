"""Loading and writing the read-model rows of one batch, set-based.

Loading: one ``select ... where key = any(%s)`` per table for the keys a batch refers to.
Writing: rows the batch created are COPYed straight into their table (nothing can conflict with
them: they did not exist when the batch was loaded, under the projector's lock); rows that existed
are COPYed into a session-local staging table and merged with one statement per table
(``with s as (delete from stage returning *) insert ... on conflict do update`` or ``update ...
from s``). So a batch costs a fixed number of statements per table, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from nasdb.ingest._projections import Batch, Row

Cursor = psycopg.Cursor[Any]

MODEL_COLUMNS = (
    "id", "study_id", "dataset_id", "origin", "parent_id", "changes", "architecture",
    "layer_types", "glyph", "depth", "params", "flops", "optimizer", "lr", "weight_decay",
    "batch_size", "epochs_planned", "hyperparameters", "status", "priority", "epochs_trained",
    "best_val_acc", "last_val_acc", "last_val_loss", "last_train_loss", "test_acc", "test_loss",
    "latency_ms", "train_seconds", "pinned", "tags", "notes_count", "predicted_acc", "error",
    "created_at", "finished_at",
)
# What events change after a model is proposed (plus the ids handlers read).
MODEL_STATE = (
    "id", "study_id", "dataset_id", "epochs_planned", "status", "priority", "epochs_trained",
    "best_val_acc", "last_val_acc", "last_val_loss", "last_train_loss", "test_acc", "test_loss",
    "latency_ms", "train_seconds", "pinned", "tags", "notes_count", "predicted_acc", "error",
    "finished_at",
)
JOB_COLUMNS = (
    "model_id", "study_id", "priority", "state", "worker", "attempt", "lease_expires_at",
    "heartbeat_at", "queued_at", "claimed_at", "finished_at", "cancel_requested",
)
WORKER_COLUMNS = (
    "worker", "host", "pid", "device", "state", "current_model", "jobs_done", "started_at",
    "last_seen", "lease_seconds",
)
STUDY_COLUMNS = (
    "id", "dataset_id", "strategy", "settings", "space", "objectives", "budget", "state",
    "previous_study_id", "next_study_id", "created_at", "updated_at",
)
STUDY_JSON = ("settings", "space", "budget")
DATASET_COLUMNS = (
    "id", "name", "kind", "source", "fingerprint", "channels", "height", "width", "classes",
    "num_classes", "train_size", "val_size", "test_size", "val_seed", "registered_at",
)
EPOCH_COLUMNS = (
    "model_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
    "class_acc", "recorded_at",
)
CLASS_COLUMNS = (
    "model_id", "class_index", "dataset_id", "class_name", "accuracy", "precision", "recall",
    "specificity", "support",
)
PREDICTION_COLUMNS = ("model_id", "labels", "digest")
NOTE_COLUMNS = ("model_id", "position", "text", "actor", "recorded_at")
FAILURE_COLUMNS = ("position", "stream_id", "type", "handler", "message", "recorded_at")

# staging table -> (table it merges into, its columns, conflict key or None for an update by id)
_STAGES: dict[str, tuple[str, Sequence[str], Sequence[str] | None]] = {
    "stage_models": ("rm_models", MODEL_STATE, None),
    "stage_jobs": ("rm_jobs", JOB_COLUMNS, ("model_id",)),
    "stage_workers": ("rm_workers", WORKER_COLUMNS, ("worker",)),
    "stage_studies": ("rm_studies", STUDY_COLUMNS, ("id",)),
    "stage_datasets": ("rm_datasets", DATASET_COLUMNS, ("id",)),
    "stage_epochs": ("rm_epochs", EPOCH_COLUMNS, ("model_id", "epoch")),
    "stage_class_metrics": ("rm_class_metrics", CLASS_COLUMNS, ("model_id", "class_index")),
    "stage_predictions": ("rm_predictions", PREDICTION_COLUMNS, ("model_id",)),
}


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Create this session's staging tables (call once per connection, outside a batch)."""
    with conn.transaction():
        for stage, (table, columns, _) in _STAGES.items():
            conn.execute(
                f"create temp table if not exists {stage} as "
                f"select {', '.join(columns)} from {table} with no data"
            )


def _merge_sql(stage: str) -> str:
    table, columns, conflict = _STAGES[stage]
    cols = ", ".join(columns)
    if conflict is None:
        sets = ", ".join(f"{c} = s.{c}" for c in columns if c != "id")
        return (f"with s as (delete from {stage} returning {cols}) "
                f"update {table} t set {sets} from s where t.id = s.id")
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
    return (f"with s as (delete from {stage} returning {cols}) "
            f"insert into {table} ({cols}) select {cols} from s "
            f"on conflict ({', '.join(conflict)}) do update set {sets}")


_MERGE = {stage: _merge_sql(stage) for stage in _STAGES}


def _copy(cur: Cursor, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
    n = 0
    with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
            n += 1
    return n


def _stage(cur: Cursor, stage: str, rows: Sequence[Row]) -> None:
    if rows:
        _copy(cur, stage, _STAGES[stage][1], rows)
        cur.execute(_MERGE[stage])


def _fetch(cur: Cursor, table: str, columns: Sequence[str], key: str,
           values: Iterable[str]) -> list[Row]:
    wanted = sorted(set(values))
    if not wanted:
        return []
    cur.execute(
        f"select {', '.join(columns)} from {table} where {key} = any(%s)", (wanted,)
    )
    return [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]


def load(cur: Cursor, models: Iterable[str], studies: Iterable[str],
         workers: Iterable[str]) -> Batch:
    """A `Batch` holding every existing row these keys name (and the workers of their jobs)."""
    batch = Batch()
    model_ids = sorted(set(models))
    batch.models = {r["id"]: r for r in _fetch(cur, "rm_models", MODEL_STATE, "id", model_ids)}
    batch.jobs = {r["model_id"]: r
                  for r in _fetch(cur, "rm_jobs", JOB_COLUMNS, "model_id", model_ids)}
    names = set(workers) | {j["worker"] for j in batch.jobs.values() if j["worker"]}
    batch.workers = {r["worker"]: r
                     for r in _fetch(cur, "rm_workers", WORKER_COLUMNS, "worker", names)}
    batch.studies = {r["id"]: r for r in _fetch(cur, "rm_studies", STUDY_COLUMNS, "id", studies)}
    return batch


def _study_row(row: Row) -> Row:
    return {**row, **{c: Jsonb(row[c]) for c in STUDY_JSON}}


def write(cur: Cursor, batch: Batch) -> None:
    """Write what the handlers changed: a few statements per table, whatever the batch size."""
    new = batch.new_models
    _stage(cur, "stage_datasets", list(batch.datasets.values()))
    _stage(cur, "stage_studies", [_study_row(batch.studies[s]) for s in sorted(batch.dirty_studies)])
    if new:
        _copy(cur, "rm_models", MODEL_COLUMNS, (batch.models[m] for m in sorted(new)))
    _stage(cur, "stage_models",
           [batch.models[m] for m in sorted(batch.dirty_models - new)])
    _stage(cur, "stage_jobs", [batch.jobs[j] for j in sorted(batch.dirty_jobs)])
    _stage(cur, "stage_workers", [batch.workers[w] for w in sorted(batch.dirty_workers)])
    resets = sorted(batch.epoch_resets - new)
    if resets:
        cur.execute("delete from rm_epochs where model_id = any(%s)", (resets,))
    _split(cur, "rm_epochs", "stage_epochs", EPOCH_COLUMNS, list(batch.epochs.values()), new)
    metrics = [r for rows in batch.class_metrics.values() for r in rows]
    _split(cur, "rm_class_metrics", "stage_class_metrics", CLASS_COLUMNS, metrics, new)
    _split(cur, "rm_predictions", "stage_predictions", PREDICTION_COLUMNS,
           list(batch.predictions.values()), new)
    if batch.notes:
        _copy(cur, "rm_notes", NOTE_COLUMNS, batch.notes)


def _split(cur: Cursor, table: str, stage: str, columns: Sequence[str], rows: list[Row],
           new: set[str]) -> None:
    """Rows of models created in this batch go straight in; the others are merged."""
    fresh = [r for r in rows if r["model_id"] in new]
    if fresh:
        _copy(cur, table, columns, fresh)
    _stage(cur, stage, [r for r in rows if r["model_id"] not in new])


def write_failures(cur: Cursor, failures: Sequence[Row]) -> None:
    if failures:
        _copy(cur, "rm_projection_failures", FAILURE_COLUMNS, failures)
