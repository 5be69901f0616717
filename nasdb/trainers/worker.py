"""The training worker: claim a queued job, train it, append every epoch, let go.

Claiming. A worker reads candidate jobs from the `jobs` view (queued, or claimed with an expired
lease; highest priority first; never a job of a paused or stopped study), then decides from the
model's own stream — not the possibly lagging read model — whether the job is still claimable, and
appends JobClaimed with ``expected_version`` equal to the version it decided at. Two workers can
never both win: the store lets exactly one append at that version. Workers never block each
other; a loser just tries the next candidate.

Fencing. Every later append of the job (LeaseRenewed heartbeats, EpochCompleted,
TrainingCompleted/Failed) also carries the expected version. If anything else was appended to
the stream meanwhile — another worker's JobClaimed after this worker's lease expired (it was
paused too long, say), or a person's TrainingCancelled — the append fails and the worker stops
work on that job without writing anything more: a worker that lost its lease cannot report
results (the hole plain Postgres job queues leave open).

A killed worker costs nothing: its lease expires and the job is offered again; the retry trains
from scratch and its epochs replace the dead attempt's in the read models.

Waking. Appends NOTIFY channel ``nasdb_events``; an idle worker LISTENs with a polling fallback.

Devices. A worker trains on one device (``cpu``, ``cuda``, ``cuda:N``); ``slots`` workers may
share it (`nasdb.trainers.supervisor` runs them), each with its share of the device's memory and,
on the CPU, of its threads. The memory guard (`nasdb.trainers.memory`) skips a job whose estimated
memory exceeds this worker's budget before claiming it: the job stays queued for a worker with a
larger device, and this worker does not look at it again. Every event of a job carries the device
in its metadata (GPU name, memory, CUDA version; CPU name and threads) and the precision,
channels_last and compile choices; TrainingCompleted adds the peak memory the job used.

Failures (see "failure handling" below). Everything a job does — loading its data, building the
model, every epoch — runs inside the worker's failure handling: an error becomes TrainingFailed
with the reason and the worker goes on. A job whose attempts end without any result (the worker
was killed, say by the kernel's OOM killer) is claimed again until ``NASDB_MAX_ATTEMPTS`` attempts
are used; then the next worker to see it appends TrainingFailed saying so, instead of claiming it.
A database that goes away (a restart) is ridden out for ``NASDB_RECONNECT_SECONDS``: reads and
appends are retried (appends carry fixed event ids, so a retry records nothing twice), the lease
is kept by the heartbeat as soon as the server is back, and the log says what happened.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import psycopg
import torch

from nasdb.ingest import (
    CHANNEL,
    EventStore,
    NewEvent,
    ProjectorService,
    ensure_projector,
    get_artifact,
    put_artifact,
    wait_projected,
)
from nasdb.ingest._store import RecordedEvent
from nasdb.read import claimable_jobs, count_jobs, dataset_row
from nasdb.schema import settings
from nasdb.schema.db import Database
from nasdb.schema.errors import (
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidRequest,
    LeaseLost,
    NasdbError,
    NotFound,
    TrainingError,
)
from nasdb.schema.events import (
    EpochCompleted,
    JobClaimed,
    LeaseRenewed,
    TrainingCompleted,
    TrainingFailed,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
)
from nasdb.schema.resilience import retrying
from nasdb.schema.vocabulary import IllegalJobTransition, JobState, job_transition
from nasdb.search import Architecture, Hyperparameters, check_bounds
from nasdb.trainers.acceleration import Acceleration
from nasdb.trainers.build import build_module, build_seeded
from nasdb.trainers.devices import PeakMemory, describe_device, select_device
from nasdb.trainers.loop import EpochResult, TrainResult, train
from nasdb.trainers.measure import layer_table
from nasdb.trainers.memory import MemoryGuard, estimate_job_bytes
from nasdb.trainers.registry import load_registered

_T = TypeVar("_T")


@dataclass(frozen=True)
class Job:
    """A job folded from its model's stream (`nasdb.schema.vocabulary`'s state machine)."""

    version: int
    state: JobState | None  # None: no training requested yet
    attempt: int
    lease_until: datetime | None
    worker: str | None
    request: dict[str, Any]


def fold_job(events: list[RecordedEvent]) -> Job:
    """The job after these events (a model stream, in version order).

    An event the job state machine does not allow is ignored whole, as the projection skips it.
    """
    state: JobState | None = None
    attempt, lease_until, worker = 0, None, None
    request: dict[str, Any] = {}
    lease = timedelta(0)
    for e in events:
        try:
            state = job_transition(state, e.type)
        except IllegalJobTransition:
            continue
        if e.type == "TrainingRequested":
            request = e.data
        elif e.type == "JobClaimed":
            attempt, worker = e.data["attempt"], e.data["worker"]
            lease = timedelta(seconds=e.data["lease_seconds"])
            lease_until = e.recorded_at + lease
        elif e.type == "LeaseRenewed":
            lease = timedelta(seconds=e.data["lease_seconds"])
            lease_until = e.recorded_at + lease
        elif e.type == "EpochCompleted" and state == "claimed":
            lease_until = e.recorded_at + lease
    version = events[-1].version if events else 0
    return Job(version, state, attempt, lease_until, worker, request)


@dataclass
class Claim:
    model_id: str
    attempt: int
    version: int
    request: dict[str, Any]


class _Fence:
    """The job's expected stream version, shared by the training thread and the heartbeat."""

    def __init__(self, store: EventStore, model_id: str, version: int, meta: dict[str, Any],
                 log: Callable[[str], None] = lambda message: None):
        self.store = store
        self.log = log
        self.stream = f"model-{model_id}"
        self.version = version
        self.meta = meta
        self.lock = threading.Lock()
        self.lost: str | None = None

    def append(self, event: NewEvent) -> None:
        """Append at the expected version; raise `LeaseLost` if the job moved on.

        While the database is unreachable the append is retried (with a fixed event id, so it is
        recorded once) for NASDB_RECONNECT_SECONDS, then `DatabaseUnavailable` is raised.
        """
        key = event.idempotency_key or f"once-{uuid.uuid4().hex}"
        fixed = replace(event, idempotency_key=key)
        with self.lock:
            if self.lost:
                raise LeaseLost(self.lost)
            try:
                recorded = retrying(
                    lambda: self.store.append(
                        self.stream, [replace(fixed, metadata=self.meta)], self.version),
                    what=f"recording {event.type} of {self.stream}", log=self.log)
            except ConcurrencyConflict:
                events = self.store.read_stream(self.stream, self.version)
                if any(e.type == "TrainingCancelled" for e in events):
                    self.lost = "cancelled"
                else:
                    taker = next((e.data["worker"] for e in events if e.type == "JobClaimed"), "?")
                    self.lost = f"lease lost: {self.stream} was claimed by {taker}"
                raise LeaseLost(self.lost) from None
            self.version = recorded[-1].version


class Worker:
    """Claims and trains jobs until told to stop (see the module docstring for the protocol)."""

    def __init__(
        self,
        db: Database,
        *,
        device: str | None = None,
        name: str | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        log: Callable[[str], None] | None = None,
        on_epoch: Callable[[str, EpochResult], None] | None = None,
        slots: int = 1,
        memory_limit: str | int | None = None,
        precision: str | None = None,
        compile: str | None = None,
    ) -> None:
        self.db = db
        self.store = EventStore(db=db)
        self.device = select_device(device or settings.get("device"))
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.lease_seconds = float(lease_seconds or settings.number("lease_seconds"))
        self.poll_seconds = float(poll_seconds or settings.number("poll_seconds"))
        if not (0 < self.lease_seconds < 86400 * 365 and 0 < self.poll_seconds < 86400):
            raise InvalidRequest(f"the lease ({self.lease_seconds} s) and poll interval "
                                 f"({self.poll_seconds} s) must be positive, finite numbers")
        self.log = log or (lambda message: None)
        self.on_epoch = on_epoch
        self.stopping = False
        self._init_device(slots, memory_limit, precision, compile)

    # --- the device -------------------------------------------------------------------------

    def _init_device(self, slots: int, memory_limit: str | int | None, precision: str | None,
                     compile: str | None) -> None:
        """Slots, the memory guard and the acceleration choices (checked now, so that a bad value
        fails before the worker starts)."""
        if slots < 1:
            raise InvalidRequest(f"--slots must be 1 or more, got {slots}")
        self.slots = slots
        if self.device.type == "cpu" and slots > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // slots))
        self.guard = MemoryGuard(self.device, limit=memory_limit, slots=slots)
        self.precision, self.compile = precision, compile
        Acceleration.resolve(self.device, precision=precision, compile=compile)
        self.device_facts = describe_device(self.device)
        self._refused: dict[str, str] = {}
        self._splits: dict[str, tuple[int, int, int]] = {}

    def _memory_refusal(self, events: list[RecordedEvent]) -> str | None:
        """Why this worker's device cannot hold the job (None: it fits, or it cannot be told)."""
        proposed = next((e.data for e in events if e.type == "ArchitectureProposed"), None)
        if proposed is None:
            return None
        splits = self._split_sizes(proposed["dataset_id"])
        if splits is None:
            return None
        shape = tuple(proposed["input_shape"])
        try:
            arch = Architecture.from_json(proposed["architecture"])
            hp = Hyperparameters.of(proposed["hyperparameters"])
            # over nasdb's own size bounds no device takes it: claimed, and failed with the reason
            check_bounds(arch, layer_table(arch, shape, int(proposed["num_classes"])),
                         hp.batch_size)
            estimate = estimate_job_bytes(
                lambda: build_module(arch, shape, int(proposed["num_classes"])),
                shape, hp.batch_size, splits)
        except Exception:  # a job that cannot be built: its training attempt records why
            return None
        return self.guard.refusal(estimate)

    def _split_sizes(self, dataset_id: str) -> tuple[int, int, int] | None:
        if dataset_id not in self._splits:
            try:
                row = dataset_row(self.db, dataset_id)
            except NotFound:
                return None
            self._splits[dataset_id] = (row.train_size, row.val_size, row.test_size)
        return self._splits[dataset_id]

    def _acceleration(self, hp: dict[str, Any], train_size: int) -> Acceleration:
        cfg = Hyperparameters.of(hp)
        steps = cfg.epochs * -(-train_size // cfg.batch_size)
        return Acceleration.resolve(self.device, precision=self.precision, compile=self.compile,
                                    steps=steps)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, max_jobs: int | None = None, *, idle_exit: bool = True) -> int:
        """Train jobs until ``max_jobs`` are done, or (with ``idle_exit``) the queue is empty."""
        stream = f"worker-{self.name}"
        bound = self.guard.enforce()
        if bound:
            self.log(f"{self.name}: {bound}")
        run_id = uuid.uuid4().hex
        started = NewEvent.of(WorkerStarted(
            worker=self.name, host=socket.gethostname(), pid=os.getpid(),
            device=str(self.device), lease_seconds=self.lease_seconds),
            metadata={**self.device_facts, "slots": self.slots},
            idempotency_key=f"started-{run_id}")
        self._ride_out(lambda: self.store.append(stream, [started]), "starting")
        done = 0
        projector = ProjectorService(self.db, poll_seconds=self.poll_seconds).start()
        beat = time.monotonic()
        try:
            with self._graceful_signals(), _Listener(self.db) as listener:
                # listening before the first look: a job queued after it wakes the worker at once
                self._ride_out(listener.listen, "listening for jobs")
                while not self.stopping and (max_jobs is None or done < max_jobs):
                    claim = self._ride_out(self._project_and_claim, "looking for a job")
                    if claim is None:
                        if idle_exit and not self._ride_out(self._jobs_in_flight,
                                                            "looking for a job"):
                            break
                        if time.monotonic() - beat > self.lease_seconds / 3:
                            self._ride_out(partial(self.store.append, stream, [NewEvent.of(
                                WorkerHeartbeat(worker=self.name,
                                                lease_seconds=self.lease_seconds))]),
                                "saying the worker is alive")
                            beat = time.monotonic()
                        self._ride_out(lambda: listener.wait(self.poll_seconds),
                                       "waiting for a job")
                        continue
                    if self.train(claim):
                        done += 1
                    beat = time.monotonic()
        finally:
            self._record_stop(stream, done, run_id)
            projector.stop()
        return done

    @contextlib.contextmanager
    def _graceful_signals(self) -> Iterator[None]:
        """SIGINT / SIGTERM stop the worker at the next boundary between jobs instead of raising
        in the middle of an append (which could leave the store's transaction broken and lose the
        WorkerStopped event); a second signal interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: Any) -> None:
            if self.stopping:
                raise KeyboardInterrupt
            self.stopping = True
            self.log(f"{self.name}: stopping after the current job (signal again to interrupt)")

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _jobs_in_flight(self) -> bool:
        """Jobs queued but not claimable now (paused study) do not count; claimed ones do."""
        return count_jobs(self.db, ["claimed"]) > 0

    # --- claiming ---------------------------------------------------------------------------

    def candidates(self, limit: int = 20) -> list[str]:
        """The jobs worth trying to claim, best first (`nasdb.read.claimable_jobs`), less those
        left to a larger device."""
        return claimable_jobs(self.db, skip=list(self._refused), limit=limit)

    def claim(self) -> Claim | None:
        """Claim the best claimable job, or return None. Never blocks on other workers."""
        for model_id in self.candidates():
            stream = f"model-{model_id}"
            events = self.store.read_stream(stream)
            job = fold_job(events)
            now = self._now()
            expired = job.state == "claimed" and job.lease_until is not None and \
                job.lease_until < now
            if job.state != "queued" and not expired:
                continue
            if expired and self._give_up_if_exhausted(stream, job):
                continue
            refusal = self._memory_refusal(events)
            if refusal is not None:  # skipped, not failed: a larger device may take it
                self._refused[model_id] = refusal
                self.log(f"{self.name}: leaving {model_id} to a larger device: {refusal}")
                continue
            attempt = job.attempt + 1
            try:
                recorded = self.store.append(stream, [NewEvent.of(JobClaimed(
                    worker=self.name, attempt=attempt, lease_seconds=self.lease_seconds,
                    device=str(self.device)),
                    metadata={**self.device_facts, "worker": self.name, "slots": self.slots},
                    idempotency_key=f"claim-{attempt}")], job.version)
            except ConcurrencyConflict:
                continue  # another worker (or a person) got there first
            if recorded[-1].data["worker"] != self.name:
                continue  # an identical claim by another worker was already recorded
            return Claim(model_id, attempt, recorded[-1].version, job.request)
        return None

    def _now(self) -> datetime:
        with self.db.connect() as conn:
            row = conn.execute("select now()").fetchone()
        assert row is not None
        return row[0]

    # --- training ---------------------------------------------------------------------------

    def _provenance(self, proposed: dict[str, Any], fingerprint: str,
                    acc: Acceleration) -> dict[str, Any]:
        return {**self.device_facts, "worker": self.name, "slots": self.slots,
                **acc.to_dict(), "seed": proposed["hyperparameters"].get("seed", 0),
                "dataset_fingerprint": fingerprint}

    def train(self, claim: Claim) -> bool:
        """Train a claimed job; True when it completed (False: failed, cancelled or lease lost)."""
        stream = f"model-{claim.model_id}"
        events = self._ride_out(lambda: self.store.read_stream(stream), "reading a job")
        proposed = next(e.data for e in events if e.type == "ArchitectureProposed")
        fence = _Fence(self.store, claim.model_id, claim.version, {"worker": self.name},
                       self._say)
        try:
            data = self._ride_out(lambda: load_registered(self.store, proposed["dataset_id"]),
                                  "loading a dataset")
            arch = Architecture.from_json(proposed["architecture"])
            hp = Hyperparameters.from_json(proposed["hyperparameters"]).to_dict()
            if claim.request.get("epochs"):
                hp["epochs"] = claim.request["epochs"]
            acc = self._acceleration(hp, data.split_sizes["train"])
            fence.meta = self._provenance(proposed, data.fingerprint, acc)
            module = self._build(arch, data.input_shape, data.num_classes, hp)
            if claim.request.get("resume_from"):
                module.load_state_dict(self._load_checkpoint(claim.request["resume_from"]))
        except DatabaseUnavailable:
            raise
        except Exception as e:  # a bad job (too large, unbuildable) never takes the worker down
            return self._fail(fence, claim, f"could not start training: {_describe(e)}")
        self.log(f"{self.name}: training {claim.model_id} ({proposed['glyph']}, attempt "
                 f"{claim.attempt}) on {self.device}")
        heartbeat = _Heartbeat(fence, self.name, self.lease_seconds)
        heartbeat.start()

        def on_epoch(result: EpochResult) -> bool:
            fence.append(NewEvent.of(EpochCompleted(**result.to_dict(), attempt=claim.attempt),
                                     idempotency_key=f"epoch-{claim.attempt}-{result.epoch}"))
            if self.on_epoch is not None:
                self.on_epoch(claim.model_id, result)
            return False  # a first signal lets the job finish; a second interrupts at once

        peak = PeakMemory(self.device)
        peak.reset()
        try:
            result = train(module, data, hp, self.device, on_epoch=on_epoch,
                           should_stop=lambda: fence.lost is not None, acceleration=acc,
                           compile_key=_compile_key(proposed, data.input_shape))
            if fence.lost:
                raise LeaseLost(fence.lost)
            fence.meta = {**fence.meta, "peak_memory_bytes": peak.read()}
            state = _state_bytes(result)
            checkpoint = self._ride_out(lambda: put_artifact(self.db, state, "checkpoint"),
                                        "storing a checkpoint")
            fence.append(NewEvent.of(_completed(result, claim, checkpoint),
                                     idempotency_key=f"completed-{claim.attempt}"))
        except LeaseLost as e:
            self.log(f"{self.name}: stopped {claim.model_id}: {e}")
            return False
        except DatabaseUnavailable as e:
            self._say(f"gave up on {claim.model_id}: {e}; nothing more was recorded, and the job "
                      "is retrained when its lease expires")
            raise
        except TrainingError as e:
            return self._fail(fence, claim, str(e))
        except Exception as e:  # a crash inside torch: record it, keep the worker alive
            return self._fail(fence, claim, _describe(e))
        finally:
            heartbeat.stop()
        self.log(f"{self.name}: {claim.model_id} done: test accuracy {result.test_acc:.4f} "
                 f"after {result.epochs_trained} epochs")
        return True

    # --- failure handling --------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.log(f"{self.name}: {message}")

    def _ride_out(self, action: Callable[[], _T], what: str) -> _T:
        """``action()``, retried while the database is away (see `retrying`)."""
        return retrying(action, what=what, log=self._say)

    def _project_and_claim(self) -> Claim | None:
        wait_projected(self.db)
        return self.claim()

    def _build(self, arch: Architecture, input_shape: tuple[int, ...], num_classes: int,
               hp: dict[str, Any]) -> torch.nn.Module:
        """The seeded module, after the size bounds (a job proposed before them, or appended
        around `propose`, is refused here rather than allocated)."""
        check_bounds(arch, layer_table(arch, input_shape, num_classes), int(hp["batch_size"]))
        return build_seeded(arch, input_shape, num_classes, int(hp["seed"]))

    def _give_up_if_exhausted(self, stream: str, job: Job) -> bool:
        """Append TrainingFailed for a job whose ``NASDB_MAX_ATTEMPTS`` attempts all ended
        without a result; True when it did (or another worker or person got there first)."""
        limit = settings.integer("max_attempts")
        if job.attempt < limit:
            return False
        error = (f"gave up after {job.attempt} attempts: each ended without a result (the "
                 f"last, on worker {job.worker}, stopped renewing its lease: the worker died, "
                 "was killed, or lost the database); NASDB_MAX_ATTEMPTS is "
                 f"{limit}")
        with contextlib.suppress(ConcurrencyConflict):
            self.store.append(stream, [NewEvent.of(
                TrainingFailed(attempt=job.attempt, error=error), metadata={"worker": self.name},
                idempotency_key=f"failed-{job.attempt}")], job.version)
            self._say(f"{stream.removeprefix('model-')} failed: {error}")
        return True

    def _fail(self, fence: _Fence, claim: Claim, error: str) -> bool:
        """Record TrainingFailed with the reason; say so only once it is recorded."""
        try:
            fence.append(NewEvent.of(TrainingFailed(attempt=claim.attempt, error=error),
                                     idempotency_key=f"failed-{claim.attempt}"))
        except LeaseLost as e:
            self._say(f"{claim.model_id} hit an error ({error}) after its job moved on ({e}); "
                      "nothing was recorded")
            return False
        self._say(f"{claim.model_id} failed: {error}")
        return False

    def _record_stop(self, stream: str, done: int, run_id: str) -> None:
        """WorkerStopped, when the database can be reached; never hides the original error."""
        stopped = NewEvent.of(WorkerStopped(worker=self.name, jobs_done=done),
                              idempotency_key=f"stopped-{run_id}")
        try:
            self._ride_out(lambda: self.store.append(stream, [stopped]), "stopping")
            with contextlib.suppress(NasdbError):
                wait_projected(self.db, timeout=10)
        except (DatabaseUnavailable, psycopg.OperationalError) as e:
            self._say(f"could not record that the worker stopped: {e}")

    def _load_checkpoint(self, reference: str) -> dict[str, torch.Tensor]:
        content = get_artifact(self.db, reference)
        state: dict[str, torch.Tensor] = torch.load(io.BytesIO(content), map_location="cpu",
                                                    weights_only=True)
        return state


class _Heartbeat:
    """Renews the lease every third of its length while a job trains."""

    def __init__(self, fence: _Fence, worker: str, lease_seconds: float) -> None:
        self.fence = fence
        self.worker = worker
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.fence.append(NewEvent.of(LeaseRenewed(worker=self.worker,
                                                           lease_seconds=self.lease_seconds)))
            except LeaseLost:
                return
            except NasdbError:
                continue  # the database stayed away past the window: try again next beat


LISTEN_SQL = f"listen {CHANNEL} /* nasdb worker */"
"""A worker's LISTEN, as ``pg_stat_activity.query`` shows it for the session while it waits."""


class _Listener:
    """LISTEN on the events channel; reopened after the database went away."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> _Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def listen(self) -> None:
        """Open the session and LISTEN, unless it is open: appends notified from now on wake
        `wait`, even those that come before it is called."""
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = self.db.connect(autocommit=True)
            self.conn.execute(LISTEN_SQL)

    def wait(self, timeout: float) -> None:
        """Return on the first notification or after ``timeout`` seconds."""
        self.listen()
        assert self.conn is not None
        try:
            for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.OperationalError:
            self.conn.close()
            raise


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _compile_key(proposed: dict[str, Any], input_shape: tuple[int, ...]) -> str:
    """One key per architecture, input shape and class count (the compile cache's key)."""
    text = repr((proposed["architecture"], tuple(input_shape), proposed.get("num_classes")))
    return hashlib.sha256(text.encode()).hexdigest()


def _state_bytes(result: TrainResult) -> bytes:
    buffer = io.BytesIO()
    torch.save(result.state_dict, buffer)
    return buffer.getvalue()


def _completed(result: TrainResult, claim: Claim, checkpoint: str) -> TrainingCompleted:
    metrics = result.class_metrics
    return TrainingCompleted(
        attempt=claim.attempt,
        epochs_trained=result.epochs_trained,
        test_acc=result.test_acc,
        test_loss=result.test_loss,
        class_names=[m.class_name for m in metrics],
        class_accuracy=[m.accuracy for m in metrics],
        class_ovr_accuracy=[m.one_vs_rest_accuracy for m in metrics],
        class_precision=[m.precision for m in metrics],
        class_recall=[m.recall for m in metrics],
        class_specificity=[m.specificity for m in metrics],
        class_support=[m.support for m in metrics],
        confusion_matrix=result.confusion_matrix,
        predictions=base64.b64encode(result.predictions).decode(),
        predictions_digest=result.predictions_digest,
        latency_ms=result.latency_ms,
        train_seconds=result.train_seconds,
        checkpoint=checkpoint,
    )


def wait_for(db: Database, predicate_sql: str, timeout: float = 60.0) -> bool:
    """Poll the read models until ``select <predicate_sql>`` is true; for tests and the demo."""
    ensure_projector(db)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connect() as conn:
            row = conn.execute(f"select {predicate_sql}").fetchone()
        if row and row[0]:
            return True
        time.sleep(0.2)
    return False
