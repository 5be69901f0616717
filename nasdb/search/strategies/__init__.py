"""Search strategies: random, regularised evolution, Hyperband / successive halving, ASHA, PBT,
TPE, NSGA-II, BOHB and predictor-guided. Each is stateless: it reads the study (`StudyView`)
and suggests what to train next (`Suggestion`); the driver in `nasdb.steer._study` turns
suggestions into events."""

from __future__ import annotations

import difflib
from typing import Any

from nasdb.schema.errors import InvalidRequest

from ._base import (
    OBJECTIVES,
    Ranked,
    Ranker,
    Ranking,
    Strategy,
    StudyView,
    Suggestion,
    Trial,
    objective_direction,
)
from ._evolution import RegularisedEvolution
from ._guided import GuidedSearch
from ._hyperband import ASHA, BOHB, Hyperband, bracket_plan
from ._optuna import NSGA2Search, TPESearch
from ._pbt import PBT, PERTURB_FACTORS, explore, perturb
from ._random import RandomSearch
from ._space import SPACE_NAMES, StudySpace

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (RandomSearch, RegularisedEvolution, Hyperband, ASHA, PBT, TPESearch,
                NSGA2Search, BOHB, GuidedSearch)
}


def get_strategy(name: str, settings: dict[str, Any] | None = None) -> Strategy:
    """The strategy called ``name`` with its settings checked; `InvalidRequest` when unknown."""
    cls = STRATEGIES.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidRequest(
            f"unknown strategy {name!r}{hint}; choose one of {', '.join(STRATEGIES)}"
        )
    return cls(settings or {})


__all__ = [
    "ASHA",
    "BOHB",
    "OBJECTIVES",
    "PBT",
    "PERTURB_FACTORS",
    "SPACE_NAMES",
    "STRATEGIES",
    "GuidedSearch",
    "Hyperband",
    "NSGA2Search",
    "RandomSearch",
    "Ranked",
    "Ranker",
    "Ranking",
    "RegularisedEvolution",
    "Strategy",
    "StudySpace",
    "StudyView",
    "Suggestion",
    "TPESearch",
    "Trial",
    "bracket_plan",
    "explore",
    "get_strategy",
    "objective_direction",
    "perturb",
]
