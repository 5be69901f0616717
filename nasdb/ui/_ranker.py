"""The ranking function the UI hands to study drivers, loading the recommender only when used."""

from __future__ import annotations

from collections.abc import Sequence

from nasdb.schema.db import Database
from nasdb.search import DatasetInfo
from nasdb.search.strategies import Ranker, Ranking, Suggestion


def lazy_ranker(db: Database) -> Ranker:
    """`nasdb.recommend.predictor_ranker(db)`, imported on the first call: a study whose strategy
    never ranks (random, evolution, ...) does not pay for loading the recommender's libraries."""
    loaded: list[Ranker] = []

    def rank(info: DatasetInfo, candidates: Sequence[Suggestion], ratio: float) -> Ranking:
        if not loaded:
            from nasdb.recommend import predictor_ranker

            loaded.append(predictor_ranker(db))
        return loaded[0](info, candidates, ratio)

    return rank
