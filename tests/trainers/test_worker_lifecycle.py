"""What the README promises about a worker's life, against a real database with real training:
a first signal lets the current job finish, a second interrupts at once, and heartbeats keep a
job that trains longer than its lease."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.schema import Database
from nasdb.trainers.worker import Worker, wait_for

from .test_worker import queue, start_worker, types_of

pytestmark = pytest.mark.timeout(1200)  # a loaded machine starts and trains slowly


def _claimed(db: Database, model_id: str) -> str:
    """True once the job's first epoch is in the log (the log itself: no projection needed)."""
    return (f"exists (select 1 from events where stream_id = 'model-{model_id}' "
            "and type = 'EpochCompleted')")


def test_a_first_signal_lets_the_current_job_finish_then_the_worker_stops(db: Database) -> None:
    first, second = queue(db, 2, epochs=6, batch_size=32)
    proc = start_worker(db)  # runs until stopped
    assert wait_for(db, _claimed(db, first), 600), "the worker never started training"
    signalled_at = EventStore(db=db).last_position()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "stopping after the current job" in out
    kinds = [t for t, _ in types_of(db, first)]
    assert kinds.count("EpochCompleted") == 6 and kinds[-1] == "TrainingCompleted"
    # Nothing new was claimed after the signal: the second job is still waiting.
    later = EventStore(db=db).read_all(after=signalled_at)
    assert [e for e in later if e.type == "JobClaimed"] == []
    assert [t for t, _ in types_of(db, second)] == ["ArchitectureProposed", "TrainingRequested"]
    assert later[-1].type == "WorkerStopped" and later[-1].data["jobs_done"] == 1


def test_a_second_signal_interrupts_at_once(db: Database) -> None:
    [model_id] = queue(db, 1, epochs=30, batch_size=32)
    proc = start_worker(db, "--lease-seconds", "5")
    assert wait_for(db, _claimed(db, model_id), 600), "the worker never started training"
    proc.send_signal(signal.SIGTERM)
    # Signals are not queued: the second is sent once the worker has said it handled the first.
    assert proc.stdout is not None
    seen: list[str] = []
    for line in iter(proc.stdout.readline, ""):
        seen.append(line)
        if "stopping after the current job" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert out.rstrip().endswith("aborted")
    kinds = [t for t, _ in types_of(db, model_id)]
    assert "TrainingCompleted" not in kinds and kinds.count("EpochCompleted") < 30
    stopped = EventStore(db=db).read_all(types=["WorkerStopped"])
    assert len(stopped) == 1 and stopped[0].data["jobs_done"] == 0
    # The job's lease runs out and another worker trains it, exactly once.
    assert Worker(db, lease_seconds=30, poll_seconds=0.5).run(max_jobs=1, idle_exit=False) == 1
    kinds = [t for t, _ in types_of(db, model_id)]
    assert kinds.count("JobClaimed") == 2 and kinds.count("TrainingCompleted") == 1


def test_heartbeats_keep_a_job_that_outlives_its_lease(db: Database) -> None:
    lease, epochs = 4.0, 5
    [model_id] = queue(db, 1, epochs=epochs, batch_size=64)

    def slow_epoch(_model: str, _result: object) -> None:
        time.sleep(lease)  # each epoch takes longer than the whole lease

    worker = Worker(db, lease_seconds=lease, poll_seconds=0.5, name="slow", on_epoch=slow_epoch)
    thread = threading.Thread(target=lambda: worker.run(max_jobs=1))
    thread.start()
    assert wait_for(db, _claimed(db, model_id), 600)
    # A rival polls the whole time; it would take the job over if the lease ever ran out.
    rival = Worker(db, lease_seconds=30, poll_seconds=0.5, name="rival")
    rival_done = rival.run(idle_exit=True)  # returns once no job is claimable or in flight
    thread.join(300)
    assert not thread.is_alive()
    assert rival_done == 0
    events = EventStore(db=db).read_stream(f"model-{model_id}")
    claims = [e for e in events if e.type == "JobClaimed"]
    assert [e.data["worker"] for e in claims] == ["slow"]
    renewals = [e for e in events if e.type == "LeaseRenewed"]
    done = next(e for e in events if e.type == "TrainingCompleted")
    assert (done.recorded_at - claims[0].recorded_at).total_seconds() >= epochs * lease
    assert len(renewals) >= epochs  # about three per lease while it trained
    Projector(db).catch_up()
    with db.connect() as conn:
        row = conn.execute("select status, epochs_trained from models where id = %s",
                           (model_id,)).fetchone()
    assert row == ("done", epochs)
