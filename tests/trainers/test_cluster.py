"""Workers on many machines sharing one PostgreSQL: separate processes, separate working
directories and homes, one database; every job is trained exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from nasdb.ingest import EventStore
from nasdb.schema import Database
from nasdb.trainers.worker import wait_for

from .test_worker import queue, start_worker


def test_workers_on_separate_hosts_train_each_job_exactly_once(db: Database,
                                                                tmp_path: Path) -> None:
    ids = queue(db, 9, epochs=1)
    hosts = []
    for i, extra in enumerate([(), (), ("--slots", "2")]):  # the third "host" runs two slots
        home = tmp_path / f"host{i}"
        home.mkdir()
        hosts.append(start_worker(db, "--exit-when-idle", *extra, cwd=home,
                                  env={"NASDB_HOME": str(home / "nasdb")}))
    for host in hosts:
        output, _ = host.communicate(timeout=600)
        assert host.returncode == 0, output
    store = EventStore(db=db)
    trained_by: Counter[str] = Counter()
    for model_id in ids:
        events = store.read_stream(f"model-{model_id}")
        kinds = [e.type for e in events]
        assert kinds.count("JobClaimed") == 1 and kinds.count("TrainingCompleted") == 1, kinds
        trained_by[next(e.data["worker"] for e in events if e.type == "JobClaimed")] += 1
    assert sum(trained_by.values()) == 9 and len(trained_by) >= 2
    for i in range(3):  # nothing was written to a host's own folder: the database is the state
        # (a background projector's log may be there; no state is)
        written = sorted(p.name for p in (tmp_path / f"host{i}" / "nasdb").glob("*"))
        assert [name for name in written if not name.endswith(".log")] == []


def test_a_worker_holds_at_most_eight_connections(db: Database) -> None:
    """The README's count: a worker process (with its projector service) holds about seven
    connections while idle, never above eight."""
    queue(db, 0, epochs=1)
    workers = [start_worker(db, env={"PGAPPNAME": f"idle-worker-{i}"}) for i in range(2)]
    try:
        assert wait_for(db, "(select count(*) from workers where state = 'running') = 2", 600)
        counts = []
        for _ in range(20):
            with db.connect() as conn:
                row = conn.execute(
                    "select count(*) filter (where application_name = 'idle-worker-0'), "
                    "count(*) filter (where application_name = 'idle-worker-1') "
                    "from pg_stat_activity where datname = current_database()").fetchone()
            assert row is not None
            counts += [int(row[0]), int(row[1])]
            time.sleep(0.15)
        assert min(counts) >= 1 and max(counts) <= 8, counts
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=60)
