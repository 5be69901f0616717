"""Ingest throughput: the event store with all its guarantees against raw writes on the same server.

Every event is an ``EpochCompleted`` event from `nasdb.ingest.synthetic` (10 epochs per model
stream, per-class accuracies for 10 classes, the store's default metadata), so every mode writes
the same payload bytes. Each writer is its own process with its own connection and writes to its
own streams. Modes:

- **store-single**: one ``EventStore.append(stream, event)`` per event (one transaction each);
- **store-batch**: ``EventStore.append_batch`` of ``--batch-size`` events (whole streams of 10
  epochs; one ``nasdb_append_many`` call and one transaction per batch);

and the raw baselines, into a plain table ``raw_events`` of the same columns (identity position,
event_id, stream_id, version, type, schema_version, data jsonb, metadata jsonb, recorded_at) with
no lock, no checks, no function, no notification, no validation:

- **raw-insert**: one INSERT per transaction (compared with store-single);
- **raw-executemany**: ``executemany`` of one batch in one transaction (compared with store-batch);
- **raw-copy**: ``cursor.copy`` of one batch in one transaction (compared with store-batch).

``--raw-indexes pk`` (the default) gives the raw table only its primary key; ``same`` adds the
secondary indexes of ``events`` (event_id, (stream_id, version), (type, position)) as plain
indexes, which separates the cost of index maintenance from the cost of the guarantees.

Targets (issue 2, item 8): store-batch >= 50% of raw-copy; store-single >= 80% of raw-insert, for 1
and for ``--writers`` writers. Each line says PASS or MISS.

The server is ``--url``, else ``NASDB_DATABASE_URL``, else an embedded PostgreSQL started in a
temporary folder (deleted afterwards) with the server's default durability settings (fsync on).
Either way the run creates a fresh database on that server and drops it at the end.

Run: ``python benchmarks/ingest.py --quick`` (under 90 s) or without ``--quick`` for 20,000
single and 200,000 batched events. The first line printed is the exact command.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from _machine import machine_load  # benchmarks/_machine.py
from _server import bench_database, embedded_admin_url  # benchmarks/_server.py
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, NewEvent, default_metadata, event_id_for
from nasdb.ingest.synthetic import model_lifecycle
from nasdb.migrations import ensure_schema
from nasdb.schema import Database
from nasdb.schema import events as catalogue
from nasdb.schema.db import mask_url

EPOCHS_PER_STREAM = 10
SINGLE_TARGET = 0.80
MODES = ("raw-insert", "store-single", "raw-copy", "raw-executemany", "store-batch")
BATCH_TARGET = 0.50

RAW_COLUMNS = "event_id, stream_id, version, type, schema_version, data, metadata"
RAW_INSERT = f"insert into raw_events ({RAW_COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s)"
RAW_COPY = f"copy raw_events ({RAW_COLUMNS}) from stdin"


# --------------------------------------------------------------------------------------------------
# the payload: the same events, as NewEvents for the store and as rows for the raw table
# --------------------------------------------------------------------------------------------------


def writer_events(tag: str, writer: int, n: int) -> list[tuple[str, NewEvent]]:
    """``n`` (stream id, EpochCompleted event) pairs for one writer: streams of 10 epochs."""
    rng = random.Random(writer)  # the same payloads in every mode; only the stream names differ
    out: list[tuple[str, NewEvent]] = []
    model = 0
    while len(out) < n:
        model += 1
        stream = f"model-{tag}-w{writer}-m{model}"
        epochs = model_lifecycle(rng, f"{tag}-w{writer}-m{model}", epochs=EPOCHS_PER_STREAM)
        out.extend((stream, e) for e in epochs if e.type == "EpochCompleted")
    return out[:n]


def raw_rows(events: list[tuple[str, NewEvent]]) -> list[tuple[Any, ...]]:
    """The rows the store would write for these events (validated data, default metadata)."""
    base = default_metadata()
    versions: dict[str, int] = {}
    rows = []
    for stream, e in events:
        versions[stream] = versions.get(stream, 0) + 1
        event_id = event_id_for(stream, e.idempotency_key or str(uuid.uuid4()))
        rows.append(
            (
                event_id,
                stream,
                versions[stream],
                e.type,
                catalogue.current_version(e.type),
                catalogue.validate_payload(e.type, e.data),
                {**base, **(e.metadata or {})},
            )
        )
    return rows


def chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def by_stream(events: list[tuple[str, NewEvent]]) -> list[tuple[str, list[NewEvent], int | None]]:
    """Consecutive events of one stream grouped into one append_batch item."""
    items: list[tuple[str, list[NewEvent], int | None]] = []
    for stream, e in events:
        if items and items[-1][0] == stream:
            items[-1][1].append(e)
        else:
            items.append((stream, [e], None))
    return items


# --------------------------------------------------------------------------------------------------
# one writer process
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    mode: str
    url: str
    tag: str
    writer: int
    events: int
    batch: int


def run_writer(job: Job, barrier: Any, results: Any) -> None:
    """Set up (untimed), wait for every writer, then write ``job.events`` events."""
    try:
        events = writer_events(job.tag, job.writer, job.events)
        default_metadata()  # reads the git head once, outside the clock
        if job.mode.startswith("store"):
            store = EventStore(job.url)
            store._conn().execute("select 1")
            batches = [by_stream(c) for c in chunks(events, job.batch)]
            barrier.wait()
            t0 = time.monotonic()
            if job.mode == "store-single":
                for stream, e in events:
                    store.append(stream, e)
            else:
                for items in batches:
                    store.append_batch(items)
            t1 = time.monotonic()
            store.close()
        else:
            rows = [
                (eid, s, v, t, sv, Jsonb(d), Jsonb(m)) for eid, s, v, t, sv, d, m in raw_rows(events)
            ]
            with psycopg.connect(job.url, autocommit=True) as conn:
                conn.execute("select 1")
                barrier.wait()
                t0 = time.monotonic()
                if job.mode == "raw-insert":
                    for row in rows:
                        conn.execute(RAW_INSERT, row)
                elif job.mode == "raw-executemany":
                    for chunk in chunks(rows, job.batch):
                        with conn.transaction(), conn.cursor() as cur:
                            cur.executemany(RAW_INSERT, chunk)
                elif job.mode == "raw-copy":
                    for chunk in chunks(rows, job.batch):
                        with conn.transaction(), conn.cursor() as cur, cur.copy(RAW_COPY) as copy:
                            for row in chunk:
                                copy.write_row(row)
                else:
                    raise ValueError(f"unknown mode {job.mode}")
                t1 = time.monotonic()
        results.put((job.writer, t0, t1, len(events), None))
    except BaseException as e:  # report, then let the parent fail the run
        barrier.abort()
        results.put((job.writer, 0.0, 0.0, 0, f"{type(e).__name__}: {e}"))


@dataclass
class Measurement:
    mode: str
    writers: int
    events: int
    seconds: float
    median: float | None = None  # over rounds; None for one round's measurement
    low: float = 0.0
    high: float = 0.0

    @property
    def rate(self) -> float:
        if self.median is not None:
            return self.median
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def measure(mode: str, url: str, writers: int, total: int, batch: int, run: int) -> Measurement:
    """Run ``writers`` processes writing ``total`` events between them; wall time of the writes."""
    # fork: no set-up cost per writer (the parent holds no connection while writers run)
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(writers + 1)
    results = ctx.Queue()
    tag = f"r{run}{mode.split('-')[-1][:3]}{writers}"
    share = [total // writers + (1 if i < total % writers else 0) for i in range(writers)]
    procs = [
        ctx.Process(target=run_writer, args=(Job(mode, url, tag, i, share[i], batch), barrier, results))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    with suppress(Exception):  # a writer failed during set-up: its error is in the queue
        barrier.wait(timeout=300)
    got = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    errors = [f"writer {w}: {err}" for w, _, _, _, err in got if err]
    if errors:
        raise RuntimeError(f"{mode} with {writers} writers failed: " + "; ".join(errors))
    start = min(t0 for _, t0, _, _, _ in got)
    end = max(t1 for _, _, t1, _, _ in got)
    return Measurement(mode, writers, sum(n for _, _, _, n, _ in got), end - start)


# --------------------------------------------------------------------------------------------------
# the server and the throwaway database
# --------------------------------------------------------------------------------------------------




def create_raw_table(url: str, indexes: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            create table raw_events (
                position       bigint generated always as identity primary key,
                event_id       uuid        not null,
                stream_id      text        not null,
                version        integer     not null,
                type           text        not null,
                schema_version integer     not null default 1,
                data           jsonb       not null,
                metadata       jsonb       not null default '{}'::jsonb,
                recorded_at    timestamptz not null default clock_timestamp()
            )
            """
        )
        if indexes == "same":
            conn.execute("create index on raw_events (event_id)")
            conn.execute("create index on raw_events (stream_id, version)")
            conn.execute("create index on raw_events (type, position)")


def server_description(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        names = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay",
                 "shared_buffers", "max_wal_size")
        settings = {n: conn.execute(f"show {n}").fetchone() for n in names}
    shown = " ".join(f"{n}={(v or ('?',))[0]}" for n, v in settings.items())
    return [f"server: {(version or ('?',))[0]}", f"settings: {shown}"]


def payload_bytes(url: str, table: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"select avg(octet_length(data::text) + octet_length(metadata::text)) from {table}"
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def summarise(mode: str, writers: int, runs: list[Measurement]) -> Measurement:
    """One row from several rounds: their events and seconds summed, the median round's rate."""
    rates = sorted(r.rate for r in runs)
    mid = len(rates) // 2
    median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
    events, seconds = sum(r.events for r in runs), sum(r.seconds for r in runs)
    return Measurement(mode, writers, events, seconds, median, low=rates[0], high=rates[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in under 90 s")
    parser.add_argument("--url", help="a PostgreSQL server (default: NASDB_DATABASE_URL, else embedded)")
    parser.add_argument("--single", type=int,
                        help="events per single-event mode, over all rounds (20000; quick 1000)")
    parser.add_argument("--batched", type=int,
                        help="events per batched mode, over all rounds (200000; quick 20000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, median reported (4; quick 2)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per batch (500)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (8), besides 1")
    parser.add_argument("--raw-indexes", choices=["pk", "same"], default="pk",
                        help="raw table: primary key only (pk), or also the events table's indexes")
    args = parser.parse_args(argv)
    single = args.single or (1_000 if args.quick else 20_000)
    batched = args.batched or (20_000 if args.quick else 200_000)
    rounds = max(1, args.rounds or (2 if args.quick else 4))

    shown = [mask_url(a) for a in (sys.argv[1:] if argv is None else argv)]
    print("$ " + shlex.join(["python", "benchmarks/ingest.py", *shown]))
    sys.stdout.flush()
    admin_url = args.url or os.environ.get("NASDB_DATABASE_URL") or embedded_admin_url()
    counts = sorted({1, args.writers})

    with bench_database(admin_url) as url:
        ensure_schema(Database(url))
        create_raw_table(url, args.raw_indexes)
        for line in server_description(url):
            print(line)
        print(
            f"client: Python {platform.python_version()}, psycopg {psycopg.__version__} "
            f"({psycopg.pq.__impl__}), {machine_load()}; raw table indexes: {args.raw_indexes}; "
            f"batch size {args.batch_size} events ({EPOCHS_PER_STREAM} per stream); {rounds} rounds, "
            "each mode next to its baselines, order reversed every other round; events/s is the "
            "median round (min-max shown), seconds the sum over rounds"
        )
        sys.stdout.flush()

        runs: dict[tuple[str, int], list[Measurement]] = {}
        run = 0
        for r in range(rounds):
            groups: list[tuple[tuple[str, ...], int, int]] = [
                (("raw-insert", "store-single"), single, w) for w in counts
            ]
            groups += [(("raw-copy", "raw-executemany", "store-batch"), batched, w) for w in counts]
            for modes, total, writers in groups:
                share = total // rounds + (1 if r < total % rounds else 0)
                for mode in modes if r % 2 == 0 else modes[::-1]:
                    run += 1
                    m = measure(mode, url, writers, share, args.batch_size, run)
                    print(f"  round {r + 1}/{rounds}: {mode} x{writers}: {m.events} events in "
                          f"{m.seconds:.2f} s ({m.rate:,.0f}/s)", file=sys.stderr, flush=True)
                    runs.setdefault((mode, writers), []).append(m)
        print(
            f"payload: EpochCompleted, mean {payload_bytes(url, 'events'):.0f} bytes of data+metadata "
            f"per event in events, {payload_bytes(url, 'raw_events'):.0f} in raw_events"
        )
    keys = sorted(runs, key=lambda k: (k[1], MODES.index(k[0])))
    done = {key: summarise(*key, runs[key]) for key in keys}

    header = ("mode", "writers", "events", "seconds", "events/s", "min-max", "baseline", "base ev/s",
              "ratio", "target", "result")
    lines: list[tuple[str, ...]] = []
    verdicts: list[bool] = []
    comparisons: list[tuple[str, str, float | None]] = [("store-single", "raw-insert", SINGLE_TARGET)]
    comparisons += [("store-batch", "raw-copy", BATCH_TARGET), ("store-batch", "raw-executemany", None)]
    for (mode, writers), m in done.items():
        row = (mode, str(writers), str(m.events), f"{m.seconds:.2f}", f"{m.rate:,.0f}",
               f"{m.low:,.0f}-{m.high:,.0f}")
        if mode.startswith("raw"):
            lines.append((*row, "-", "-", "-", "-", "-"))
            continue
        for store_mode, base_mode, target in comparisons:
            if store_mode != mode:
                continue
            base = done[(base_mode, writers)]
            ratio = m.rate / base.rate
            if target is None:
                verdict, shown_target = "info", "-"
            else:
                verdicts.append(ratio >= target)
                verdict, shown_target = ("PASS" if ratio >= target else "MISS"), f">={target:.2f}"
            lines.append((*row, base_mode, f"{base.rate:,.0f}", f"{ratio:.2f}", shown_target, verdict))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5, 7, 8}
    for cols in [header, *lines]:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cols, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    print(
        f"targets: store-batch >= {BATCH_TARGET:.0%} of raw-copy, store-single >= {SINGLE_TARGET:.0%} "
        f"of raw-insert (1 and {args.writers} writers): {sum(verdicts)} of {len(verdicts)} met"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
