"""Projections: one handler per event type, folding a batch of events into read-model rows.

A handler is a plain function ``(batch, event, payload) -> None`` that receives the event's typed
payload (`RecordedEvent.payload`, upcast and validated against the database's bounds) and changes
rows held in memory by a `Batch`: nothing here talks to the database. `nasdb.ingest._projector`
loads the rows a batch touches (one query per table), runs the handlers in log order, and writes
the changed rows back with a few set-based statements per table (COPY, then one INSERT/UPDATE from
the staged rows); see ``_rows.py``. Folding in memory in log order keeps the exact semantics of
applying the events one at a time, whatever the batch boundaries.

A handler that cannot apply its event raises `ProjectionFailure` before it changes anything; the
projector records the failure (position, type, handler, message) and goes on with the next event.

No other module writes a read-model table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from nasdb.ingest._store import RecordedEvent
from nasdb.schema import events as ev
from nasdb.schema.vocabulary import (
    IllegalJobTransition,
    JobState,
    job_state,
    job_transition,
    model_status,
)

Row = dict[str, Any]
# Epoch and class-metric rows are the bulk of a log's rows: plain tuples in these column orders.
# Every value in a row is JSON-ready (`_rows` sends a batch's rows as one JSON document).
EPOCH_COLUMNS = (
    "model_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
    "class_acc", "recorded_at",
)
CLASS_COLUMNS = (
    "model_id", "class_index", "dataset_id", "class_name", "accuracy", "precision", "recall",
    "specificity", "support",
)
P = TypeVar("P", bound=ev.Payload)
Handler = Callable[["Batch", RecordedEvent, Any], None]
HANDLERS: dict[str, Handler] = {}

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
    "rm_projection_failures",
)

# Events that carry no read-model state (they live in the log and its views only).
NO_READ_MODEL = ("SearchStepTaken", "RecommenderTrained", "UiAction")


class ProjectionFailure(Exception):
    """An event its handler cannot apply (the projector records it and skips the event)."""


@dataclass
class Batch:
    """The read-model rows one batch of events touches, as loaded, and what the handlers did.

    ``models`` / ``jobs`` / ``workers`` / ``studies`` hold every row the batch's events refer to
    that existed before the batch (loaded by the projector) plus the rows created by the batch;
    the ``new_*`` and ``dirty_*`` sets say which to insert and which to update.
    """

    models: dict[str, Row] = field(default_factory=dict)
    jobs: dict[str, Row] = field(default_factory=dict)
    workers: dict[str, Row] = field(default_factory=dict)
    studies: dict[str, Row] = field(default_factory=dict)
    datasets: dict[str, Row] = field(default_factory=dict)
    epochs: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    epoch_resets: set[str] = field(default_factory=set)
    class_metrics: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    predictions: dict[str, Row] = field(default_factory=dict)
    notes: list[Row] = field(default_factory=list)
    new_models: set[str] = field(default_factory=set)
    dirty_models: set[str] = field(default_factory=set)
    dirty_jobs: set[str] = field(default_factory=set)
    dirty_workers: set[str] = field(default_factory=set)
    dirty_studies: set[str] = field(default_factory=set)

    # --- lookups shared by the handlers -------------------------------------------------------

    def model(self, e: RecordedEvent) -> Row:
        """The model of a ``model-<id>`` stream, marked changed; fails if it was never proposed."""
        mid = model_id(e)
        row = self.models.get(mid)
        if row is None:
            raise ProjectionFailure(f"model {mid} was never proposed")
        self.dirty_models.add(mid)
        return row

    def job(self, mid: str) -> Row | None:
        row = self.jobs.get(mid)
        if row is not None:
            self.dirty_jobs.add(mid)
        return row

    def study(self, sid: str) -> Row:
        row = self.studies.get(sid)
        if row is None:
            raise ProjectionFailure(f"study {sid} was never created")
        self.dirty_studies.add(sid)
        return row

    def touch_worker(self, worker: str, at: datetime, *, lease: float | None = None,
                     current_model: str | None = None, set_current: bool = False) -> None:
        """Any sign of life from a worker: it is running, seen at ``at`` (never earlier)."""
        row = self.workers.get(worker)
        if row is None:
            row = self.workers[worker] = {
                "worker": worker, "host": None, "pid": None, "device": None,
                "state": "running", "current_model": None, "jobs_done": 0, "started_at": None,
                "last_seen": at, "lease_seconds": None,
            }
        row["state"] = "running"
        row["last_seen"] = max(row["last_seen"], at)
        if set_current:
            row["current_model"] = current_model
        if lease is not None:
            row["lease_seconds"] = lease
        self.dirty_workers.add(worker)

    def advance_job(self, model: Row, e: RecordedEvent) -> JobState | None:
        """The job state after ``e``, by the job state machine (`nasdb.schema.vocabulary`), read
        from and written to the model's ``status``; the caller sets the ``jobs`` row's state.

        Raises `ProjectionFailure` (nothing changed) for an event the machine does not allow.
        """
        try:
            state = job_transition(job_state(model["status"]), e.type)
        except IllegalJobTransition as error:
            raise ProjectionFailure(f"model {model['id']}: {error}") from None
        model["status"] = model_status(state)
        return state

    def finish_job(self, mid: str, state: JobState | None, at: datetime) -> None:
        """The job's end, and its worker freed: shared by completed, failed and cancelled."""
        job = self.job(mid)
        if job is None:
            return
        job["state"] = state
        job["finished_at"] = at
        worker = self.workers.get(job["worker"]) if job["worker"] else None
        if worker is not None and worker["current_model"] == mid:
            worker["current_model"] = None
            worker["jobs_done"] += 1 if state == "done" else 0
            worker["last_seen"] = max(worker["last_seen"], at)
            self.dirty_workers.add(job["worker"])


def model_id(e: RecordedEvent) -> str:
    return e.stream_id.removeprefix("model-")


def study_id(e: RecordedEvent) -> str:
    return e.stream_id.removeprefix("study-")


def handles(payload_type: type[P]) -> Callable[[Callable[[Batch, RecordedEvent, P], None]],
                                               Callable[[Batch, RecordedEvent, P], None]]:
    """Register the decorated function as the handler of ``payload_type``'s events."""

    def register(fn: Callable[[Batch, RecordedEvent, P], None]
                 ) -> Callable[[Batch, RecordedEvent, P], None]:
        HANDLERS[payload_type.TYPE] = fn
        return fn

    return register


# --- datasets -------------------------------------------------------------------------------


@handles(ev.DatasetRegistered)
def dataset_registered(b: Batch, e: RecordedEvent, p: ev.DatasetRegistered) -> None:
    c, h, w = p.shape
    b.datasets[p.dataset_id] = {
        "id": p.dataset_id, "name": p.name, "kind": p.kind, "source": p.source,
        "fingerprint": p.fingerprint, "channels": c, "height": h, "width": w,
        "classes": p.classes, "num_classes": len(p.classes), "train_size": p.train_size,
        "val_size": p.val_size, "test_size": p.test_size, "val_seed": p.val_seed,
        "registered_at": e.recorded_at,
    }


# --- studies --------------------------------------------------------------------------------


@handles(ev.StudyCreated)
def study_created(b: Batch, e: RecordedEvent, p: ev.StudyCreated) -> None:
    if p.study_id in b.studies:
        raise ProjectionFailure(f"study {p.study_id} was already created")
    b.studies[p.study_id] = {
        "id": p.study_id, "dataset_id": p.dataset_id, "strategy": p.strategy,
        "settings": p.settings, "space": p.space, "objectives": p.objectives,
        "budget": p.budget, "state": "running", "previous_study_id": p.previous_study_id,
        "next_study_id": None, "created_at": e.recorded_at, "updated_at": e.recorded_at,
    }
    b.dirty_studies.add(p.study_id)
    previous = b.studies.get(p.previous_study_id) if p.previous_study_id else None
    if previous is not None:
        previous["next_study_id"] = p.study_id
        b.dirty_studies.add(previous["id"])


def _study_state(payload_type: type[ev.Payload], state: str) -> None:
    def handler(b: Batch, e: RecordedEvent, p: ev.Payload) -> None:
        row = b.study(study_id(e))
        row["state"] = state
        row["updated_at"] = e.recorded_at

    handler.__name__ = f"study_{state}"
    HANDLERS[payload_type.TYPE] = handler


_study_state(ev.StudyPaused, "paused")
_study_state(ev.StudyResumed, "running")
_study_state(ev.StudyStopped, "stopped")
_study_state(ev.StudyCompleted, "done")


@handles(ev.SearchSpaceRefined)
def space_refined(b: Batch, e: RecordedEvent, p: ev.SearchSpaceRefined) -> None:
    row = b.study(study_id(e))
    if p.next_study_id is not None:
        row["next_study_id"] = p.next_study_id
    row["updated_at"] = e.recorded_at


# --- models and jobs ------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@handles(ev.ArchitectureProposed)
def proposed(b: Batch, e: RecordedEvent, p: ev.ArchitectureProposed) -> None:
    mid = model_id(e)
    if p.model_id != mid:
        raise ProjectionFailure(f"the payload names model {p.model_id} in stream {e.stream_id}")
    if mid in b.models:
        raise ProjectionFailure(f"model {mid} was already proposed")
    hp = p.hyperparameters
    b.models[mid] = {
        "id": mid, "study_id": p.study_id, "dataset_id": p.dataset_id, "origin": p.origin,
        "parent_id": p.parent_id, "changes": p.changes, "architecture": p.architecture,
        "layer_types": p.layer_types, "glyph": p.glyph, "depth": p.depth, "params": p.params,
        "flops": p.flops, "optimizer": _text(hp.get("optimizer")), "lr": hp.get("lr"),
        "weight_decay": hp.get("weight_decay"), "batch_size": hp.get("batch_size"),
        "epochs_planned": hp.get("epochs"), "hyperparameters": hp, "status": model_status(None),
        "priority": 0, "epochs_trained": 0, "best_val_acc": None, "last_val_acc": None,
        "last_val_loss": None, "last_train_loss": None, "test_acc": None, "test_loss": None,
        "latency_ms": None, "train_seconds": None, "pinned": False, "tags": [],
        "notes_count": 0, "predicted_acc": p.predicted_acc, "error": None,
        "created_at": e.recorded_at, "finished_at": None,
    }
    b.new_models.add(mid)


@handles(ev.TrainingRequested)
def requested(b: Batch, e: RecordedEvent, p: ev.TrainingRequested) -> None:
    m = b.model(e)
    state = b.advance_job(m, e)
    m["priority"] = p.priority
    if p.epochs is not None:
        m["epochs_planned"] = p.epochs
    m["error"] = None
    mid = m["id"]
    job = b.job(mid)
    if job is None:
        b.jobs[mid] = {
            "model_id": mid, "study_id": m["study_id"], "priority": p.priority,
            "state": state, "worker": None, "attempt": 0, "lease_expires_at": None,
            "heartbeat_at": None, "queued_at": e.recorded_at, "claimed_at": None,
            "finished_at": None, "cancel_requested": False,
        }
        b.dirty_jobs.add(mid)
    else:
        job.update(state=state, priority=p.priority, queued_at=e.recorded_at, worker=None,
                   lease_expires_at=None, finished_at=None, cancel_requested=False)


@handles(ev.JobClaimed)
def claimed(b: Batch, e: RecordedEvent, p: ev.JobClaimed) -> None:
    m = b.model(e)
    state = b.advance_job(m, e)
    mid = m["id"]
    job = b.job(mid)
    if job is not None:
        job.update(state=state, worker=p.worker, attempt=p.attempt, claimed_at=e.recorded_at,
                   heartbeat_at=e.recorded_at,
                   lease_expires_at=e.recorded_at + timedelta(seconds=p.lease_seconds))
    if p.attempt > 1:  # a retry after a dead worker trains from scratch
        b.epoch_resets.add(mid)
        for key in [k for k in b.epochs if k[0] == mid]:
            del b.epochs[key]
        m.update(epochs_trained=0, best_val_acc=None, last_val_acc=None, last_val_loss=None,
                 last_train_loss=None)
    b.touch_worker(p.worker, e.recorded_at, lease=p.lease_seconds, current_model=mid,
                   set_current=True)


@handles(ev.LeaseRenewed)
def lease_renewed(b: Batch, e: RecordedEvent, p: ev.LeaseRenewed) -> None:
    mid = b.model(e)["id"]
    job = b.job(mid)
    if job is not None and job["state"] == "claimed":
        job["heartbeat_at"] = e.recorded_at
        job["lease_expires_at"] = e.recorded_at + timedelta(seconds=p.lease_seconds)
    b.touch_worker(p.worker, e.recorded_at, lease=p.lease_seconds, current_model=mid,
                   set_current=True)


@handles(ev.EpochCompleted)
def epoch_completed(b: Batch, e: RecordedEvent, p: ev.EpochCompleted) -> None:
    m = b.model(e)
    mid = m["id"]
    b.epochs[(mid, p.epoch)] = (
        mid, p.epoch, p.train_loss, p.train_acc, p.val_loss, p.val_acc, p.lr, p.seconds,
        p.class_acc, e.recorded_at,
    )
    best = m["best_val_acc"]
    m.update(epochs_trained=p.epoch, last_val_acc=p.val_acc, last_val_loss=p.val_loss,
             last_train_loss=p.train_loss,
             best_val_acc=p.val_acc if best is None else max(best, p.val_acc))
    job = b.job(mid)
    if job is not None and job["state"] == "claimed":  # any sign of life renews the lease
        job["lease_expires_at"] = e.recorded_at + (job["lease_expires_at"] - job["heartbeat_at"])
        job["heartbeat_at"] = e.recorded_at
        if job["worker"] in b.workers:
            b.touch_worker(job["worker"], e.recorded_at)


@handles(ev.TrainingCompleted)
def completed(b: Batch, e: RecordedEvent, p: ev.TrainingCompleted) -> None:
    n = len(p.class_names)
    columns = (p.class_accuracy, p.class_precision, p.class_recall, p.class_specificity,
               p.class_support)
    if any(len(c) != n for c in columns):
        raise ProjectionFailure(f"per-class lists differ in length from the {n} class names")
    try:
        labels = base64.b64decode(p.predictions, validate=True)
    except binascii.Error as error:
        raise ProjectionFailure(f"predictions are not base64: {error}") from None
    m = b.model(e)
    state = b.advance_job(m, e)
    mid = m["id"]
    m.update(test_acc=p.test_acc, test_loss=p.test_loss,
             latency_ms=p.latency_ms, train_seconds=p.train_seconds,
             epochs_trained=p.epochs_trained, finished_at=e.recorded_at, error=None)
    dataset = m["dataset_id"]
    b.class_metrics[mid] = [
        (mid, i, dataset, name, acc, prec, rec, spec, sup)
        for i, (name, acc, prec, rec, spec, sup) in enumerate(zip(p.class_names, *columns,
                                                                  strict=True))
    ]
    b.predictions[mid] = {"model_id": mid, "labels": p.predictions,  # base64, as checked above
                          "digest": p.predictions_digest or hashlib.sha256(labels).hexdigest()}
    b.finish_job(mid, state, e.recorded_at)


@handles(ev.TrainingFailed)
def failed(b: Batch, e: RecordedEvent, p: ev.TrainingFailed) -> None:
    m = b.model(e)
    state = b.advance_job(m, e)
    m.update(error=p.error, finished_at=e.recorded_at)
    b.finish_job(m["id"], state, e.recorded_at)


@handles(ev.TrainingCancelled)
def cancelled(b: Batch, e: RecordedEvent, p: ev.TrainingCancelled) -> None:
    m = b.model(e)
    state = b.advance_job(m, e)
    m["finished_at"] = e.recorded_at
    job = b.job(m["id"])
    if job is not None:
        job["cancel_requested"] = True
    b.finish_job(m["id"], state, e.recorded_at)


@handles(ev.PriorityChanged)
def priority_changed(b: Batch, e: RecordedEvent, p: ev.PriorityChanged) -> None:
    m = b.model(e)
    m["priority"] = p.priority
    job = b.job(m["id"])
    if job is not None:
        job["priority"] = p.priority


@handles(ev.Pinned)
def pinned(b: Batch, e: RecordedEvent, p: ev.Pinned) -> None:
    b.model(e)["pinned"] = True


@handles(ev.Unpinned)
def unpinned(b: Batch, e: RecordedEvent, p: ev.Unpinned) -> None:
    b.model(e)["pinned"] = False


@handles(ev.Tagged)
def tagged(b: Batch, e: RecordedEvent, p: ev.Tagged) -> None:
    m = b.model(e)
    if p.tag not in m["tags"]:
        m["tags"] = [*m["tags"], p.tag]


@handles(ev.Untagged)
def untagged(b: Batch, e: RecordedEvent, p: ev.Untagged) -> None:
    m = b.model(e)
    m["tags"] = [t for t in m["tags"] if t != p.tag]


@handles(ev.Noted)
def noted(b: Batch, e: RecordedEvent, p: ev.Noted) -> None:
    m = b.model(e)
    b.notes.append({"model_id": m["id"], "position": e.position, "text": p.text,
                    "actor": _text(e.metadata.get("actor")), "recorded_at": e.recorded_at})
    m["notes_count"] += 1


@handles(ev.AccuracyPredicted)
def accuracy_predicted(b: Batch, e: RecordedEvent, p: ev.AccuracyPredicted) -> None:
    b.model(e)["predicted_acc"] = p.predicted_acc


# --- workers --------------------------------------------------------------------------------


@handles(ev.WorkerStarted)
def worker_started(b: Batch, e: RecordedEvent, p: ev.WorkerStarted) -> None:
    b.touch_worker(p.worker, e.recorded_at, lease=p.lease_seconds)
    b.workers[p.worker].update(host=p.host, pid=p.pid, device=p.device,
                               started_at=e.recorded_at, last_seen=e.recorded_at)


@handles(ev.WorkerStopped)
def worker_stopped(b: Batch, e: RecordedEvent, p: ev.WorkerStopped) -> None:
    row = b.workers.get(p.worker)
    if row is not None:
        row.update(state="stopped", current_model=None, last_seen=e.recorded_at)
        b.dirty_workers.add(p.worker)


@handles(ev.WorkerHeartbeat)
def worker_heartbeat(b: Batch, e: RecordedEvent, p: ev.WorkerHeartbeat) -> None:
    b.touch_worker(p.worker, e.recorded_at, lease=p.lease_seconds)


def _no_read_model(b: Batch, e: RecordedEvent, p: ev.Payload) -> None:
    """Events that live in the log and its views only."""


for _type in NO_READ_MODEL:
    HANDLERS[_type] = _no_read_model


_WORKER_TYPES = frozenset(t for t, cls in ev.PAYLOAD_TYPES.items() if "worker" in cls.model_fields)


def collect_keys(e: RecordedEvent, p: ev.Payload, models: set[str], studies: set[str],
                 workers: set[str]) -> None:
    """Add the model ids, study ids and worker names ``e`` refers to (what the projector loads)."""
    stream = e.stream_id
    if stream.startswith("model-"):
        models.add(stream[6:])
    elif stream.startswith("study-"):
        studies.add(stream[6:])
    if e.type in _WORKER_TYPES:
        workers.add(p.worker)  # type: ignore[attr-defined]
    elif isinstance(p, ev.StudyCreated):
        studies.add(p.study_id)
        if p.previous_study_id:
            studies.add(p.previous_study_id)
