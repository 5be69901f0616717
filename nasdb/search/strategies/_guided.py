"""Predictor-guided search: sample many candidates, train only those predicted to pay off.

Each step draws ``candidates`` models from the study's space and hands them to the ranking
function the driver was given (`StudyView.rank`; `nasdb.recommend.predictor_ranker` ranks by
predicted accuracy per decade of parameters with the newest fitted predictor), which keeps the
best ``ratio``; at most the free slots are proposed. The prediction travels with each proposal
(``predicted_acc`` and ``proposal``), so predicted and measured accuracy can be compared once the
model is trained. The model space never imports the recommender: it is handed the ranking.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nasdb.schema.errors import InvalidRequest

from ._base import Strategy, StudyView, Suggestion, fresh


class GuidedSearch(Strategy):
    name = "guided"
    defaults: ClassVar[dict[str, Any]] = {"candidates": 64, "ratio": 0.125}

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        if settings["candidates"] < 1:
            raise InvalidRequest(f"setting candidates must be at least 1, got "
                                 f"{settings['candidates']}")
        if not 0 < settings["ratio"] <= 1:
            raise InvalidRequest(f"setting ratio must be in (0, 1], got {settings['ratio']}")

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        if view.rank is None:
            raise InvalidRequest(
                "the guided strategy ranks candidates with a fitted predictor, and this driver "
                "was handed no ranking function; run the study with: nasdb study run"
            )
        rng = view.rng()
        pool = [fresh(view, rng) for _ in range(int(self.settings["candidates"]))]
        ranking = view.rank(view.dataset, pool, float(self.settings["ratio"]))
        kept = []
        for rank, choice in enumerate(ranking.kept[:slots], start=1):
            s = pool[choice.index]
            kept.append(Suggestion(s.architecture, s.hyperparameters, "sampled", info={
                "strategy": self.name, "predicted_acc": choice.predicted,
                "interval": [choice.lower, choice.upper], "score": choice.score, "rank": rank,
                "candidates": len(pool), "recommender_id": ranking.source,
            }))
        return kept
