"""The accuracy predictor on real trained models, against two baselines, and guided search.

In a fresh database this registers digits and (when Debian's files are installed) Fashion-MNIST
(``--fmnist-limit`` training images), samples tiny architectures with sampled hyperparameters from the
grammar, really trains each for ``--epochs`` epochs with `nasdb.trainers.worker.Worker`, and fits
the encoder and the dataset similarity with `nasdb.recommend` exactly as ``nasdb recommend fit``
does. Then, in the same run:

1. **Ranking held-out architectures.** The trained models are split (seeded, stratified by dataset)
   into 70 % for fitting and 30 % held out before anything is fitted (the encoder's corpus leaves
   the held-out architectures out). Three rankers are fitted on the 70 % and scored on the
   held-out 30 % by Kendall tau and Spearman rho between predicted and measured test accuracy (over
   all held-out models, and the mean over datasets):
   - ``predictor``: `AccuracyPredictor` (the paper's eight regressors, the best by 5-fold CV) on
     [dataset similarity, encoder vector, hyperparameters, log params, log FLOPs];
   - ``params-only``: the parameter count alone (more parameters = predicted more accurate);
   - ``hand-features``: a random forest on hand-made features: counts of each layer type, depth,
     log params, log FLOPs, the dataset (one-hot) and the same hyperparameters the predictor sees.
2. **Training saved by predictor-guided search.** With the predictor refitted on every trained
   model, two proposal runs on digits get the same budget of ``--budget`` trained models: random
   (the first ``budget`` samples of a fresh seed) and guided (`propose_guided`: ``budget /
   ratio`` samples, the top ``ratio`` by predicted accuracy per parameter, queued best first). Both
   are trained. The target accuracy is the best the random run reached; the cost of each run is
   the training time (sum of ``train_seconds``, in proposal order) spent until a model reaches the
   target. Saved = 1 - guided cost / random cost (negative: guided was slower; "never" when the
   guided run did not reach the target). Repeated over ``--repeats`` seeds.

Run: ``python benchmarks/recommend.py --quick`` (< 5 minutes on an idle 2-core machine). The server
is ``--url``, else ``NASDB_DATABASE_URL``, else an embedded PostgreSQL in a temporary folder; a
fresh database is created on it and dropped afterwards. The first line printed is the command.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _machine import machine_load  # benchmarks/_machine.py
from _server import bench_database, embedded_admin_url  # benchmarks/_server.py
from scipy import stats
from sklearn.ensemble import RandomForestRegressor

from nasdb.ingest import EventStore, Projector
from nasdb.migrations import ensure_schema
from nasdb.read import get_dataset
from nasdb.recommend import AccuracyPredictor, fit_encoder, fit_similarity, propose_guided
from nasdb.recommend._service import load_bundle, model_rows, trained_models
from nasdb.schema import Database
from nasdb.schema.db import mask_url
from nasdb.schema.vocabulary import OPTIMIZERS
from nasdb.search import Hyperparameters, HyperparameterSpace, SearchSpace, sample
from nasdb.steer import Proposal, propose
from nasdb.trainers.datasets import DEFAULT_FASHION_MNIST_DIR
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.worker import Worker

LAYER_TYPES = ("Conv2D", "Dense", "MaxPool2D", "AvgPool2D", "Dropout", "Activation", "BatchNorm",
               "Flatten", "GlobalAvgPool")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- server ---------------------------------------------------------------------------------




# --- training -------------------------------------------------------------------------------


def spaces(epochs: int) -> tuple[SearchSpace, HyperparameterSpace]:
    space = SearchSpace(filters=(4, 8, 16), units=(16, 32, 64), max_layers=6, max_params=30_000)
    hps = HyperparameterSpace(
        optimizers=("adam", "sgd"), lr_range=(1e-4, 3e-2), batch_sizes=(32, 128),
        epochs=(epochs,), base=Hyperparameters(epochs=epochs, early_stop_patience=0),
    )
    return space, hps


def train_all(db: Database) -> float:
    started = time.monotonic()
    Worker(db).run(idle_exit=True)
    Projector(db).catch_up()
    return time.monotonic() - started


# --- evaluation -----------------------------------------------------------------------------


def hand_features(model: dict[str, Any], datasets: Sequence[str]) -> list[float]:
    layers = model["architecture"].get("layers") or []
    counts = [sum(1 for layer in layers if layer.get("type") == t) for t in LAYER_TYPES]
    hp = model["hyperparameters"]
    return [
        *counts,
        float(len(layers)),
        math.log10(max(int(model["params"]), 1)),
        math.log10(max(int(model["flops"]), 1)),
        *[1.0 if model["dataset_id"] == d else 0.0 for d in datasets],
        math.log10(float(hp["lr"])),
        math.log2(float(hp["batch_size"])),
        *[1.0 if hp.get("optimizer") == o else 0.0 for o in OPTIMIZERS],
        float(hp.get("weight_decay", 0.0)),
    ]


def correlations(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    if len(actual) < 3 or np.ptp(predicted) == 0 or np.ptp(actual) == 0:
        return float("nan"), float("nan")
    return (float(stats.kendalltau(predicted, actual)[0]),
            float(stats.spearmanr(predicted, actual)[0]))


def split(models: list[dict[str, Any]], seed: int) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for dataset in sorted({m["dataset_id"] for m in models}):
        group = [m for m in models if m["dataset_id"] == dataset]
        order = rng.permutation(len(group))
        cut = round(0.7 * len(group))
        fit += [group[i] for i in order[:cut]]
        held += [group[i] for i in order[cut:]]
    return fit, held


def ranking_split(db: Database, seed: int) -> tuple[list[dict], list[dict]]:
    """The trained models split into (fit, held out), before anything is fitted."""
    models = [m for m in trained_models(db) if m["architecture"].get("layers") is not None]
    return split(models, seed)


def ranking(db: Database, seed: int, fit: list[dict], held: list[dict]
            ) -> tuple[list[dict[str, Any]], str, int, int]:
    models = fit + held
    bundle = load_bundle(db, predictor=False)
    fit_rows, _ = model_rows(bundle, fit)
    held_rows, _ = model_rows(bundle, held)
    y_fit = np.array([m["test_acc"] for m in fit])
    y_held = np.array([m["test_acc"] for m in held])
    datasets = sorted({m["dataset_id"] for m in models})

    predictor = AccuracyPredictor.fit(fit_rows, y_fit.tolist(), seed=seed, curve_epochs=0)
    predictions = {
        "predictor": predictor.predict(held_rows)[0],
        "params-only": np.log10(np.array([max(m["params"], 1) for m in held], dtype=float)),
    }
    forest = RandomForestRegressor(n_estimators=200, random_state=seed)
    forest.fit(np.array([hand_features(m, datasets) for m in fit]), y_fit)
    predictions["hand-features"] = forest.predict(
        np.array([hand_features(m, datasets) for m in held]))

    table = []
    for name, predicted in predictions.items():
        kendall, spearman = correlations(predicted, y_held)
        per = [correlations(predicted[[i for i, m in enumerate(held) if m["dataset_id"] == d]],
                            y_held[[i for i, m in enumerate(held) if m["dataset_id"] == d]])
               for d in datasets]
        table.append({
            "ranker": name, "kendall": kendall, "spearman": spearman,
            "kendall_per_dataset": float(np.nanmean([p[0] for p in per])),
            "spearman_per_dataset": float(np.nanmean([p[1] for p in per])),
            "mse": float(np.mean((np.clip(predicted, 0, 1) - y_held) ** 2))
            if name != "params-only" else float("nan"),
        })
    return table, predictor.best, len(fit), len(held)


def accuracies(db: Database, ids: Sequence[str]) -> list[tuple[float, float]]:
    with db.connect() as conn:
        rows = dict(
            (r[0], (float(r[1] or 0.0), float(r[2] or 0.0)))
            for r in conn.execute(
                "select id, test_acc, train_seconds from models where id = any(%s)", (list(ids),)
            ).fetchall()
        )
    return [rows.get(i, (0.0, 0.0)) for i in ids]


def cost_to_reach(run: list[tuple[float, float]], target: float) -> tuple[float, int] | None:
    seconds = 0.0
    for n, (acc, train_seconds) in enumerate(run, start=1):
        seconds += train_seconds
        if acc >= target - 1e-12:
            return seconds, n
    return None


def guided_vs_random(db: Database, budget: int, ratio: float, seed: int,
                     epochs: int) -> dict[str, Any]:
    from nasdb.recommend import fit_predictor

    fit_predictor(db, seed=seed)
    store = EventStore(db=db)
    space, hps = spaces(epochs)
    info = get_dataset(db, "digits")
    pairs = sample(info.input_shape, info.num_classes, budget, seed=10_000 + seed, space=space,
                   hyperparameters=hps)
    random_ids = propose(store, info, [Proposal(a, h, "sampled") for a, h in pairs])
    guided_ids = propose_guided(store, "digits", n_candidates=round(budget / ratio),
                                ratio=ratio, seed=20_000 + seed, space=space,
                                hyperparameter_space=hps)
    Projector(db).catch_up()
    train_all(db)
    random_run, guided_run = accuracies(db, random_ids), accuracies(db, guided_ids)
    target = max(a for a, _ in random_run)
    random_cost = cost_to_reach(random_run, target)
    guided_cost = cost_to_reach(guided_run, target)
    assert random_cost is not None
    saved = None if guided_cost is None else 1.0 - guided_cost[0] / max(random_cost[0], 1e-9)
    return {
        "seed": seed,
        "target": target,
        "random_best": target,
        "guided_best": max(a for a, _ in guided_run),
        "random_seconds": random_cost[0],
        "random_models": random_cost[1],
        "guided_seconds": None if guided_cost is None else guided_cost[0],
        "guided_models": None if guided_cost is None else guided_cost[1],
        "saved": saved,
        "random_total_seconds": sum(s for _, s in random_run),
        "guided_total_seconds": sum(s for _, s in guided_run),
    }


# --- main -----------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 5 min on 2 cores)")
    parser.add_argument("--url", help="PostgreSQL server (default NASDB_DATABASE_URL, else embedded)")
    parser.add_argument("--models", type=int, help="trained models per dataset (quick 30, full 80)")
    parser.add_argument("--epochs", type=int, help="epochs per model (quick 1, full 2)")
    parser.add_argument("--fmnist-limit", type=int,
                        help="Fashion-MNIST training images (quick 1000, full 3000)")
    parser.add_argument("--budget", type=int, help="trained models per guided/random run")
    parser.add_argument("--ratio", type=float, default=0.125, help="guided keeps this fraction")
    parser.add_argument("--repeats", type=int,
                        help="guided-vs-random repetitions, the median reported (quick 3, full 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    per_dataset = args.models or (30 if args.quick else 80)
    epochs = args.epochs or (1 if args.quick else 2)
    budget = args.budget or (8 if args.quick else 16)
    repeats = args.repeats or (3 if args.quick else 5)
    fmnist_limit = args.fmnist_limit or (1000 if args.quick else 3000)

    shown = [mask_url(a) for a in (sys.argv[1:] if argv is None else argv)]
    print("$ " + shlex.join(["python", "benchmarks/recommend.py", *shown]), flush=True)
    started = time.monotonic()
    admin_url = args.url or os.environ.get("NASDB_DATABASE_URL") or embedded_admin_url(
        ("fsync = off", "synchronous_commit = off"))
    with bench_database(admin_url) as url:
        db = Database(url)
        ensure_schema(db)
        store = EventStore(db=db)
        register_dataset(store, "digits")
        datasets = ["digits"]
        if (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists() or (
            DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte"
        ).exists():
            register_dataset(store, "fashion-mnist", limit=fmnist_limit)
            datasets.append("fashion-mnist")
        Projector(db).catch_up()
        space, hps = spaces(epochs)
        for i, dataset in enumerate(datasets):
            info = get_dataset(db, dataset)
            pairs = sample(info.input_shape, info.num_classes, per_dataset, seed=args.seed + i,
                           space=space, hyperparameters=hps)
            propose(store, info, [Proposal(a, h, "sampled") for a, h in pairs])
        Projector(db).catch_up()
        log(f"training {per_dataset} models on each of {', '.join(datasets)} ({epochs} epoch(s))")
        seconds = train_all(db)
        log(f"trained in {seconds:.0f} s; fitting encoder and similarity")
        fit, held = ranking_split(db, args.seed)
        # The held-out architectures stay out of the encoder's corpus: nothing fitted has seen
        # them (the sampled corpus uses its own seed).
        fit_encoder(db, 600 if args.quick else 2000, seed=args.seed + 1000,
                    epochs=4 if args.quick else 8, exclude_models=[m["id"] for m in held])
        fit_similarity(db, sample_size=128 if args.quick else 256, seed=args.seed)
        log("ranking held-out architectures")
        table, best, n_fit, n_held = ranking(db, args.seed, fit, held)
        log("guided vs random proposals")
        runs = [guided_vs_random(db, budget, args.ratio, args.seed + r, epochs)
                for r in range(repeats)]
        with db.connect() as conn:
            counts = conn.execute(
                "select dataset_id, count(*), avg(test_acc), min(test_acc), max(test_acc) "
                "from models where status = 'done' group by 1 order by 1").fetchall()
        db.engine.dispose()

    print(f"machine: Python {platform.python_version()}, {machine_load()}; total "
          f"{time.monotonic() - started:.0f} s; {repeats} guided-vs-random repeat(s)")
    print("trained models (after all runs): " + "; ".join(
        f"{d}: {n} (test acc mean {a:.3f}, {lo:.3f}-{hi:.3f})" for d, n, a, lo, hi in counts))
    print(f"\n1. ranking held-out architectures ({n_fit} fitted, {n_held} held out; "
          f"predictor's CV-chosen regressor: {best})")
    print(f"{'ranker':<15}{'kendall':>9}{'spearman':>10}{'kendall/ds':>12}{'spearman/ds':>13}"
          f"{'mse':>8}")
    for row in table:
        print(f"{row['ranker']:<15}{fmt(row['kendall']):>9}{fmt(row['spearman']):>10}"
              f"{fmt(row['kendall_per_dataset']):>12}{fmt(row['spearman_per_dataset']):>13}"
              f"{fmt(row['mse'], 4):>8}")
    print(f"\n2. predictor-guided vs random proposals on digits (budget {budget} trained models "
          f"each, guided keeps {args.ratio:g} of {round(budget / args.ratio)} samples)")
    print(f"{'seed':>4}{'target':>8}{'guided best':>12}{'random s':>10}{'(models)':>9}"
          f"{'guided s':>10}{'(models)':>9}{'saved':>8}")
    for run in runs:
        print(f"{run['seed']:>4}{fmt(run['target']):>8}{fmt(run['guided_best']):>12}"
              f"{fmt(run['random_seconds'], 1):>10}{run['random_models']:>9}"
              f"{fmt(run['guided_seconds'], 1):>10}{fmt(run['guided_models']):>9}"
              f"{fmt(run['saved'], 2):>8}")
    saved = [r["saved"] for r in runs if r["saved"] is not None]
    print(f"training saved to reach the random run's best accuracy: "
          f"{'median ' + fmt(float(np.median(saved)), 2) if saved else 'n/a'} "
          f"({len(saved)} of {len(runs)} guided runs reached it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
