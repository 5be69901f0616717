"""Projection benchmark: can the read side keep up with the writers?

    python benchmarks/projection.py            # ~50,000 events (7,000 models), 3 repeats
    python benchmarks/projection.py --quick    # ~10,000 events, 1 repeat
    python benchmarks/projection.py --models 20000 --repeats 5 --url postgresql://...

On one synthetic log (``nasdb.ingest.synthetic.search_log``: models with their jobs, epochs,
per-class metrics, pins and tags), in a fresh database per repeat, three rates in events/s:

- the baseline, ``EventStore.append_batch`` (``--batch`` streams per call, every guarantee:
  ordering lock, concurrency check, idempotency, validation, NOTIFY);
- incremental projection: ``Projector.catch_up`` from the empty read models to the end of the
  log, in the projector's batches (what the projector service does when writers burst ahead);
- replay: ``Projector.replay``, dropping the read models and rebuilding them in one transaction.

Target: projection and replay at 1.0x the batched-append rate or better (so a burst of writers
never outruns the projector). Also printed: the time a replay of 10 million events would take
at the measured rate. The median of the repeats is reported, with the range, both per second of
wall clock and per CPU second (this process plus its server process, read from /proc when the
server runs on this machine): on a machine shared with other work the wall-clock rates of phases
run one after another move with the load, the CPU rates much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from _server import bench_database, embedded_admin_url  # benchmarks/_server.py

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.migrations import ensure_schema
from nasdb.schema import Database
from nasdb.schema.db import mask_url

TARGET_RATIO = 1.0
TEN_MILLION = 10_000_000


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds the server process behind ``conn`` has used (NaN when not on this machine)."""
    try:
        with open(f"/proc/{conn.info.backend_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_once(admin: str, streams: list[tuple[str, list[NewEvent]]], batch: int,
             project_batch: int) -> dict[str, tuple[float, float]]:
    """(wall seconds, CPU seconds of client and server) for append, incremental projection and
    replay of ``streams``, in a fresh database."""
    out: dict[str, tuple[float, float]] = {}
    with bench_database(admin, prefix="nasdb_pbench") as url:
        db = Database(url)
        ensure_schema(db)
        store = EventStore(db=db)
        server = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        for chunk in chunks(streams, batch):
            store.append_batch([(s, evs, None) for s, evs in chunk])
            # A new connection per batch, as benchmarks/query.py does: on one long-lived
            # connection the append function's cached plan goes stale as the log grows.
            server += backend_cpu(store._conn())
            store.close()
        out["append"] = (time.perf_counter() - t0, time.process_time() - c0 + server)
        projector = Projector(db, batch_size=project_batch)
        with projector.connect() as conn:
            s0, t0, c0 = backend_cpu(conn), time.perf_counter(), time.process_time()
            projector.catch_up(conn=conn)
            out["project"] = (time.perf_counter() - t0,
                              time.process_time() - c0 + backend_cpu(conn) - s0)
            s0, t0, c0 = backend_cpu(conn), time.perf_counter(), time.process_time()
            projector.replay(conn=conn)
            out["replay"] = (time.perf_counter() - t0,
                             time.process_time() - c0 + backend_cpu(conn) - s0)
        with db.connect() as conn:
            failures = conn.execute("select count(*) from projection_failures").fetchone()
        assert failures == (0,), f"{failures} events failed to project"
        db.engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~10,000 events, 1 repeat")
    parser.add_argument("--models", type=int, help="models in the log (7,000; quick 1,400)")
    parser.add_argument("--repeats", type=int, help="fresh databases measured (3; quick 1)")
    parser.add_argument("--batch", type=int, default=500, help="streams per append_batch (500)")
    parser.add_argument("--project-batch", type=int, default=5000,
                        help="events per projector batch (5000, the service's default)")
    parser.add_argument("--url", help="a PostgreSQL server (default NASDB_DATABASE_URL, else "
                        "an embedded one in a temporary folder, fsync off)")
    args = parser.parse_args(argv)
    models = args.models or (1_400 if args.quick else 7_000)
    repeats = args.repeats or (1 if args.quick else 3)
    print("$ python benchmarks/projection.py " + " ".join(
        mask_url(a) if "://" in a else a for a in (sys.argv[1:] if argv is None else argv)))
    admin = args.url or os.environ.get("NASDB_DATABASE_URL") or embedded_admin_url(
        ("fsync = off", "synchronous_commit = off", "full_page_writes = off"))
    streams = list(search_log(models, seed=0))
    events = sum(len(evs) for _, evs in streams)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; log: {models:,} models, {events:,} events; append batches of "
          f"{args.batch} streams, projector batches of {args.project_batch} events; "
          f"{repeats} repeat(s), median shown", flush=True)
    runs = []
    for i in range(repeats):
        runs.append(run_once(admin, streams, args.batch, args.project_batch))
        print(f"  repeat {i + 1}: " + ", ".join(
            f"{k} {wall:.2f} s ({cpu:.2f} CPU s)" for k, (wall, cpu) in runs[-1].items()),
            flush=True)
    names = {"append": "append_batch (baseline)", "project": "incremental projection",
             "replay": "replay"}
    ok = True
    for column, label in ((0, "wall clock"), (1, "per CPU second (client + server)")):
        rates = {k: [events / r[k][column] for r in runs] for k in names}
        base = statistics.median(rates["append"])
        print(f"events/s, {label}:")
        print(f"  {'phase':<26}{'events/s':>10}{'min-max':>18}{'vs append':>11}{'target':>9}"
              f"{'result':>8}")
        for key, name in names.items():
            median = statistics.median(rates[key])
            spread = f"{min(rates[key]):,.0f}-{max(rates[key]):,.0f}"
            if key == "append":
                print(f"  {name:<26}{median:>10,.0f}{spread:>18}{'1.00x':>11}{'-':>9}{'-':>8}")
                continue
            ratio = median / base
            result = "PASS" if ratio >= TARGET_RATIO else "MISS"
            if column == 0:
                ok = ok and ratio >= TARGET_RATIO
            print(f"  {name:<26}{median:>10,.0f}{spread:>18}{ratio:>10.2f}x{'>=1.00x':>9}"
                  f"{result:>8}")
        if column == 0:
            replay_rate = statistics.median(rates["replay"])
            print(f"  replaying 10,000,000 events at {replay_rate:,.0f} events/s would take "
                  f"{TEN_MILLION / replay_rate / 60:.1f} minutes")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
