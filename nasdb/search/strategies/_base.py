"""What every strategy shares: trials, the study as a strategy sees it, suggestions, objectives.

A strategy is stateless: everything it knows comes from the study's log (its trials and the
proposal dict each one was proposed with), so a driver restarted after ``kill -9`` asks the same
strategy the same question and gets the same answer. Randomness comes from `StudyView.rng`, seeded
by the study's seed and the step number.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from nasdb.query import pareto_mask
from nasdb.schema.errors import InvalidRequest
from nasdb.schema.vocabulary import FINISHED_JOB_STATES, Origin

from .._architecture import Architecture
from .._dataset import DatasetInfo
from .._hyperparameters import Hyperparameters
from ._space import StudySpace

#: Objective names and their directions, named as in the query language: ``acc`` is test accuracy,
#: ``val_acc`` best validation accuracy (what a search should rank by: the test split stays
#: unseen), ``acc:<class>`` one class's accuracy on the test split (its recall; maximised).
OBJECTIVES: dict[str, str] = {
    "val_acc": "maximize",
    "acc": "maximize",
    "params": "minimize",
    "flops": "minimize",
    "latency": "minimize",
}

FINISHED = FINISHED_JOB_STATES


def objective_direction(name: str) -> str:
    """``maximize`` or ``minimize``; `InvalidRequest` for an unknown objective."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    if name.startswith("acc:") and len(name) > 4:
        return "maximize"
    raise InvalidRequest(
        f"unknown objective {name!r}; use {', '.join(OBJECTIVES)} or acc:CLASS (one class's "
        "test accuracy, its recall)"
    )


@dataclass(frozen=True)
class Trial:
    """One model of a study as the strategies see it (from the `models` view)."""

    model_id: str
    architecture: Architecture
    hyperparameters: Hyperparameters
    status: str
    params: int
    flops: int
    origin: str = "sampled"
    parent_id: str | None = None
    proposal: Mapping[str, Any] = field(default_factory=dict)
    epochs_planned: int = 0
    epochs_trained: int = 0
    best_val_acc: float | None = None
    test_acc: float | None = None
    latency_ms: float | None = None
    train_seconds: float | None = None
    class_acc: Mapping[str, float] = field(default_factory=dict)
    checkpoint: str | None = None

    @property
    def number(self) -> int:
        """The numeric part of the id (proposal order)."""
        digits = "".join(c for c in self.model_id if c.isdigit())
        return int(digits) if digits else 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def in_flight(self) -> bool:
        return not self.finished

    @property
    def epochs_charged(self) -> int:
        """Epochs this trial costs the budget: trained when finished, else planned."""
        return self.epochs_trained if self.finished else max(self.epochs_planned,
                                                              self.epochs_trained)

    def value(self, objective: str) -> float | None:
        """The trial's value of one objective (`OBJECTIVES`); None if unknown."""
        if objective == "val_acc":
            return self.best_val_acc if self.done else None
        if objective == "acc":
            return self.test_acc if self.done else None
        if objective == "params":
            return float(self.params)
        if objective == "flops":
            return float(self.flops)
        if objective == "latency":
            return self.latency_ms if self.done else None
        if objective.startswith("acc:"):
            return self.class_acc.get(objective[4:]) if self.done else None
        raise InvalidRequest(f"unknown objective {objective!r}")

    def values(self, objectives: Sequence[str]) -> list[float] | None:
        out = [self.value(o) for o in objectives]
        return None if any(v is None for v in out) else [float(v) for v in out if v is not None]


@dataclass(frozen=True)
class StudyView:
    """A study at one moment: its definition, its trials and how far its driver got."""

    id: str
    dataset: DatasetInfo
    strategy: str
    settings: Mapping[str, Any]
    space: StudySpace
    objectives: tuple[str, ...]
    budget: Mapping[str, int]
    state: str
    created_at: datetime
    steps: int
    version: int
    trials: tuple[Trial, ...]
    #: When the driver took its first step (None before it): a seconds budget counts from here,
    #: so a study created today and run tomorrow has its whole time.
    started_at: datetime | None = None
    #: The ranking function the driver was handed, for strategies that rank candidates by a
    #: prediction (the guided strategy); None when the driver was given none.
    rank: Ranker | None = field(default=None, compare=False, repr=False)

    @property
    def seed(self) -> int:
        return int(self.settings.get("seed", 0))

    def rng(self) -> random.Random:
        """The random source of the next step: same study, same step -> same draws."""
        return random.Random(f"{self.id}/{self.seed}/{self.steps + 1}")

    @property
    def in_flight(self) -> list[Trial]:
        return [t for t in self.trials if t.in_flight]

    @property
    def done(self) -> list[Trial]:
        return [t for t in self.trials if t.done]

    @property
    def primary(self) -> str:
        return self.objectives[0]

    def score(self, trial: Trial) -> float:
        """The primary objective oriented so that larger is better (-inf when unknown)."""
        value = trial.value(self.primary)
        if value is None or math.isnan(value):
            return -math.inf
        return value if objective_direction(self.primary) == "maximize" else -value

    def ranked(self, trials: Sequence[Trial]) -> list[Trial]:
        """Best first by the primary objective; ties broken by proposal order."""
        return sorted(trials, key=lambda t: (-self.score(t), t.number))

    def fronts(self, trials: Sequence[Trial]) -> list[list[Trial]]:
        """Non-dominated sorting over the study's objectives: the Pareto front of ``trials``
        (`nasdb.query.pareto_mask`, the one rule and tie rule), then the front of the rest, and
        so on, each front in the order of ``trials``. Trials missing an objective take no
        part."""
        maximise = [objective_direction(o) == "maximize" for o in self.objectives]
        known = [(t, v) for t in trials if (v := t.values(self.objectives)) is not None]
        rest = [t for t, _ in known]
        values = np.array([v for _, v in known], dtype=float).reshape(len(rest), len(maximise))
        out: list[list[Trial]] = []
        while rest:
            on = pareto_mask(values, maximise)
            out.append([t for t, f in zip(rest, on, strict=True) if f])
            rest = [t for t, f in zip(rest, on, strict=True) if not f]
            values = values[~on]
        return out

    def ranked_by_fronts(self, trials: Sequence[Trial]) -> list[Trial]:
        """Best first by `fronts`, within a front by the primary objective (`ranked`); trials
        missing an objective come last.

        With ``val_acc`` and ``params`` this keeps the most accurate model of every size in the
        running, where `ranked` favours the largest (multi-objective ASHA, Schmucker et al. 2021,
        selects the same way)."""
        out = [t for front in self.fronts(trials) for t in self.ranked(front)]
        return out + self.ranked([t for t in trials if t.values(self.objectives) is None])


@dataclass(frozen=True)
class Suggestion:
    """A model a strategy wants trained; ``info`` goes into ArchitectureProposed.proposal."""

    architecture: Architecture
    hyperparameters: Hyperparameters
    origin: Origin = "sampled"
    parent_id: str | None = None
    changes: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    resume_from: str | None = None

    @property
    def epochs(self) -> int:
        return self.hyperparameters.epochs


@dataclass(frozen=True)
class Ranked:
    """A candidate a ranking function kept: its index among the candidates, its predicted
    accuracy with an interval, and the score it was ranked by."""

    index: int
    predicted: float
    lower: float
    upper: float
    score: float


@dataclass(frozen=True)
class Ranking:
    """What a ranking function kept (best first) and which fitted predictor ranked them."""

    kept: list[Ranked]
    source: str


Ranker = Callable[[DatasetInfo, Sequence[Suggestion], float], Ranking]
"""Rank candidate suggestions for a dataset and keep the best ``ratio`` of them. The model space
does not know how: the driver is handed one (`nasdb.recommend.predictor_ranker`)."""


class Strategy:
    """Base class: ``ask`` returns what to train next given the study (empty list = wait).

    Subclasses declare ``name`` and ``defaults`` (their settings with default values); unknown
    settings are refused when a study is created.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: Settings every strategy takes.
    common: ClassVar[dict[str, Any]] = {"seed": 0, "parallel": 2}

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = self.resolve(settings or {})

    @classmethod
    def resolve(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        known = {**cls.common, **cls.defaults}
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise InvalidRequest(
                f"unknown setting {unknown[0]!r} for strategy {cls.name}; it takes "
                f"{', '.join(sorted(known))}"
            )
        out = {**known, **settings}
        for key, default in known.items():
            value = out[key]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise InvalidRequest(f"setting {key} must be true or false, got {value!r}")
            elif isinstance(default, int) and default is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidRequest(f"setting {key} must be an integer, got {value!r}")
            elif isinstance(default, float) and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise InvalidRequest(f"setting {key} must be a number, got {value!r}")
        if out["parallel"] < 1:
            raise InvalidRequest(f"setting parallel must be at least 1, got {out['parallel']}")
        cls.check(out)
        return out

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        """Refuse settings out of range (`InvalidRequest`)."""

    @property
    def parallel(self) -> int:
        return int(self.settings["parallel"])

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        raise NotImplementedError

    def exhausted(self, view: StudyView) -> bool:
        """True when the strategy will never propose again (e.g. all PBT generations ran)."""
        return False


def fresh(view: StudyView, rng: random.Random, info: Mapping[str, Any] | None = None,
          epochs: int | None = None) -> Suggestion:
    """A random model from the study's space (REMAP's chain + the hyperparameter space)."""
    arch, hp = view.space.sample(view.dataset, rng)
    if epochs is not None:
        hp = with_epochs(hp, epochs)
    return Suggestion(arch, hp, "sampled", info=dict(info or {}))


def with_epochs(hp: Hyperparameters, epochs: int) -> Hyperparameters:
    from dataclasses import replace

    return replace(hp, epochs=max(1, int(epochs)))
