"""Regularised evolution (Real et al.; the NAS dashboard's step-by-step search).

The first ``population`` models are random. Afterwards each step runs a tournament: ``sample``
members drawn from the population — the ``population`` most recently proposed finished models of
the study, so the oldest die first — and the best by the primary objective is mutated with one
random change (a variation with 1 change). Models a person adds to the study (``nasdb handcraft
--study S``) join the population like any other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nasdb.schema.errors import InvalidRequest

from .._steering import variations
from ._base import Strategy, StudyView, Suggestion, fresh


class RegularisedEvolution(Strategy):
    name = "evolution"
    defaults: ClassVar[dict[str, Any]] = {"population": 8, "sample": 3, "changes": 1}

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        if settings["population"] < 2:
            raise InvalidRequest(f"population must be at least 2, got {settings['population']}")
        if not 1 <= settings["sample"] <= settings["population"]:
            raise InvalidRequest(
                f"sample must be in 1..population ({settings['population']}), got "
                f"{settings['sample']}"
            )
        if settings["changes"] < 1:
            raise InvalidRequest(f"changes must be at least 1, got {settings['changes']}")

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        rng = view.rng()
        size = int(self.settings["population"])
        out: list[Suggestion] = []
        proposed = len(view.trials)
        while len(out) < slots and proposed + len(out) < size:
            out.append(fresh(view, rng, {"strategy": self.name, "role": "initial"}))
        if len(out) == slots:
            return out
        finished = sorted((t for t in view.trials if t.finished), key=lambda t: t.number)
        population = [t for t in finished[-size:] if t.done]
        if len(population) < int(self.settings["sample"]):
            return out  # wait for the initial population to train
        while len(out) < slots:
            contenders = rng.sample(population, int(self.settings["sample"]))
            parent = view.ranked(contenders)[0]
            if parent.architecture.reference is not None:
                out.append(fresh(view, rng, {"strategy": self.name, "role": "initial"}))
                continue
            try:
                (child, changes), = variations(
                    parent.architecture, view.dataset.input_shape, view.dataset.num_classes,
                    n=1, changes=int(self.settings["changes"]), rng=rng,
                    space=view.space.architecture,
                )
            except InvalidRequest:  # no valid one-change neighbour: explore instead
                out.append(fresh(view, rng, {"strategy": self.name, "role": "initial"}))
                continue
            out.append(Suggestion(
                child, parent.hyperparameters, "mutation", parent_id=parent.model_id,
                changes=tuple(changes),
                info={"strategy": self.name, "role": "child",
                      "tournament": [t.model_id for t in contenders]},
            ))
        return out
