"""Hyperparameter importance of a study: Optuna's fANOVA and PED-ANOVA, single and pairwise, and
the marginal curve of each hyperparameter.

The study's finished trials are rebuilt into an in-memory Optuna study (the log is the only
source of truth). Trials proposed through the Optuna encoding (TPE, NSGA-II, BOHB) contribute
their params; every other trial is described by its training hyperparameters (lr, weight decay,
batch size, optimizer, epochs) and architecture features (depth, conv layers, dense layers).
Parameters that never vary are left out.

Pairwise importance: for each pair of the most important parameters, the pair is replaced by one
categorical parameter whose value is the pair's joint bin (numeric values in quantile bins), and
the evaluators are run again; ``interaction`` is the pair's fANOVA importance minus the two single
importances (how much the pair explains beyond each alone).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from nasdb.ingest import EventStore, wait_projected
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidRequest
from nasdb.search.strategies import StudyView, Trial, objective_direction

from ._study import load_view

MIN_TRIALS = 4


def _features(view: StudyView, trial: Trial) -> dict[str, Any]:
    params = trial.proposal.get("params")
    if isinstance(params, dict):
        return dict(params)
    hp, arch = trial.hyperparameters, trial.architecture
    return {
        "lr": hp.lr, "weight_decay": hp.weight_decay, "batch_size": str(hp.batch_size),
        "optimizer": hp.optimizer, "epochs": hp.epochs, "depth": len(arch.layers),
        "conv_layers": sum(1 for x in arch.layers if x.TYPE == "Conv2D"),
        "dense_layers": sum(1 for x in arch.layers if x.TYPE == "Dense"),
    }


def _distributions(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    names = sorted({k for r in rows for k in r})
    for name in names:
        values = [r[name] for r in rows if name in r]
        if len(values) < len(rows) or len({repr(v) for v in values}) < 2:
            continue
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[name] = IntDistribution(min(values), max(values))
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            low, high = float(min(values)), float(max(values))
            out[name] = FloatDistribution(low, high, log=low > 0 and name in ("lr",))
        else:
            out[name] = CategoricalDistribution(sorted({str(v) for v in values}))
    return out


def _study(rows: Sequence[dict[str, Any]], values: Sequence[float], direction: str,
           distributions: dict[str, Any]) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if direction == "maximize" else "minimize")
    for row, value in zip(rows, values, strict=True):
        params = {k: (str(row[k]) if hasattr(d, "choices") else row[k])
                  for k, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=value))
    return study


def _evaluate(study: Any, seed: int) -> tuple[dict[str, float], dict[str, float] | None]:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    fanova = FanovaImportanceEvaluator(seed=seed).evaluate(study)
    try:
        ped: dict[str, float] | None = PedAnovaImportanceEvaluator().evaluate(study)
    except (ValueError, RuntimeError, ZeroDivisionError):
        ped = None
    return dict(fanova), (dict(ped) if ped is not None else None)


def _bin(value: Any, edges: list[float] | None) -> str:
    if edges is None:
        return str(value)
    index = sum(1 for e in edges if float(value) > e)
    return f"b{index}"


def _edges(values: Sequence[Any], numeric: bool, bins: int = 3) -> list[float] | None:
    if not numeric:
        return None
    ordered = sorted(float(v) for v in values)
    return [ordered[min(len(ordered) - 1, math.floor(len(ordered) * i / bins))]
            for i in range(1, bins)]


def _marginal(name: str, dist: Any, rows: Sequence[dict[str, Any]], values: Sequence[float]
              ) -> list[dict[str, Any]]:
    numeric = not hasattr(dist, "choices")
    groups: dict[str, list[tuple[float, float]]] = {}
    edges = _edges([r[name] for r in rows], numeric, bins=min(5, len(rows)))
    for r, v in zip(rows, values, strict=True):
        x = float(r[name]) if numeric else 0.0
        groups.setdefault(_bin(r[name], edges) if numeric else str(r[name]), []).append((x, v))
    out = []
    for key, pairs in sorted(groups.items(), key=lambda kv: min(p[0] for p in kv[1])
                             if numeric else kv[0]):
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        point: dict[str, Any] = {"n": len(ys), "mean": sum(ys) / len(ys), "min": min(ys),
                                 "max": max(ys)}
        if numeric:
            point.update(x=sum(xs) / len(xs), low=min(xs), high=max(xs))
        else:
            point.update(x=key)
        out.append(point)
    return out


def study_importance(db: Database, study_id: str, *, objective: str | None = None,
                     seed: int = 0, pairs_of: int = 4) -> dict[str, Any]:
    """Importance of each parameter (and of pairs of the ``pairs_of`` most important) for the
    objective, with marginal curves. Raises `InvalidRequest` with fewer than 4 finished trials."""
    wait_projected(db)
    view = load_view(EventStore(db=db), study_id)
    objective = objective or view.primary
    direction = objective_direction(objective)
    trials = [t for t in view.done if t.value(objective) is not None]
    if len(trials) < MIN_TRIALS:
        raise InvalidRequest(
            f"study {study_id} has {len(trials)} trained models with a value for {objective}; "
            f"importance needs at least {MIN_TRIALS} (run the study further: nasdb study run "
            f"{study_id})"
        )
    rows = [_features(view, t) for t in trials]
    values = [float(v) for t in trials if (v := t.value(objective)) is not None]
    dists = _distributions(rows)
    if not dists:
        raise InvalidRequest(f"study {study_id}: no parameter varies across its trained models")
    fanova, ped = _evaluate(_study(rows, values, direction, dists), seed)
    single = [{"param": name, "fanova": fanova.get(name),
               "ped_anova": None if ped is None else ped.get(name)}
              for name in sorted(dists, key=lambda n: -fanova.get(n, 0.0))]
    top = [str(r["param"]) for r in single[:pairs_of]]
    pairwise = []
    for a, b in itertools.combinations(top, 2):
        joint = f"{a}*{b}"
        ea = _edges([r[a] for r in rows], not hasattr(dists[a], "choices"))
        eb = _edges([r[b] for r in rows], not hasattr(dists[b], "choices"))
        pair_rows = [{**{k: v for k, v in r.items() if k not in (a, b)},
                      joint: f"{_bin(r[a], ea)}|{_bin(r[b], eb)}"} for r in rows]
        pair_dists = _distributions(pair_rows)
        if joint not in pair_dists:
            continue
        pf, pp = _evaluate(_study(pair_rows, values, direction, pair_dists), seed)
        pairwise.append({
            "params": [a, b], "fanova": pf.get(joint),
            "ped_anova": None if pp is None else pp.get(joint),
            "interaction": pf.get(joint, 0.0) - fanova.get(a, 0.0) - fanova.get(b, 0.0),
        })
    return {
        "study": study_id, "objective": objective, "direction": direction,
        "trials": len(trials), "single": single, "pairwise": pairwise,
        "marginals": {name: _marginal(name, dists[name], rows, values) for name in dists},
        "evaluators": {"fanova": "optuna.importance.FanovaImportanceEvaluator",
                       "ped_anova": "optuna.importance.PedAnovaImportanceEvaluator"},
    }
