"""Predictor-guided search: sample many candidates, train only those predicted to pay off.

Each step draws ``candidates`` models from the study's space, predicts their accuracy with the
newest fitted accuracy predictor (``nasdb recommend fit``), ranks them by predicted accuracy per
decade of parameters (`nasdb.recommend.guided_selection`) and keeps the best ``ratio`` — at most
the free slots. The prediction travels with each proposal (``predicted_acc`` and ``proposal``), so
predicted and measured accuracy can be compared once the model is trained.
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
        from nasdb.recommend import guided_selection
        from nasdb.recommend._service import load_bundle

        rng = view.rng()
        pool = [fresh(view, rng) for _ in range(int(self.settings["candidates"]))]
        bundle = load_bundle(view.db)
        assert bundle.predictor is not None
        items = [
            {"id": str(i), "architecture": s.architecture.to_dict(),
             "hyperparameters": s.hyperparameters.to_dict(),
             "params": _count(s, view, "params"), "flops": _count(s, view, "flops")}
            for i, s in enumerate(pool)
        ]
        rows = bundle.rows(view.dataset.id, items)
        choices = guided_selection(rows, bundle.predictor.model, float(self.settings["ratio"]))
        kept = []
        for rank, choice in enumerate(choices[:slots], start=1):
            s = pool[choice.index]
            kept.append(Suggestion(s.architecture, s.hyperparameters, "sampled", info={
                "strategy": self.name, "predicted_acc": choice.predicted,
                "interval": [choice.lower, choice.upper], "score": choice.score, "rank": rank,
                "candidates": len(pool), "recommender_id": bundle.predictor.recommender_id,
            }))
        return kept


def _count(s: Suggestion, view: StudyView, what: str) -> int:
    from nasdb.search import count_flops, count_params

    fn = count_params if what == "params" else count_flops
    return int(fn(s.architecture, view.dataset.input_shape, view.dataset.num_classes))
