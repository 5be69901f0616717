"""TPE and NSGA-II through Optuna's ask-and-tell interface, with nasdb's log as the only truth.

Every ``ask`` rebuilds an in-memory Optuna study from the study's trials: each trial proposed by
this strategy carries its Optuna params (and the sampler's trial system attributes, e.g.
NSGA-II's generation) in its proposal dict; finished trials are told their objective values
(failed/cancelled ones are FAIL), trials in flight are RUNNING. Nothing of Optuna's is persisted,
so a restarted driver rebuilds exactly the same study. The sampler is seeded from the study seed
and the step number.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from nasdb.schema.errors import InvalidArchitecture

from ._base import Strategy, StudyView, Suggestion, Trial, objective_direction


def rebuild(view: StudyView, trials: Sequence[Trial], objectives: Sequence[str],
            sampler: Any) -> tuple[Any, dict[str, Any]]:
    """An in-memory Optuna study holding ``trials`` (those with Optuna params) and the
    distributions of the study's encoding."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = view.space.optuna_distributions()
    directions: list[Any] = [objective_direction(o) for o in objectives]
    study = optuna.create_study(directions=directions, sampler=sampler)
    state = optuna.trial.TrialState
    for t in sorted(trials, key=lambda t: t.number):
        params = t.proposal.get("params")
        if not isinstance(params, dict):
            continue
        params = {k: v for k, v in params.items() if k in distributions}
        values = t.values(objectives) if t.done else None
        if t.done and values is not None:
            st, vals = state.COMPLETE, values
        elif t.finished:
            st, vals = state.FAIL, None
        else:
            st, vals = state.RUNNING, None
        dists = {k: distributions[k] for k in params}
        try:
            frozen = optuna.trial.create_trial(
                params=params, distributions=dists, values=vals, state=st,
                system_attrs=dict(t.proposal.get("optuna_system_attrs") or {}),
                user_attrs={"model_id": t.model_id},
            )
        except ValueError:  # a value outside a refined range: the trial is not evidence here
            continue
        study.add_trial(frozen)
    return study, distributions


def ask_optuna(study: Any, distributions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ask: the params and the sampler's system attributes of the new trial."""
    trial = study.ask(distributions)
    attrs = study._storage.get_trial_system_attrs(trial._trial_id)
    return dict(trial.params), {k: v for k, v in attrs.items() if _jsonable(v)}


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


#: Asks per wanted suggestion before giving up (a point over the space's bounds is asked again).
ASK_ATTEMPTS = 50


def optuna_suggestions(view: StudyView, study: Any, distributions: dict[str, Any], n: int,
                       info: dict[str, Any], epochs: int | None = None) -> list[Suggestion]:
    """Up to ``n`` suggestions from the rebuilt study (each ask sees the previous as RUNNING); a
    point the space refuses (over its parameter cap or cost bound) is told FAIL and asked again,
    at most `ASK_ATTEMPTS` times per suggestion."""
    import optuna

    from ._base import with_epochs

    out: list[Suggestion] = []
    for _ in range(n * ASK_ATTEMPTS):
        if len(out) == n:
            break
        params, attrs = ask_optuna(study, distributions)
        try:
            arch, hp = view.space.build_from_params(params, view.dataset)
        except InvalidArchitecture:  # over a bound: told FAIL, so the sampler learns; ask again
            study.tell(study.trials[-1].number, state=optuna.trial.TrialState.FAIL)
            continue
        if epochs is not None:
            hp = with_epochs(hp, epochs)
        out.append(Suggestion(arch, hp, "sampled",
                              info={**info, "params": params, "optuna_system_attrs": attrs}))
    return out


def seed_for(view: StudyView) -> int:
    return view.rng().randrange(2**31)


class TPESearch(Strategy):
    """Optuna's TPE on the primary objective (constant liar for trials in flight)."""

    name = "tpe"
    defaults: ClassVar[dict[str, Any]] = {"startup": 5}

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        import optuna

        sampler = optuna.samplers.TPESampler(
            seed=seed_for(view), n_startup_trials=int(self.settings["startup"]),
            constant_liar=True,
        )
        mine = [t for t in view.trials if "params" in t.proposal]
        study, dists = rebuild(view, mine, [view.primary], sampler)
        return optuna_suggestions(view, study, dists, slots, {"strategy": self.name})


class NSGA2Search(Strategy):
    """Optuna's NSGA-II on every objective of the study (a Pareto search, e.g. acc vs params)."""

    name = "nsga2"
    defaults: ClassVar[dict[str, Any]] = {"population_size": 8, "mutation_prob": -1.0,
                                "crossover_prob": 0.9}

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        import optuna

        mutation = float(self.settings["mutation_prob"])
        sampler = optuna.samplers.NSGAIISampler(
            population_size=int(self.settings["population_size"]),
            mutation_prob=mutation if mutation >= 0 else None,
            crossover_prob=float(self.settings["crossover_prob"]), seed=seed_for(view),
        )
        mine = [t for t in view.trials if "params" in t.proposal]
        study, dists = rebuild(view, mine, list(view.objectives), sampler)
        return optuna_suggestions(view, study, dists, slots, {"strategy": self.name})


def tpe_configs(view: StudyView, evidence: Sequence[Trial], n: int, info: dict[str, Any],
                epochs: int, rng: random.Random, min_points: int,
                random_fraction: float) -> list[Suggestion]:
    """BOHB's config draws: TPE fitted on ``evidence`` (one budget's finished trials) when it has
    at least ``min_points`` of them, else (and with probability ``random_fraction``) random
    points of the same encoding."""
    import optuna

    model_based = sum(1 for t in evidence if t.done) >= min_points
    out: list[Suggestion] = []
    for _ in range(n):
        if model_based and rng.random() >= random_fraction:
            sampler: Any = optuna.samplers.TPESampler(seed=rng.randrange(2**31),
                                                      n_startup_trials=0)
            study, dists = rebuild(view, evidence, [view.primary], sampler)
            drawn = optuna_suggestions(view, study, dists, 1, {**info, "model_based": True},
                                       epochs)
        else:
            sampler = optuna.samplers.RandomSampler(seed=rng.randrange(2**31))
            study, dists = rebuild(view, [], [view.primary], sampler)
            drawn = optuna_suggestions(view, study, dists, 1, {**info, "model_based": False},
                                       epochs)
        out.extend(drawn)
    return out
