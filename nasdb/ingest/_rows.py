"""Loading and writing the read-model rows of one batch, set-based.

Loading: one ``select ... where key = any(%s)`` per table for the keys a batch refers to.
Writing: one statement per table and kind of change. The batch's rows for a table travel as one
JSON document (serialised by orjson, in C) that the server turns back into rows with
``json_to_recordset``; rows the batch created are inserted, rows that existed are updated (or
upserted). Sending rows this way costs the projector about a microsecond a row, where adapting
them value by value (COPY rows, or arrays for ``unnest``) cost several.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Json

from nasdb.ingest._projections import CLASS_COLUMNS, EPOCH_COLUMNS, Batch, Row

Cursor = psycopg.Cursor[Any]

# (column, type) of each table, in the order the handlers' rows use.
MODEL_TYPES = (
    ("id", "text"), ("study_id", "text"), ("dataset_id", "text"), ("origin", "text"),
    ("parent_id", "text"), ("changes", "text[]"), ("architecture", "jsonb"),
    ("layer_types", "text[]"), ("glyph", "text"), ("depth", "integer"), ("params", "bigint"),
    ("flops", "bigint"), ("optimizer", "text"), ("lr", "float8"), ("weight_decay", "float8"),
    ("batch_size", "integer"), ("epochs_planned", "integer"), ("hyperparameters", "jsonb"),
    ("status", "text"), ("priority", "integer"), ("epochs_trained", "integer"),
    ("best_val_acc", "float8"), ("last_val_acc", "float8"), ("last_val_loss", "float8"),
    ("last_train_loss", "float8"), ("test_acc", "float8"), ("test_loss", "float8"),
    ("latency_ms", "float8"), ("train_seconds", "float8"), ("pinned", "boolean"),
    ("tags", "text[]"), ("notes_count", "integer"), ("predicted_acc", "float8"),
    ("error", "text"), ("created_at", "timestamptz"), ("finished_at", "timestamptz"),
)
# What events change after a model is proposed (plus the ids handlers read).
MODEL_STATE = (
    "id", "study_id", "dataset_id", "epochs_planned", "status", "priority", "epochs_trained",
    "best_val_acc", "last_val_acc", "last_val_loss", "last_train_loss", "test_acc", "test_loss",
    "latency_ms", "train_seconds", "pinned", "tags", "notes_count", "predicted_acc", "error",
    "finished_at",
)
JOB_TYPES = (
    ("model_id", "text"), ("study_id", "text"), ("priority", "integer"), ("state", "text"),
    ("worker", "text"), ("attempt", "integer"), ("lease_expires_at", "timestamptz"),
    ("heartbeat_at", "timestamptz"), ("queued_at", "timestamptz"),
    ("claimed_at", "timestamptz"), ("finished_at", "timestamptz"),
    ("cancel_requested", "boolean"),
)
WORKER_TYPES = (
    ("worker", "text"), ("host", "text"), ("pid", "integer"), ("device", "text"),
    ("state", "text"), ("current_model", "text"), ("jobs_done", "integer"),
    ("started_at", "timestamptz"), ("last_seen", "timestamptz"), ("lease_seconds", "float8"),
)
STUDY_TYPES = (
    ("id", "text"), ("dataset_id", "text"), ("strategy", "text"), ("settings", "jsonb"),
    ("space", "jsonb"), ("objectives", "text[]"), ("budget", "jsonb"), ("state", "text"),
    ("previous_study_id", "text"), ("next_study_id", "text"), ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
DATASET_TYPES = (
    ("id", "text"), ("name", "text"), ("kind", "text"), ("source", "text"),
    ("fingerprint", "text"), ("channels", "integer"), ("height", "integer"),
    ("width", "integer"), ("classes", "text[]"), ("num_classes", "integer"),
    ("train_size", "integer"), ("val_size", "integer"), ("test_size", "integer"),
    ("val_seed", "integer"), ("registered_at", "timestamptz"),
)
EPOCH_TYPES = tuple(zip(EPOCH_COLUMNS, (
    "text", "integer", "float8", "float8", "float8", "float8", "float8", "float8", "jsonb",
    "timestamptz"), strict=True))
CLASS_TYPES = tuple(zip(CLASS_COLUMNS, (
    "text", "integer", "text", "text", "float8", "float8", "float8", "float8", "integer"),
    strict=True))
PREDICTION_TYPES = (("model_id", "text"), ("labels", "text"), ("digest", "text"))
NOTE_TYPES = (("model_id", "text"), ("position", "bigint"), ("text", "text"), ("actor", "text"),
              ("recorded_at", "timestamptz"))
FAILURE_TYPES = (("position", "bigint"), ("stream_id", "text"), ("type", "text"),
                 ("handler", "text"), ("message", "text"), ("recorded_at", "timestamptz"))

Types = Sequence[tuple[str, str]]


def _columns(types: Types) -> list[str]:
    return [name for name, _ in types]


def _source(types: Types) -> str:
    """Rows of the JSON parameter as a relation ``s`` with these typed columns."""
    return f"json_to_recordset(%s) as s({', '.join(f'{n} {t}' for n, t in types)})"


def _insert(table: str, types: Types, conflict: Sequence[str] | None = None,
            select: str | None = None) -> str:
    cols = _columns(types)
    sql = (f"insert into {table} ({', '.join(cols)}) select {select or ', '.join(cols)} "
           f"from {_source(types)}")
    if conflict is not None:
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in conflict)
        sql += f" on conflict ({', '.join(conflict)}) do update set {sets}"
    return sql


_MODEL_STATE_TYPES = tuple((n, t) for n, t in MODEL_TYPES if n in MODEL_STATE)
SQL = {
    "new_models": _insert("rm_models", MODEL_TYPES),
    "models": (
        f"update rm_models t set "
        f"{', '.join(f'{c} = s.{c}' for c in MODEL_STATE if c != 'id')} "
        f"from {_source(_MODEL_STATE_TYPES)} where t.id = s.id"
    ),
    "jobs": _insert("rm_jobs", JOB_TYPES, ("model_id",)),
    "workers": _insert("rm_workers", WORKER_TYPES, ("worker",)),
    "studies": _insert("rm_studies", STUDY_TYPES, ("id",)),
    "datasets": _insert("rm_datasets", DATASET_TYPES, ("id",)),
    "epochs": _insert("rm_epochs", EPOCH_TYPES, ("model_id", "epoch")),
    "new_epochs": _insert("rm_epochs", EPOCH_TYPES),
    "class_metrics": _insert("rm_class_metrics", CLASS_TYPES, ("model_id", "class_index")),
    "new_class_metrics": _insert("rm_class_metrics", CLASS_TYPES),
    "predictions": _insert("rm_predictions", PREDICTION_TYPES, ("model_id",),
                           select="model_id, decode(labels, 'base64'), digest"),
    "notes": _insert("rm_notes", NOTE_TYPES),
    "failures": _insert("rm_projection_failures", FAILURE_TYPES),
}


def _send(cur: Cursor, statement: str, rows: Sequence[Any], types: Types) -> None:
    """Run ``SQL[statement]`` over ``rows`` (dicts, or tuples in ``types``' order)."""
    if not rows:
        return
    if not isinstance(rows[0], dict):
        names = _columns(types)
        rows = [dict(zip(names, r, strict=True)) for r in rows]
    cur.execute(SQL[statement], (Json(rows, dumps=orjson.dumps),))


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
                  for r in _fetch(cur, "rm_jobs", _columns(JOB_TYPES), "model_id", model_ids)}
    names = set(workers) | {j["worker"] for j in batch.jobs.values() if j["worker"]}
    batch.workers = {r["worker"]: r
                     for r in _fetch(cur, "rm_workers", _columns(WORKER_TYPES), "worker", names)}
    batch.studies = {r["id"]: r
                     for r in _fetch(cur, "rm_studies", _columns(STUDY_TYPES), "id", studies)}
    return batch


def write(cur: Cursor, batch: Batch) -> None:
    """Write what the handlers changed: one statement per table and kind of change."""
    new = batch.new_models
    _send(cur, "datasets", list(batch.datasets.values()), DATASET_TYPES)
    _send(cur, "studies", [batch.studies[s] for s in sorted(batch.dirty_studies)], STUDY_TYPES)
    _send(cur, "new_models", [batch.models[m] for m in sorted(new)], MODEL_TYPES)
    _send(cur, "models", [{c: batch.models[m][c] for c in MODEL_STATE}
                          for m in sorted(batch.dirty_models - new)], _MODEL_STATE_TYPES)
    _send(cur, "jobs", [batch.jobs[j] for j in sorted(batch.dirty_jobs)], JOB_TYPES)
    _send(cur, "workers", [batch.workers[w] for w in sorted(batch.dirty_workers)], WORKER_TYPES)
    resets = sorted(batch.epoch_resets - new)
    if resets:
        cur.execute("delete from rm_epochs where model_id = any(%s)", (resets,))
    # A model this batch created has no epoch or class rows yet: its rows are plainly inserted
    # (an upsert's conflict check costs a fifth more, measured on a replay); the others upsert.
    epochs = list(batch.epochs.values())
    _send(cur, "new_epochs", [r for r in epochs if r[0] in new], EPOCH_TYPES)
    _send(cur, "epochs", [r for r in epochs if r[0] not in new], EPOCH_TYPES)
    classes = batch.class_metrics
    _send(cur, "new_class_metrics", [r for m in classes if m in new for r in classes[m]],
          CLASS_TYPES)
    _send(cur, "class_metrics", [r for m in classes if m not in new for r in classes[m]],
          CLASS_TYPES)
    _send(cur, "predictions", list(batch.predictions.values()), PREDICTION_TYPES)
    _send(cur, "notes", batch.notes, NOTE_TYPES)


def write_failures(cur: Cursor, failures: Sequence[Row]) -> None:
    _send(cur, "failures", failures, FAILURE_TYPES)
