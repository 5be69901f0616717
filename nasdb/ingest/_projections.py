"""Projections: fold the event log into the read-model tables (``rm_*``).

One plain handler per event type, each a function ``(cursor, event) -> None`` that issues SQL.
`Projector.catch_up` applies the events after its checkpoint in batches; each batch runs in one
transaction that also advances the checkpoint (eventsourcing's tracking records), so killing the
projector at any point and restarting it gives the same tables: a batch is applied exactly once.
A transaction-level advisory lock lets only one projector work at a time; others wait their turn
and then find less to do. `replay` rebuilds every read model from position 0 in one transaction,
so readers see the old tables until the new ones are complete.

No other module writes a read-model table.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from nasdb.ingest._store import _COLUMNS, RecordedEvent, _row_to_event
from nasdb.schema.db import Database

NAME = "read_models"
PROJECTOR_LOCK_KEY = 5_310_202
READ_MODEL_TABLES = (
    "rm_datasets",
    "rm_studies",
    "rm_models",
    "rm_epochs",
    "rm_class_metrics",
    "rm_jobs",
    "rm_predictions",
    "rm_notes",
    "rm_workers",
)

Cursor = psycopg.Cursor[Any]
Handler = Callable[[Cursor, RecordedEvent], None]
HANDLERS: dict[str, Handler] = {}


def handles(event_type: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[event_type] = fn
        return fn

    return register


def _model_id(event: RecordedEvent) -> str:
    return event.stream_id.removeprefix("model-")


def _study_id(event: RecordedEvent) -> str:
    return event.stream_id.removeprefix("study-")


# --- datasets -------------------------------------------------------------------------------


@handles("DatasetRegistered")
def _dataset_registered(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    c, h, w = d["shape"]
    cur.execute(
        """insert into rm_datasets (id, name, kind, source, fingerprint, channels, height, width,
               classes, num_classes, train_size, val_size, test_size, val_seed, registered_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (id) do update set name = excluded.name, kind = excluded.kind,
               source = excluded.source, fingerprint = excluded.fingerprint,
               channels = excluded.channels, height = excluded.height, width = excluded.width,
               classes = excluded.classes, num_classes = excluded.num_classes,
               train_size = excluded.train_size, val_size = excluded.val_size,
               test_size = excluded.test_size, val_seed = excluded.val_seed,
               registered_at = excluded.registered_at""",
        (
            d["dataset_id"], d["name"], d["kind"], d["source"], d["fingerprint"], c, h, w,
            d["classes"], len(d["classes"]), d["train_size"], d["val_size"], d["test_size"],
            d["val_seed"], e.recorded_at,
        ),
    )


# --- studies --------------------------------------------------------------------------------


@handles("StudyCreated")
def _study_created(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    cur.execute(
        """insert into rm_studies (id, dataset_id, strategy, settings, space, objectives, budget,
               state, previous_study_id, created_at, updated_at)
           values (%s, %s, %s, %s, %s, %s, %s, 'running', %s, %s, %s)""",
        (
            d["study_id"], d["dataset_id"], d["strategy"], Jsonb(d["settings"]),
            Jsonb(d["space"]), d["objectives"], Jsonb(d["budget"]), d["previous_study_id"],
            e.recorded_at, e.recorded_at,
        ),
    )
    if d["previous_study_id"]:
        cur.execute(
            "update rm_studies set next_study_id = %s where id = %s",
            (d["study_id"], d["previous_study_id"]),
        )


def _study_state(state: str) -> Handler:
    def handler(cur: Cursor, e: RecordedEvent) -> None:
        cur.execute(
            "update rm_studies set state = %s, updated_at = %s where id = %s",
            (state, e.recorded_at, _study_id(e)),
        )

    return handler


HANDLERS["StudyPaused"] = _study_state("paused")
HANDLERS["StudyResumed"] = _study_state("running")
HANDLERS["StudyStopped"] = _study_state("stopped")
HANDLERS["StudyCompleted"] = _study_state("done")


@handles("SearchSpaceRefined")
def _space_refined(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_studies set next_study_id = coalesce(%s, next_study_id), updated_at = %s "
        "where id = %s",
        (e.data["next_study_id"], e.recorded_at, _study_id(e)),
    )


# --- models and jobs ------------------------------------------------------------------------


@handles("ArchitectureProposed")
def _proposed(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    hp = d["hyperparameters"]
    cur.execute(
        """insert into rm_models (id, study_id, dataset_id, origin, parent_id, changes,
               architecture, layer_types, glyph, depth, params, flops, optimizer, lr,
               weight_decay, batch_size, epochs_planned, hyperparameters, status, predicted_acc,
               created_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                   'proposed', %s, %s)""",
        (
            d["model_id"], d["study_id"], d["dataset_id"], d["origin"], d["parent_id"],
            d["changes"], Jsonb(d["architecture"]), d["layer_types"], d["glyph"], d["depth"],
            d["params"], d["flops"], hp.get("optimizer"), hp.get("lr"), hp.get("weight_decay"),
            hp.get("batch_size"), hp.get("epochs"), Jsonb(hp), d["predicted_acc"],
            e.recorded_at,
        ),
    )


@handles("TrainingRequested")
def _requested(cur: Cursor, e: RecordedEvent) -> None:
    mid, d = _model_id(e), e.data
    cur.execute(
        """update rm_models set status = 'queued', priority = %s,
               epochs_planned = coalesce(%s, epochs_planned), error = null
           where id = %s""",
        (d["priority"], d["epochs"], mid),
    )
    cur.execute(
        """insert into rm_jobs (model_id, study_id, priority, state, queued_at)
           select id, study_id, %s, 'queued', %s from rm_models where id = %s
           on conflict (model_id) do update set state = 'queued', priority = excluded.priority,
               queued_at = excluded.queued_at, worker = null, lease_expires_at = null,
               finished_at = null, cancel_requested = false""",
        (d["priority"], e.recorded_at, mid),
    )


@handles("JobClaimed")
def _claimed(cur: Cursor, e: RecordedEvent) -> None:
    mid, d = _model_id(e), e.data
    lease_end = e.recorded_at + timedelta(seconds=d["lease_seconds"])
    cur.execute(
        """update rm_jobs set state = 'claimed', worker = %s, attempt = %s, claimed_at = %s,
               heartbeat_at = %s, lease_expires_at = %s where model_id = %s""",
        (d["worker"], d["attempt"], e.recorded_at, e.recorded_at, lease_end, mid),
    )
    cur.execute("update rm_models set status = 'training' where id = %s", (mid,))
    if d["attempt"] > 1:  # a retry after a dead worker trains from scratch
        cur.execute("delete from rm_epochs where model_id = %s", (mid,))
        cur.execute(
            """update rm_models set epochs_trained = 0, best_val_acc = null, last_val_acc = null,
                   last_val_loss = null, last_train_loss = null where id = %s""",
            (mid,),
        )
    _touch_worker(cur, d["worker"], e, current_model=mid)


def _renew_lease(cur: Cursor, e: RecordedEvent) -> None:
    """Any sign of life from the lease holder extends its lease by the claimed duration."""
    cur.execute(
        """update rm_jobs set lease_expires_at = %s + (lease_expires_at - heartbeat_at),
               heartbeat_at = %s where model_id = %s and state = 'claimed'""",
        (e.recorded_at, e.recorded_at, _model_id(e)),
    )


@handles("LeaseRenewed")
def _lease_renewed(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        """update rm_jobs set heartbeat_at = %s, lease_expires_at = %s
           where model_id = %s and state = 'claimed'""",
        (e.recorded_at, e.recorded_at + timedelta(seconds=e.data["lease_seconds"]), _model_id(e)),
    )
    _touch_worker(cur, e.data["worker"], e, current_model=_model_id(e))


@handles("EpochCompleted")
def _epoch(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    # One statement: the epoch row, the model's summary and (any sign of life) the job's lease.
    cur.execute(
        """with ep as (
               insert into rm_epochs (model_id, epoch, train_loss, train_acc, val_loss, val_acc,
                   lr, seconds, class_acc, recorded_at)
               values (%(mid)s, %(epoch)s, %(train_loss)s, %(train_acc)s, %(val_loss)s,
                       %(val_acc)s, %(lr)s, %(seconds)s, %(class_acc)s, %(at)s)
               on conflict (model_id, epoch) do update set train_loss = excluded.train_loss,
                   train_acc = excluded.train_acc, val_loss = excluded.val_loss,
                   val_acc = excluded.val_acc, lr = excluded.lr, seconds = excluded.seconds,
                   class_acc = excluded.class_acc, recorded_at = excluded.recorded_at),
           m as (
               update rm_models set epochs_trained = %(epoch)s, last_val_acc = %(val_acc)s,
                   last_val_loss = %(val_loss)s, last_train_loss = %(train_loss)s,
                   best_val_acc = greatest(coalesce(best_val_acc, %(val_acc)s), %(val_acc)s)
               where id = %(mid)s),
           j as (
               update rm_jobs set lease_expires_at = %(at)s + (lease_expires_at - heartbeat_at),
                   heartbeat_at = %(at)s
               where model_id = %(mid)s and state = 'claimed')
           select 1""",
        {
            "mid": _model_id(e), "epoch": d["epoch"], "train_loss": d["train_loss"],
            "train_acc": d["train_acc"], "val_loss": d["val_loss"], "val_acc": d["val_acc"],
            "lr": d["lr"], "seconds": d["seconds"], "class_acc": Jsonb(d["class_acc"]),
            "at": e.recorded_at,
        },
    )


# The job's end, and its worker freed: shared by completed, failed and cancelled.
_FINISH_JOB = """
           j as (
               update rm_jobs set state = %(state)s, finished_at = %(at)s
               where model_id = %(mid)s returning worker),
           w as (
               update rm_workers set current_model = null,
                   jobs_done = jobs_done + (case when %(state)s = 'done' then 1 else 0 end),
                   last_seen = greatest(last_seen, %(at)s)
               where worker = (select worker from j) and current_model = %(mid)s)
           select 1"""


@handles("TrainingCompleted")
def _completed(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    labels = base64.b64decode(d["predictions"])
    cur.execute(
        """with m as (
               update rm_models set status = 'done', test_acc = %(test_acc)s,
                   test_loss = %(test_loss)s, latency_ms = %(latency)s,
                   train_seconds = %(train_seconds)s, epochs_trained = %(epochs)s,
                   finished_at = %(at)s, error = null
               where id = %(mid)s returning dataset_id),
           cm as (
               insert into rm_class_metrics (model_id, class_index, dataset_id, class_name,
                   accuracy, precision, recall, specificity, support)
               select %(mid)s, (t.i - 1)::integer, coalesce((select dataset_id from m), ''),
                      t.name, t.acc, t.prec, t.rec, t.spec, t.sup
                 from unnest(%(names)s::text[], %(acc)s::float8[], %(prec)s::float8[],
                             %(rec)s::float8[], %(spec)s::float8[], %(sup)s::integer[])
                      with ordinality as t(name, acc, prec, rec, spec, sup, i)
               on conflict (model_id, class_index) do update set
                   dataset_id = excluded.dataset_id, class_name = excluded.class_name,
                   accuracy = excluded.accuracy, precision = excluded.precision,
                   recall = excluded.recall, specificity = excluded.specificity,
                   support = excluded.support),
           p as (
               insert into rm_predictions (model_id, labels, digest)
               values (%(mid)s, %(labels)s, %(digest)s)
               on conflict (model_id) do update set labels = excluded.labels,
                   digest = excluded.digest),"""
        + _FINISH_JOB,
        {
            "mid": _model_id(e), "state": "done", "at": e.recorded_at,
            "test_acc": d["test_acc"], "test_loss": d["test_loss"], "latency": d["latency_ms"],
            "train_seconds": d["train_seconds"], "epochs": d["epochs_trained"],
            "names": d["class_names"], "acc": d["class_accuracy"], "prec": d["class_precision"],
            "rec": d["class_recall"], "spec": d["class_specificity"], "sup": d["class_support"],
            "labels": labels,
            "digest": d["predictions_digest"] or hashlib.sha256(labels).hexdigest(),
        },
    )


def _finish_job(cur: Cursor, e: RecordedEvent, state: str) -> None:
    cur.execute("with" + _FINISH_JOB, {"mid": _model_id(e), "state": state,
                                       "at": e.recorded_at})


@handles("TrainingFailed")
def _failed(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_models set status = 'failed', error = %s, finished_at = %s where id = %s",
        (e.data["error"], e.recorded_at, _model_id(e)),
    )
    _finish_job(cur, e, "failed")


@handles("TrainingCancelled")
def _cancelled(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_models set status = 'cancelled', finished_at = %s where id = %s",
        (e.recorded_at, _model_id(e)),
    )
    cur.execute("update rm_jobs set cancel_requested = true where model_id = %s", (_model_id(e),))
    _finish_job(cur, e, "cancelled")


@handles("PriorityChanged")
def _priority(cur: Cursor, e: RecordedEvent) -> None:
    mid, p = _model_id(e), e.data["priority"]
    cur.execute("update rm_models set priority = %s where id = %s", (p, mid))
    cur.execute("update rm_jobs set priority = %s where model_id = %s", (p, mid))


@handles("Pinned")
def _pinned(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute("update rm_models set pinned = true where id = %s", (_model_id(e),))


@handles("Unpinned")
def _unpinned(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute("update rm_models set pinned = false where id = %s", (_model_id(e),))


@handles("Tagged")
def _tagged(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        """update rm_models set tags = array_append(tags, %s::text)
           where id = %s and not (%s::text = any(tags))""",
        (e.data["tag"], _model_id(e), e.data["tag"]),
    )


@handles("Untagged")
def _untagged(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_models set tags = array_remove(tags, %s::text) where id = %s",
        (e.data["tag"], _model_id(e)),
    )


@handles("Noted")
def _noted(cur: Cursor, e: RecordedEvent) -> None:
    mid = _model_id(e)
    cur.execute(
        "insert into rm_notes (model_id, position, text, actor, recorded_at) "
        "values (%s, %s, %s, %s, %s)",
        (mid, e.position, e.data["text"], e.metadata.get("actor"), e.recorded_at),
    )
    cur.execute("update rm_models set notes_count = notes_count + 1 where id = %s", (mid,))


@handles("AccuracyPredicted")
def _predicted(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_models set predicted_acc = %s where id = %s",
        (e.data["predicted_acc"], _model_id(e)),
    )


# --- workers --------------------------------------------------------------------------------


def _touch_worker(cur: Cursor, worker: str, e: RecordedEvent, current_model: str | None) -> None:
    cur.execute(
        """insert into rm_workers (worker, state, current_model, last_seen)
           values (%s, 'running', %s, %s)
           on conflict (worker) do update set current_model = excluded.current_model,
               last_seen = greatest(rm_workers.last_seen, excluded.last_seen),
               state = 'running'""",
        (worker, current_model, e.recorded_at),
    )


@handles("WorkerStarted")
def _worker_started(cur: Cursor, e: RecordedEvent) -> None:
    d = e.data
    cur.execute(
        """insert into rm_workers (worker, host, pid, device, state, started_at, last_seen)
           values (%s, %s, %s, %s, 'running', %s, %s)
           on conflict (worker) do update set host = excluded.host, pid = excluded.pid,
               device = excluded.device, state = 'running', started_at = excluded.started_at,
               last_seen = excluded.last_seen""",
        (d["worker"], d["host"], d["pid"], d["device"], e.recorded_at, e.recorded_at),
    )


@handles("WorkerStopped")
def _worker_stopped(cur: Cursor, e: RecordedEvent) -> None:
    cur.execute(
        "update rm_workers set state = 'stopped', current_model = null, last_seen = %s "
        "where worker = %s",
        (e.recorded_at, e.data["worker"]),
    )


# Events that carry no read-model state (they live in the log and its views only).
for _type in ("RecommenderTrained", "UiAction"):
    HANDLERS[_type] = lambda cur, e: None


# --- the projector --------------------------------------------------------------------------


class Projector:
    """Applies the log to the read models, exactly once per event (see the module docstring)."""

    def __init__(self, db: Database, *, batch_size: int = 2000) -> None:
        self.db = db
        self.batch_size = batch_size

    def checkpoint(self) -> int:
        with self.db.connect() as conn:
            row = conn.execute(
                "select position from projection_checkpoints where name = %s", (NAME,)
            ).fetchone()
        return int(row[0]) if row else 0

    def catch_up(
        self, *, max_batches: int | None = None, on_batch: Callable[[int], None] | None = None
    ) -> int:
        """Apply every event after the checkpoint; return how many were applied."""
        applied = 0
        batches = 0
        with self.db.connect() as conn:
            while max_batches is None or batches < max_batches:
                with conn.transaction():
                    n = self._apply_batch(conn)
                if n == 0:
                    break
                applied += n
                batches += 1
                if on_batch is not None:
                    on_batch(applied)
        return applied

    def _apply_batch(self, conn: psycopg.Connection[Any]) -> int:
        conn.execute("select pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
        conn.execute(
            "insert into projection_checkpoints (name, position) values (%s, 0) "
            "on conflict do nothing",
            (NAME,),
        )
        row = conn.execute(
            "select position from projection_checkpoints where name = %s", (NAME,)
        ).fetchone()
        after = int(row[0]) if row else 0
        rows = conn.execute(
            f"select {_COLUMNS} from events where position > %s order by position limit %s",
            (after, self.batch_size),
        ).fetchall()
        if not rows:
            return 0
        events = [_row_to_event(r) for r in rows]
        with conn.pipeline(), conn.cursor() as cur:
            for event in events:
                handler = HANDLERS.get(event.type)
                if handler is not None:
                    handler(cur, event)
            cur.execute(
                "update projection_checkpoints set position = %s where name = %s",
                (events[-1].position, NAME),
            )
        return len(events)

    def replay(self, *, on_batch: Callable[[int], None] | None = None) -> int:
        """Drop every read model and rebuild it from the whole log, in one transaction."""
        applied = 0
        with self.db.connect() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
            conn.execute(f"truncate {', '.join(READ_MODEL_TABLES)}")
            conn.execute(
                "insert into projection_checkpoints (name, position) values (%s, 0) "
                "on conflict (name) do update set position = 0",
                (NAME,),
            )
            while True:
                n = self._apply_batch(conn)
                if n == 0:
                    break
                applied += n
                if on_batch is not None:
                    on_batch(applied)
        return applied
