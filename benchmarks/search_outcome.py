"""Search outcome on full Fashion-MNIST: what each method has found after a wall-time budget.

Each method gets the same wall budget (default 3600 s; ``--quick`` 300 s), one after the other on
the same machine, each nasdb run in its own throwaway database:

- **nasdb default**: ``nasdb study create --dataset fashion-mnist`` (no strategy: ASHA over epochs
  in the modern space with the modern recipe, promoting by Pareto fronts), driven in-process
  with one worker;
- **(a) REMAP random**: random sampling of REMAP's space with REMAP's training settings, as the
  seeds did (``--strategy random --space remap``);
- **(b) Optuna TPE direct**: Optuna's TPE run without nasdb (no events, no worker) on the same
  modern space encoding and recipe: ask, build, train, tell validation accuracy;
- **(c) cnn reference**: the `cnn` reference classifier trained for the whole budget (Adam 1e-3,
  no schedule), its test accuracy measured after every epoch;
- **previous** (only when named in ``--methods``): the default study as it was until December
  2026, for comparison: promoting by validation accuracy alone (``--set promote=primary``) and
  training with crops and flips from 2,000 optimizer steps (``augment_from_steps``);
- **nasdb-S** (only when named, e.g. ``nasdb-hyperband``): ``nasdb study create --dataset
  fashion-mnist --strategy S`` with S's own default settings in the modern space, the default's
  rivals for the place of default search.

Printed: for each method the best test accuracy under 100k and under 10k parameters at 25%, 50%,
75% and 100% of the budget (models are picked by validation accuracy, as a user would pick them;
reference classifiers never count as found models, so (c) is listed with its own accuracy and
"-" models), and the number of models trained. Models still training when the budget ends do not
count.

    python benchmarks/search_outcome.py --quick      # 4 x 300 s
    python benchmarks/search_outcome.py              # 4 x 3600 s

Needs PostgreSQL: --url / NASDB_DATABASE_URL (an admin URL: a database is created per run), or a
throwaway embedded server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _server import bench_database, embedded_admin_url  # benchmarks/_server.py

from nasdb.schema.errors import NasdbError
from nasdb.search.strategies import STRATEGIES
from nasdb.trainers.devices import cpu_name

FMNIST = "/usr/share/datasets/fashion-mnist"
BOUNDS = (100_000, 10_000)
SHARES = (0.25, 0.5, 0.75, 1.0)


@dataclass
class Outcome:
    """One method's finished models: (seconds since start, params, val acc, test acc)."""

    method: str
    budget: float
    models: list[tuple[float, int, float, float]] = field(default_factory=list)
    wall: float = 0.0
    #: set for a reference classifier: its ``models`` are its epochs, and none is a found model
    reference: str = ""

    def best(self, bound: int, share: float) -> tuple[float, int] | None:
        """Test accuracy and params of the best-by-validation model under ``bound`` finished by
        ``share`` of the budget."""
        seen = [m for m in self.models if m[0] <= self.budget * share and m[1] <= bound]
        if not seen:
            return None
        top = max(seen, key=lambda m: m[2])
        return top[3], top[1]

    def trained(self) -> str:
        """The models column: how many finished within the budget; "-" for a reference."""
        return "-" if self.reference else str(sum(1 for m in self.models if m[0] <= self.budget))


def _study_outcome(url: str, method: str, budget: int, limit: int | None,
                   create: Callable[[Any], str]) -> Outcome:
    from nasdb.ingest import EventStore, Projector
    from nasdb.migrations import ensure_schema
    from nasdb.schema import Database
    from nasdb.steer import run_study, stop_study
    from nasdb.trainers.registry import register_dataset
    from nasdb.trainers.worker import Worker

    db = Database(url)
    ensure_schema(db)
    store = EventStore(db=db)
    register_dataset(store, "fashion-mnist", path=FMNIST, limit=limit)
    Projector(db).catch_up()
    start = time.perf_counter()
    study_id = create(store)
    Projector(db).catch_up()
    worker = Worker(db, lease_seconds=600)
    timer = threading.Timer(budget, _end_study, (db, study_id))
    timer.start()
    try:
        run_study(db, study_id, train=lambda: worker.run(max_jobs=1), parallel=1,
                  max_seconds=budget)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    with contextlib.suppress(NasdbError):
        stop_study(store, study_id, "benchmark budget used")
    with db.connect() as conn:
        row = conn.execute("select created_at from studies where id = %s",
                           (study_id,)).fetchone()
        created = row[0] if row else None
        rows = conn.execute(
            "select extract(epoch from finished_at - %s), params, best_val_acc, test_acc "
            "from models where study_id = %s and status = 'done' and origin <> 'reference'",
            (created, study_id)).fetchall()
    db.engine.dispose()
    return Outcome(method, budget, [(float(s), int(p), float(v or 0), float(a))
                                    for s, p, v, a in rows], wall)


def _end_study(db: Any, study_id: str) -> None:
    """At the end of the budget: stop the study and cancel its models in flight, so training
    stops at the next epoch boundary instead of finishing the model."""
    from nasdb.ingest import EventStore, Projector
    from nasdb.steer import cancel, stop_study

    store = EventStore(db=db)
    with contextlib.suppress(NasdbError):
        stop_study(store, study_id, "benchmark budget used")
    Projector(db).catch_up()
    with db.connect() as conn:
        ids = [r[0] for r in conn.execute(
            "select id from models where study_id = %s and status in ('queued', 'training')",
            (study_id,)).fetchall()]
    for model_id in ids:
        with contextlib.suppress(NasdbError):
            cancel(store, model_id, "benchmark budget used")


def run_default(url: str, budget: int, limit: int | None) -> Outcome:
    from nasdb.steer import create_study

    return _study_outcome(url, "nasdb default (ASHA, modern)", budget, limit,
                          lambda store: create_study(store, "fashion-mnist",
                                                     budget={"seconds": budget}))


def run_previous(url: str, budget: int, limit: int | None) -> Outcome:
    """The default study as it was until December 2026: each rung's top third by validation
    accuracy alone, crops and flips from 2,000 optimizer steps (so in the 9-epoch rung)."""
    from dataclasses import replace

    from nasdb.search._hyperparameters import AUTO_AUGMENT_STEPS
    from nasdb.search.strategies import StudySpace
    from nasdb.steer import create_study

    modern = StudySpace.modern()
    hp = modern.hyperparameters
    space = replace(modern, hyperparameters=replace(
        hp, base=replace(hp.base, augment_from_steps=AUTO_AUGMENT_STEPS)))
    return _study_outcome(url, "previous default (promote=primary, augment from 2000)", budget,
                          limit, lambda store: create_study(store, "fashion-mnist",
                                                            budget={"seconds": budget},
                                                            settings={"promote": "primary"},
                                                            space=space))


def run_strategy(strategy: str) -> Callable[[str, int, int | None], Outcome]:
    """A nasdb study with ``strategy`` and its own default settings in the modern space."""
    from nasdb.steer import create_study

    def run(url: str, budget: int, limit: int | None) -> Outcome:
        return _study_outcome(url, f"nasdb {strategy} (modern)", budget, limit,
                              lambda store: create_study(store, "fashion-mnist", strategy,
                                                         budget={"seconds": budget}))
    return run


def run_remap_random(url: str, budget: int, limit: int | None) -> Outcome:
    from nasdb.search.strategies import StudySpace
    from nasdb.steer import create_study

    return _study_outcome(url, "(a) REMAP random", budget, limit,
                          lambda store: create_study(store, "fashion-mnist", "random",
                                                     budget={"seconds": budget},
                                                     space=StudySpace.remap()))


def run_optuna_tpe(budget: int, limit: int | None) -> Outcome:
    import optuna

    from nasdb.search import DatasetInfo
    from nasdb.search.strategies import StudySpace
    from nasdb.trainers.build import build_seeded
    from nasdb.trainers.datasets import load_dataset
    from nasdb.trainers.loop import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    data = load_dataset("fashion-mnist", FMNIST, limit=limit)
    info = DatasetInfo("fashion-mnist", data.input_shape, tuple(data.class_names),
                       hflip=data.hflip, train_size=data.split_sizes["train"])
    space = StudySpace.modern()
    dists = space.optuna_distributions()
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    out = Outcome("(b) Optuna TPE direct", budget)
    while time.perf_counter() - start < budget:
        trial = study.ask(dists)
        try:
            arch, hp = space.build_from_params(trial.params, info)
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        module = build_seeded(arch, data.input_shape, data.num_classes, hp.seed)
        result = train(module, data, hp, "cpu",
                       should_stop=lambda: time.perf_counter() - start > budget)
        params = sum(p.numel() for p in module.parameters())
        val = result.best_val_acc or 0.0
        out.models.append((time.perf_counter() - start, params, val, result.test_acc))
        study.tell(trial, val)
    out.wall = time.perf_counter() - start
    return out


def run_cnn_reference(budget: int, limit: int | None) -> Outcome:
    from nasdb.search import Architecture
    from nasdb.trainers.build import build_seeded
    from nasdb.trainers.datasets import load_dataset
    from nasdb.trainers.loop import EpochResult, evaluate, train

    start = time.perf_counter()
    data = load_dataset("fashion-mnist", FMNIST, limit=limit)
    module = build_seeded(Architecture(reference="cnn"), data.input_shape, data.num_classes, 0)
    params = sum(p.numel() for p in module.parameters())
    out = Outcome("(c) cnn reference", budget, reference="reference: not a found model")

    def on_epoch(r: EpochResult) -> bool:
        test = evaluate(module, data.x_test, data.y_test, num_classes=data.num_classes)
        now = time.perf_counter()
        out.models.append((now - start, params, r.val_acc, test.accuracy))
        return now - start > budget

    train(module, data, {"optimizer": "adam", "lr": 1e-3, "schedule": "none", "epochs": 10_000,
                         "early_stop_patience": 0, "batch_size": 128}, "cpu", on_epoch=on_epoch)
    out.wall = time.perf_counter() - start
    return out


STUDIES: dict[str, Callable[[str, int, int | None], Outcome]] = {
    "default": run_default, "previous": run_previous, "remap": run_remap_random}


def _cell(best: tuple[float, int] | None) -> str:
    return "-" if best is None else f"{best[0]:.4f} ({best[1] // 1000}k)"


def report(outcomes: Sequence[Outcome], budget: int) -> None:
    for bound in BOUNDS:
        label = f"{bound // 1000}k"
        print(f"\nbest test accuracy under {label} parameters (params in brackets) after "
              "elapsed seconds:")
        header = ["method", *(f"{int(budget * s)}s" for s in SHARES), "models", "wall s"]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for o in outcomes:
            cells = [o.method, *(_cell(o.best(bound, s)) for s in SHARES), o.trained(),
                     f"{o.wall:.0f}"]
            print("| " + " | ".join(cells) + " |")
    for o in outcomes:
        if o.reference and o.models:
            print(f"{o.method}: {o.models[-1][1]:,} params, test acc {o.models[-1][3]:.4f} after "
                  f"{len(o.models)} epochs ({o.reference})")


def study_runner(method: str) -> Callable[[str, int, int | None], Outcome] | None:
    """The nasdb study behind ``method`` (a name in `STUDIES`, or ``nasdb-S`` for a strategy S),
    or None for a method that is not a nasdb study."""
    strategy = method.removeprefix("nasdb-")
    if method.startswith("nasdb-") and strategy in STRATEGIES:
        return run_strategy(strategy)
    return STUDIES.get(method)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 s per method.")
    parser.add_argument("--budget-seconds", type=int, default=3600)
    parser.add_argument("--limit", type=int, default=None,
                        help="Training images (default: all 54,000 after the validation split).")
    parser.add_argument("--methods", default="default,remap,tpe,cnn",
                        help="Comma-separated subset of default, remap, tpe, cnn, and, not in "
                        "the default set, previous (the default study as it was until December "
                        "2026) and nasdb-S for a nasdb strategy S (e.g. nasdb-hyperband).")
    parser.add_argument("--url", default=os.environ.get("NASDB_DATABASE_URL"),
                        help="Admin URL of a PostgreSQL server (default: embedded).")
    args = parser.parse_args(argv)
    budget = 300 if args.quick else args.budget_seconds
    methods = [m for m in args.methods.split(",") if m]
    for method in methods:
        if method not in ("tpe", "cnn") and study_runner(method) is None:
            parser.error(f"unknown method {method!r}; choose from default, remap, tpe, cnn, "
                         f"previous, nasdb-{{{','.join(STRATEGIES)}}}")
    os.environ.setdefault("PGOPTIONS", "-c synchronous_commit=off")
    admin = args.url or embedded_admin_url(["fsync = off"])
    load_before = os.getloadavg()
    total = time.perf_counter()
    outcomes: list[Outcome] = []
    for method in methods:
        if runner := study_runner(method):
            with bench_database(admin, prefix="nasdb_outcome") as url:
                outcomes.append(runner(url, budget, args.limit))
        elif method == "tpe":
            outcomes.append(run_optuna_tpe(budget, args.limit))
        else:
            outcomes.append(run_cnn_reference(budget, args.limit))
        o = outcomes[-1]
        print(f"  {o.method}: {o.trained()} models in {o.wall:.0f}s; best under 100k "
              f"{_cell(o.best(100_000, 1.0))}, under 10k {_cell(o.best(10_000, 1.0))}",
              file=sys.stderr, flush=True)
    print(f"search outcome on Fashion-MNIST ({'all' if args.limit is None else args.limit} "
          f"training images, official 10k test split): {budget} s wall budget per method, "
          "1 repeat, one after the other")
    report(outcomes, budget)
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f} / after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs, {cpu_name()}); total {time.perf_counter() - total:.0f}s; command: "
          f"python benchmarks/search_outcome.py {shlex.join(sys.argv[1:] if argv is None else argv)}")


if __name__ == "__main__":
    main()
