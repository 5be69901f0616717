"""Random search: REMAP's Markov chain and the hyperparameter space, ``parallel`` at a time."""

from __future__ import annotations

from typing import Any, ClassVar

from ._base import Strategy, StudyView, Suggestion, fresh


class RandomSearch(Strategy):
    name = "random"
    defaults: ClassVar[dict[str, Any]] = {}

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        rng = view.rng()
        return [fresh(view, rng, {"strategy": self.name}) for _ in range(slots)]
