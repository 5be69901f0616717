"""Search efficiency: every nasdb strategy against Optuna run directly, same budget of epochs.

On digits, each strategy gets the same budget of trained epochs and the same tiny search space,
for several seeds (the repeats; the median over seeds is reported). Reported: the hypervolume of
(test accuracy, log10 params) of the models trained so far when 25%, 50% and 100% of the budget
was used (reference point: accuracy 0 and the space's max_params; both axes normalised to [0, 1],
higher is better), the best test accuracy and the number of models. The baseline is Optuna's own
TPE and NSGA-II run directly, outside nasdb (no events, no worker): ask-and-tell on the same
encoding, training the same models with the same training loop, told the same objective values
(validation accuracy; and params for NSGA-II).

    python benchmarks/search.py --quick          # 6 epochs, 3 seeds
    python benchmarks/search.py --budget-epochs 60 --seeds 5

Every run works in its own throwaway database (benchmarks/_server.py) on ``--url`` /
NASDB_DATABASE_URL, else on an embedded server in a temporary folder: never the user's own
database, whose queued jobs the benchmark's worker would otherwise claim.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

STRATEGY_SETTINGS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population": 4, "sample": 2},
    "hyperband": {"R": 3, "eta": 3},
    "asha": {"R": 3, "eta": 3},
    "pbt": {"population": 3},
    "tpe": {"startup": 4},
    "nsga2": {"population_size": 4},
    "bohb": {"R": 3, "eta": 3, "min_points": 3},
}
SPACE = {"epochs": "1", "max_params": "10000", "max_layers": "5", "batch_size": "64,128",
         "filters": "8,16,32", "units": "16,32,64", "max_blocks": "2"}


def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """Area dominated by (acc, size) points, both in [0, 1], acc higher and size lower better,
    reference (0, 1)."""
    # sweep by size: the dominated region is the union of boxes [0, acc] x [size, 1]
    area = 0.0
    ordered = sorted(points, key=lambda p: p[1])
    best = 0.0
    for j, (acc, size) in enumerate(ordered):
        best = max(best, acc)
        right = ordered[j + 1][1] if j + 1 < len(ordered) else 1.0
        area += best * (right - size)
    return area


def _normalise(acc: float, params: int, max_params: int) -> tuple[float, float]:
    return acc, min(1.0, math.log10(max(params, 1)) / math.log10(max_params))


def curve(trials: Sequence[tuple[int, float, int]], budget: int, max_params: int
          ) -> dict[str, float]:
    """HV after 25/50/100% of the budget; ``trials`` are (epochs, test acc, params) in the order
    they finished."""
    out: dict[str, float] = {}
    for share in (0.25, 0.5, 1.0):
        used, points = 0, []
        for epochs, acc, params in trials:
            used += epochs
            if used > budget * share + 1e-9:
                break
            points.append(_normalise(acc, params, max_params))
        out[f"hv@{int(share * 100)}%"] = hypervolume(points)
    return out


def run_nasdb(db: Any, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    from nasdb.ingest import EventStore, Projector
    from nasdb.search.strategies import StudySpace
    from nasdb.steer import create_study, run_study
    from nasdb.trainers.worker import Worker

    store = EventStore(db=db)
    space, _ = StudySpace().refined(SPACE)
    name = f"bench-{strategy}-{seed}-{uuid.uuid4().hex[:6]}"
    create_study(store, "digits", strategy, budget={"epochs": budget},
                 settings={**STRATEGY_SETTINGS[strategy], "seed": seed, "parallel": 2},
                 space=space, name=name)
    Projector(db).catch_up()
    worker = Worker(db, lease_seconds=60)
    start = time.perf_counter()
    run_study(db, name, train=lambda: worker.run(max_jobs=1), poll_seconds=0.05)
    seconds = time.perf_counter() - start
    with db.connect() as conn:
        rows = conn.execute(
            "select epochs_trained, test_acc, params from models where study_id = %s and "
            "status = 'done' order by finished_at", (name,)).fetchall()
    return {"trials": [(int(e), float(a), int(p)) for e, a, p in rows], "seconds": seconds}


def run_optuna(kind: str, seed: int, budget: int) -> dict[str, Any]:
    """Optuna's TPE / NSGA-II directly (no nasdb): ask, build, train, tell."""
    import optuna

    from nasdb.search import DatasetInfo
    from nasdb.search.strategies import StudySpace
    from nasdb.trainers.build import build_module
    from nasdb.trainers.datasets import load_dataset
    from nasdb.trainers.loop import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset("digits")
    info = DatasetInfo("digits", data.input_shape, tuple(data.class_names))
    space, _ = StudySpace().refined(SPACE)
    dists = space.optuna_distributions()
    if kind == "tpe":
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=STRATEGY_SETTINGS["tpe"]["startup"]))
    else:
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.NSGAIISampler(
                                        population_size=4, seed=seed))
    used, trials = 0, []
    start = time.perf_counter()
    while used < budget:
        trial = study.ask(dists)
        try:
            arch, hp = space.build_from_params(trial.params, info)
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        module = build_module(arch, data.input_shape, data.num_classes)
        result = train(module, data, hp.to_dict(), "cpu")
        params = sum(p.numel() for p in module.parameters())
        used += result.epochs_trained
        trials.append((result.epochs_trained, result.test_acc, params))
        acc = result.best_val_acc or 0.0
        study.tell(trial, acc if kind == "tpe" else [acc, float(params)])
    return {"trials": trials, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 epochs, 3 seeds.")
    parser.add_argument("--url", help="a PostgreSQL server to create the throwaway database on "
                        "(default NASDB_DATABASE_URL, else an embedded one)")
    parser.add_argument("--budget-epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", default=",".join(STRATEGY_SETTINGS))
    args = parser.parse_args(argv)
    budget, seeds = (6, 3) if args.quick else (args.budget_epochs, args.seeds)
    strategies = [s for s in args.strategies.split(",") if s]

    # Search efficiency, not durability, is measured: commits need not wait for the disk.
    os.environ.setdefault("PGOPTIONS", "-c synchronous_commit=off")
    from _machine import machine_load  # benchmarks/_machine.py
    from _server import bench_database, embedded_admin_url  # benchmarks/_server.py

    from nasdb.migrations import ensure_schema
    from nasdb.schema import Database

    admin = args.url or os.environ.get("NASDB_DATABASE_URL") or embedded_admin_url(
        ("fsync = off", "synchronous_commit = off"))
    print(f"machine: {machine_load()}", flush=True)
    with bench_database(admin, prefix="nasdb_sbench") as url:
        db = Database(url)
        ensure_schema(db)
        _compare(db, strategies, budget, seeds)
        db.engine.dispose()
    print(f"command: python benchmarks/search.py {shlex.join(sys.argv[1:] if argv is None else argv)}"
          f"; at the end: {machine_load()}")


def _compare(db: Any, strategies: list[str], budget: int, seeds: int) -> None:
    from nasdb.ingest import EventStore, Projector
    from nasdb.trainers.registry import register_dataset

    register_dataset(EventStore(db=db), "digits")
    Projector(db).catch_up()
    max_params = int(SPACE["max_params"])
    runs: list[tuple[str, dict[str, Any]]] = []
    total = time.perf_counter()
    for seed in range(seeds):
        for strategy in strategies:
            runs.append((f"nasdb {strategy}", run_nasdb(db, strategy, seed, budget)))
            print(f"  seed {seed} nasdb {strategy}: {len(runs[-1][1]['trials'])} models",
                  file=sys.stderr)
        for kind in ("tpe", "nsga2"):
            runs.append((f"optuna {kind} (direct)", run_optuna(kind, seed, budget)))
            print(f"  seed {seed} optuna {kind}: {len(runs[-1][1]['trials'])} models",
                  file=sys.stderr)
    print(f"search efficiency on digits: budget {budget} trained epochs, {seeds} seeds; "
          "hypervolume of (test acc, log10 params / log10 max_params), median over the seeds")
    header = ("method", "hv@25%", "hv@50%", "hv@100%", "best acc", "models", "seconds")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for method in dict.fromkeys(name for name, _ in runs):
        mine = [r for name, r in runs if name == method]
        curves = [curve(r["trials"], budget, max_params) for r in mine]
        cells = [method] + [f"{statistics.median(c[k] for c in curves):.3f}"
                            for k in ("hv@25%", "hv@50%", "hv@100%")]
        best = statistics.median(max((a for _, a, _ in r["trials"]), default=0) for r in mine)
        cells.append(f"{best:.3f}")
        cells.append(f"{statistics.median(len(r['trials']) for r in mine):.1f}")
        cells.append(f"{statistics.median(r['seconds'] for r in mine):.1f}")
        print("| " + " | ".join(cells) + " |")
    print(f"total {time.perf_counter() - total:.0f}s")


if __name__ == "__main__":
    main()
