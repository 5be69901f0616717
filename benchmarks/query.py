"""Query-language benchmark: typical queries at 1,000,000 models, against pandas on the same data.

    python benchmarks/query.py            # 1,000,000 models
    python benchmarks/query.py --quick    # 50,000 models, under 3 minutes
    python benchmarks/query.py --models 200000 --url postgresql://...

Loading. A fresh database (on NASDB_DATABASE_URL / --url, else an embedded PostgreSQL in a temporary
folder) gets ``nasdb.ingest.synthetic.search_log(N)``: models with layers, epochs and per-class
metrics. The first ``--store-models`` models go through the real write path - ``EventStore.
append_batch`` in batches of ``--batch`` streams, then ``Projector(db).catch_up()`` - and both are
timed. The store and the projector run at a few thousand events per second on this hardware (the
numbers are printed), so at 1M models (~6.7M events) that path would take hours; the remaining
models' read-model rows (rm_models, rm_epochs, rm_class_metrics - what the queries read) are
derived from the very same synthetic events by this script, mirroring the projection handlers, and
written with COPY. That shortcut is reported as such, with the time the real path would have taken
at the measured rates, and checked: for models of the store-path sample the derived rows are
compared with the projector's. ``--store-models N`` with N = ``--models`` uses the real path only.

Timing. Each query runs through ``nasdb.query.run(text, db)`` (a new connection, the catalog
lookup, compile, execute, fetch) ``--runs`` times; the median is reported. The same answer is then
computed by a straightforward pandas implementation on DataFrames loaded once from the views
(untimed), also the median of ``--runs``; the answers must agree (same ids / groups / counts).
Target: every query under 300 ms at 1M models.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pandas as pd
import psycopg
from _server import bench_database, embedded_admin_url  # benchmarks/_server.py
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.migrations import ensure_schema
from nasdb.query import run
from nasdb.schema import Database
from nasdb.schema.db import mask_url

TARGET_MS = 300.0
CLASS = "3"  # the synthetic dataset's classes are the digits 0-9


# --------------------------------------------------------------------------------------------
# the server and the throwaway database
# --------------------------------------------------------------------------------------------




# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Load:
    store_models: int = 0
    store_events: int = 0
    append_s: float = 0.0
    project_s: float = 0.0
    copy_models: int = 0
    copy_events: int = 0
    copy_s: float = 0.0
    generate_s: float = 0.0


def through_store(db: Database, streams: list[tuple[str, list[NewEvent]]], batch: int,
                  load: Load) -> None:
    """The real write path: append_batch, then the projector; both timed."""
    store = EventStore(db=db)
    t0 = time.perf_counter()
    for chunk in chunked(streams, batch):
        store.append_batch([(s, evs, None) for s, evs in chunk])
        # A new connection per batch: on one long-lived connection nasdb_append's cached generic
        # plan for its idempotency check goes stale as the log grows and appends slow down
        # linearly (reported; not worked around in ingest/).
        store.close()
    load.append_s = time.perf_counter() - t0
    load.store_models = sum(1 for s, _ in streams if s.startswith("model-"))
    load.store_events = sum(len(evs) for _, evs in streams)
    t0 = time.perf_counter()
    Projector(db, batch_size=5000).catch_up()
    load.project_s = time.perf_counter() - t0


def _ts(base: datetime, i: int) -> datetime:
    return base + timedelta(microseconds=i)


def read_model_rows(
    model_id: str, events: list[NewEvent], at: datetime
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rm_models row, rm_epochs rows and rm_class_metrics rows the projection handlers build
    from one synthetic model stream (``at`` stands in for the events' recorded_at)."""
    p = events[0].data
    hp = p["hyperparameters"]
    status, priority, epochs_trained = "proposed", 0, 0
    best = last_val = last_val_loss = last_train_loss = None
    test_acc = test_loss = latency = train_s = finished = None
    pinned, tags = False, []
    epochs: list[tuple[Any, ...]] = []
    metrics: list[tuple[Any, ...]] = []
    for e in events[1:]:
        d = e.data
        if e.type == "TrainingRequested":
            status, priority = "queued", d["priority"]
        elif e.type == "JobClaimed":
            status = "training"
        elif e.type == "EpochCompleted":
            epochs.append((model_id, d["epoch"], d["train_loss"], d["train_acc"], d["val_loss"],
                           d["val_acc"], d["lr"], d["seconds"], Jsonb(d["class_acc"]), at))
            epochs_trained, last_val, last_val_loss = d["epoch"], d["val_acc"], d["val_loss"]
            last_train_loss = d["train_loss"]
            best = d["val_acc"] if best is None else max(best, d["val_acc"])
        elif e.type == "TrainingCompleted":
            status, test_acc, test_loss = "done", d["test_acc"], d["test_loss"]
            latency, train_s, epochs_trained = d["latency_ms"], d["train_seconds"], d["epochs_trained"]
            finished = at
            metrics = [
                (model_id, i, p["dataset_id"], name, d["class_accuracy"][i],
                 d["class_precision"][i], d["class_recall"][i], d["class_specificity"][i],
                 d["class_support"][i])
                for i, name in enumerate(d["class_names"])
            ]
        elif e.type == "Pinned":
            pinned = True
        elif e.type == "Tagged" and d["tag"] not in tags:
            tags.append(d["tag"])
        elif e.type not in {"ArchitectureProposed"}:
            raise ValueError(f"the loader does not know {e.type}")
    model = (
        model_id, p.get("study_id"), p["dataset_id"], p["origin"], p["parent_id"], p["changes"],
        Jsonb(p["architecture"]), p["layer_types"], p["glyph"], p["depth"], p["params"],
        p["flops"], hp.get("optimizer"), hp.get("lr"), hp.get("weight_decay"),
        hp.get("batch_size"), hp.get("epochs"), Jsonb(hp), status, priority, epochs_trained, best,
        last_val, last_val_loss, last_train_loss, test_acc, test_loss, latency, train_s, pinned,
        tags, p.get("predicted_acc"), at, finished,
    )
    return model, epochs, metrics


MODEL_COLUMNS = (
    "id, study_id, dataset_id, origin, parent_id, changes, architecture, layer_types, glyph, depth,"
    " params, flops, optimizer, lr, weight_decay, batch_size, epochs_planned, hyperparameters,"
    " status, priority, epochs_trained, best_val_acc, last_val_acc, last_val_loss,"
    " last_train_loss, test_acc, test_loss, latency_ms, train_seconds, pinned, tags,"
    " predicted_acc, created_at, finished_at"
)
EPOCH_COLUMNS = "model_id, epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds, " \
                "class_acc, recorded_at"
METRIC_COLUMNS = "model_id, class_index, dataset_id, class_name, accuracy, precision, recall, " \
                 "specificity, support"


def through_copy(db: Database, streams: Iterator[tuple[str, list[NewEvent]]], first: int,
                 load: Load, chunk: int = 20_000) -> None:
    """The shortcut: read-model rows derived from the same events, written with COPY."""
    base = datetime.now(UTC)
    t0 = time.perf_counter()
    with db.connect() as conn:
        conn.execute("set synchronous_commit = off")
        for part in chunked(streams, chunk):
            models, epochs, metrics = [], [], []
            for i, (stream, events) in enumerate(part, first + load.copy_models):
                m, ep, cm = read_model_rows(stream.removeprefix("model-"), events, _ts(base, i))
                models.append(m)
                epochs.extend(ep)
                metrics.extend(cm)
                load.copy_events += len(events)
            load.copy_models += len(part)
            with conn.cursor() as cur:
                for table, columns, rows in (("rm_models", MODEL_COLUMNS, models),
                                             ("rm_epochs", EPOCH_COLUMNS, epochs),
                                             ("rm_class_metrics", METRIC_COLUMNS, metrics)):
                    with cur.copy(f"copy {table} ({columns}) from stdin") as copy:
                        for row in rows:
                            copy.write_row(row)
            conn.commit()
    load.copy_s = time.perf_counter() - t0


def check_shortcut(db: Database, sample: list[tuple[str, list[NewEvent]]]) -> int:
    """Compare the derived rows with what the projector wrote for the store-path models."""
    cols = ("status", "params", "flops", "glyph", "epochs_trained", "best_val_acc", "test_acc",
            "latency_ms", "pinned", "tags", "origin", "parent_id", "optimizer", "epochs_planned")
    index = {c.strip(): i for i, c in enumerate(MODEL_COLUMNS.split(","))}
    bad = 0
    now = datetime.now(UTC)
    with db.connect() as conn:
        for stream, events in sample:
            mid = stream.removeprefix("model-")
            m, ep, cm = read_model_rows(mid, events, now)
            row = conn.execute(f"select {', '.join(cols)} from rm_models where id = %s",
                               (mid,)).fetchone()
            want = tuple(m[index[c]] for c in cols)
            n_ep = conn.execute("select count(*) from rm_epochs where model_id = %s",
                                (mid,)).fetchone()
            got_cm = conn.execute(
                "select class_name, accuracy from rm_class_metrics where model_id = %s "
                "order by class_index", (mid,)).fetchall()
            if (row != want or n_ep != (len(ep),)
                    or got_cm != [(r[3], r[4]) for r in cm]):
                bad += 1
                if bad <= 3:
                    print(f"  mismatch for {mid}: projector {row} vs derived {want}")
    return bad


# --------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------


def frame(conn: psycopg.Connection[Any], sql: str, **kwargs: Any) -> pd.DataFrame:
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"copy ({sql}) to stdout with (format csv, header)") as cp:
        for data in cp:
            buf.write(data)
    buf.seek(0)
    return pd.read_csv(buf, **kwargs)


def load_frames(db: Database) -> dict[str, pd.DataFrame]:
    with db.connect() as conn:
        models = frame(conn, "select id, params, test_acc, origin, status, epochs_trained, "
                       "created_at from models", parse_dates=["created_at"],
                       dtype={"id": str, "origin": "category", "status": "category"})
        metrics = frame(conn, "select model_id, class_name, accuracy from class_metrics",
                        dtype={"model_id": str, "class_name": str})
        epochs = frame(conn, "select model_id, val_acc from epochs", dtype={"model_id": str})
    return {"models": models, "class_metrics": metrics, "epochs": epochs}


def skyline(df: pd.DataFrame, o1: str, o2: str) -> pd.DataFrame:
    """Rows of ``df`` not dominated when minimising o1 and o2 (duplicates of a front point kept)."""
    df = df.sort_values([o1, o2])
    best_upto = df.groupby(o1, sort=True)[o2].min().cummin()
    best_before = best_upto.shift(1)
    upto = df[o1].map(best_upto)
    before = df[o1].map(best_before)
    keep = (df[o2] == upto) & (before.isna() | (df[o2] < before))
    return df[keep]


def pandas_queries(f: dict[str, pd.DataFrame]) -> dict[str, Callable[[], Any]]:
    models, cm, ep = f["models"], f["class_metrics"], f["epochs"]

    def newest(df: pd.DataFrame, n: int = 1000) -> list[str]:
        return list(df.sort_values(["created_at", "id"], ascending=[False, True])["id"].head(n))

    def pareto() -> list[str]:
        small = models[models["params"] < 100_000]
        cls = cm[cm["class_name"] == CLASS][["model_id", "accuracy"]]
        both = small.merge(cls, left_on="id", right_on="model_id").dropna(subset=["accuracy"])
        both = both.assign(o1=-both["accuracy"], o2=both["params"])
        return sorted(skyline(both, "o1", "o2")["id"])

    def top() -> list[str]:
        done = models.dropna(subset=["test_acc"])
        return list(done.sort_values(["test_acc", "id"], ascending=[False, True])["id"].head(10))

    def group() -> list[tuple[str, int]]:
        g = models.groupby("origin", observed=True)["test_acc"].agg(["size", "max", "mean"])
        return sorted((str(o), int(r["size"])) for o, r in g.iterrows())

    def class_filter() -> list[str]:
        cls = cm[(cm["class_name"] == CLASS) & (cm["accuracy"] > 0.99)]
        return newest(models[models["id"].isin(cls["model_id"])])

    def count() -> int:
        return int((models["params"] < 1_000_000).sum())

    def epoch_aggregate() -> list[str]:
        best = ep.groupby("model_id")["val_acc"].max()
        return newest(models[models["id"].isin(best.index[best > 0.85])])

    return {"pareto": pareto, "top": top, "group": group, "class": class_filter,
            "count": count, "epochs": epoch_aggregate}


QUERIES = [
    ("pareto", f"pareto params<100k class={CLASS}",
     lambda r: sorted(x["id"] for x in r.rows)),
    ("top", "top 10 by acc", lambda r: [x["id"] for x in r.rows]),
    ("group", "group by origin", lambda r: sorted((x["origin"], x["count"]) for x in r.rows)),
    ("class", f"class={CLASS} acc>0.99", lambda r: [x["id"] for x in r.rows]),
    ("count", "count params<1M", lambda r: r.rows[0]["count"]),
    ("epochs", "max(val_acc)>0.85", lambda r: [x["id"] for x in r.rows]),
]


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def describe_answer(answer: Any) -> str:
    return f"{answer:,}" if isinstance(answer, int) else f"{len(answer)} rows"


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def load_data(db: Database, n: int, store_models: int, batch: int, seed: int) -> Load:
    load = Load()
    log = search_log(n, seed=seed)
    t0 = time.perf_counter()
    head = [next(log) for _ in range(store_models + 1)]  # the dataset stream, then models
    load.generate_s = time.perf_counter() - t0
    print(f"store path: {store_models:,} models, {sum(len(e) for _, e in head):,} events ...",
          flush=True)
    through_store(db, head, batch, load)
    print(f"  append_batch ({batch} streams a batch): {load.append_s:.1f} s, "
          f"{load.store_events / load.append_s:,.0f} events/s", flush=True)
    print(f"  Projector.catch_up: {load.project_s:.1f} s, "
          f"{load.store_events / load.project_s:,.0f} events/s", flush=True)
    sample = head[1:201]
    rest = n - store_models
    if rest:
        print(f"shortcut: {rest:,} more models' read-model rows derived from the same synthetic "
              "events and written with COPY ...", flush=True)
        through_copy(db, log, store_models + 1, load)
        print(f"  generated and copied in {load.copy_s:.1f} s ({load.copy_events:,} events' worth)",
              flush=True)
        bad = check_shortcut(db, sample)
        print(f"  check: derived rows equal the projector's for {len(sample) - bad} of "
              f"{len(sample)} store-path models", flush=True)
        if bad:
            raise SystemExit("the shortcut does not match the projector")
        events = load.store_events + load.copy_events
        est = events / (load.store_events / load.append_s) + events / (
            load.store_events / load.project_s)
        print(f"  the real path for all {n:,} models ({events:,} events) would take ~{est / 60:,.0f}"
              " min at the measured rates", flush=True)
    t0 = time.perf_counter()
    with db.connect(autocommit=True) as conn:
        conn.execute("vacuum analyze rm_models, rm_epochs, rm_class_metrics")
    print(f"vacuum analyze: {time.perf_counter() - t0:.1f} s", flush=True)
    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 models (under 3 minutes)")
    parser.add_argument("--models", type=int, help="models to generate (1,000,000; quick 50,000)")
    parser.add_argument("--store-models", type=int,
                        help="models through append_batch + Projector (20,000; quick 5,000)")
    parser.add_argument("--batch", type=int, default=1000, help="streams per append_batch (1000)")
    parser.add_argument("--runs", type=int, default=7, help="runs per query; median shown (7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="a PostgreSQL server (default NASDB_DATABASE_URL, else "
                        "an embedded one in a temporary folder)")
    parser.add_argument("--reuse", metavar="URL", help="query an already loaded database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    n = args.models or (50_000 if args.quick else 1_000_000)
    store_models = min(n, args.store_models or (5_000 if args.quick else 20_000))

    print("$ python benchmarks/query.py " + " ".join(
        mask_url(a) if "://" in a else a for a in (sys.argv[1:] if argv is None else argv)))
    started = time.perf_counter()
    if args.reuse:
        return bench(Database(args.reuse), n, args.runs, started)
    admin = args.url or os.environ.get("NASDB_DATABASE_URL") or embedded_admin_url(
        ("fsync = off", "synchronous_commit = off", "full_page_writes = off"))
    with bench_database(admin, prefix="nasdb_qbench", keep=args.keep) as url:
        db = Database(url)
        ensure_schema(db)
        with db.connect() as conn:
            version = conn.execute("select version()").fetchone()
        print(f"server: {(version or ('?',))[0].split(' on ')[0]}; {os.cpu_count()} CPUs; "
              f"{n:,} models, seed {args.seed}", flush=True)
        load_data(db, n, store_models, args.batch, args.seed)
        code = bench(db, n, args.runs, started)
        if args.keep:
            print(f"database: {mask_url(url)}")
        db.engine.dispose()
        return code


def bench(db: Database, n: int, runs: int, started: float) -> int:
    with db.connect() as conn:
        counts = conn.execute(
            "select (select count(*) from models), (select count(*) from epochs), "
            "(select count(*) from class_metrics)").fetchone()
    assert counts is not None
    print(f"read models: {counts[0]:,} models, {counts[1]:,} epochs, {counts[2]:,} class metrics")
    t0 = time.perf_counter()
    frames = load_frames(db)
    print(f"pandas: views loaded into DataFrames in {time.perf_counter() - t0:.1f} s (untimed)",
          flush=True)
    reference = pandas_queries(frames)
    header = ("query", "answer", "nasdb ms", "pandas ms", "pandas/nasdb", "target", "same")
    lines = []
    ok = True
    for key, text, answer_of in QUERIES:
        run(text, db)  # warm: catalog, plans, buffers
        ms, result = median_ms(partial(run, text, db), runs)
        pd_ms, expected = median_ms(reference[key], runs)
        got = answer_of(result)
        same = got == expected
        met = ms < TARGET_MS
        ok = ok and same and met
        lines.append((text, describe_answer(got), f"{ms:,.1f}", f"{pd_ms:,.1f}",
                      f"{pd_ms / ms:,.2f}x", "PASS" if met else "MISS", "yes" if same else "NO"))
        if not same:
            print(f"  {text}: nasdb {str(got)[:200]} != pandas {str(expected)[:200]}")
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for cols in [header, *lines]:
        print("  ".join(c.rjust(w) if i in {2, 3, 4} else c.ljust(w)
                        for i, (c, w) in enumerate(zip(cols, widths, strict=True))).rstrip())
    passed = sum(1 for line in lines if line[5] == "PASS")
    print(f"target: every query under {TARGET_MS:.0f} ms at {n:,} models (median of {runs} runs): "
          f"{passed} of {len(lines)} met; answers agree: "
          f"{'all' if all(line[6] == 'yes' for line in lines) else 'NOT ALL'}")
    print(f"total wall time {time.perf_counter() - started:,.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
