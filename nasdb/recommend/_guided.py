"""Predictor-guided search: sample many architectures, queue only the most promising.

`propose_guided` samples ``n_candidates`` (architecture, hyperparameters) pairs from the grammar
for a dataset, predicts each one's accuracy with the newest fitted predictor, keeps the top
``ratio`` by predicted accuracy per decade of parameters (`guided_selection`), and proposes (and by
default queues) only those. Each kept proposal's ArchitectureProposed carries ``predicted_acc`` and,
in ``proposal``, the interval, the score, its rank among the candidates and the recommender id, so
predicted and measured accuracy can be compared once it is trained.

`predictor_ranker(db)` is the same ranking as a function a study driver hands to the ``guided``
strategy (`nasdb.search.strategies.Ranker`): the model space never imports the recommender.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasdb.ingest import EventStore
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidRequest
from nasdb.search import Architecture, DatasetInfo, Hyperparameters
from nasdb.search.strategies import Ranked, Ranker, Ranking, Suggestion
from nasdb.trainers.measure import count_flops, count_params

from ._recommend import GuidedChoice, guided_selection
from ._service import Bundle, load_bundle

__all__ = ["predictor_ranker", "propose_guided", "rank_guided"]


def _choose(
    bundle: Bundle, info: DatasetInfo, pairs: Sequence[tuple[Architecture, Hyperparameters]],
    ratio: float,
) -> list[GuidedChoice]:
    items = [
        {
            "id": str(i),
            "architecture": arch.to_dict(),
            "hyperparameters": hp.to_dict(),
            "params": count_params(arch, info.input_shape, info.num_classes),
            "flops": count_flops(arch, info.input_shape, info.num_classes),
        }
        for i, (arch, hp) in enumerate(pairs)
    ]
    assert bundle.predictor is not None
    return guided_selection(bundle.rows(info.id, items), bundle.predictor.model, ratio)


def predictor_ranker(db: Database) -> Ranker:
    """A ranking function for the ``guided`` strategy: the newest fitted predictor (loaded at each
    call, so a refit is used from the next step) keeps the best ``ratio`` of the candidates.

    Loading nothing until called, it can be handed to every study's driver. The call raises
    `NotFound` when no predictor has been fitted (nasdb recommend fit).
    """

    def rank(info: DatasetInfo, candidates: Sequence[Suggestion], ratio: float) -> Ranking:
        bundle = load_bundle(db)
        assert bundle.predictor is not None
        pairs = [(s.architecture, s.hyperparameters) for s in candidates]
        kept = [Ranked(c.index, c.predicted, c.lower, c.upper, c.score)
                for c in _choose(bundle, info, pairs, ratio)]
        return Ranking(kept, bundle.predictor.recommender_id)

    return rank


def rank_guided(
    store: EventStore,
    dataset_id: str,
    n_candidates: int,
    ratio: float,
    seed: int = 0,
    *,
    space: Any = None,
    hyperparameter_space: Any = None,
) -> tuple[list[tuple[Any, Any]], list[GuidedChoice], str]:
    """The sampled candidates, the kept choices (best first) and the predictor's id."""
    from nasdb.read import get_dataset
    from nasdb.search import sample

    if n_candidates < 1:
        raise InvalidRequest(f"n_candidates must be at least 1; got {n_candidates}")
    if not 0.0 < ratio <= 1.0:
        raise InvalidRequest(f"ratio must be in (0, 1]; got {ratio}")
    info = get_dataset(store.db, dataset_id)
    bundle = load_bundle(store.db)
    assert bundle.predictor is not None
    pairs = sample(info.input_shape, info.num_classes, n_candidates, seed=seed, space=space,
                   hyperparameters=hyperparameter_space)
    return pairs, _choose(bundle, info, pairs, ratio), bundle.predictor.recommender_id


def propose_guided(
    store: EventStore,
    dataset_id: str,
    n_candidates: int = 200,
    ratio: float = 0.1,
    seed: int = 0,
    *,
    space: Any = None,
    hyperparameter_space: Any = None,
    study_id: str | None = None,
    queue: bool = True,
    priority: int = 0,
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Propose the top ``ratio`` of ``n_candidates`` sampled models by predicted accuracy per
    parameter; return their model ids, best first. ``space`` is a `nasdb.search.SearchSpace`,
    ``hyperparameter_space`` a `nasdb.search.HyperparameterSpace` (None: REMAP defaults).

    Raises `NotFound` when no predictor has been fitted (nasdb recommend fit) or the dataset is not
    registered, `InvalidRequest` for a ratio outside (0, 1].
    """
    from nasdb.read import get_dataset
    from nasdb.steer import Proposal, propose

    pairs, choices, recommender_id = rank_guided(
        store, dataset_id, n_candidates, ratio, seed,
        space=space, hyperparameter_space=hyperparameter_space,
    )
    proposals = [
        Proposal(
            pairs[c.index][0],
            pairs[c.index][1],
            "sampled",
            predicted_acc=c.predicted,
            extra={
                "strategy": "guided",
                "recommender_id": recommender_id,
                "predicted_lower": c.lower,
                "predicted_upper": c.upper,
                "guided_score": c.score,
                "rank": rank,
                "candidates": n_candidates,
                "ratio": ratio,
                "seed": seed,
            },
        )
        for rank, c in enumerate(choices, start=1)
    ]
    return propose(store, get_dataset(store.db, dataset_id), proposals, study_id=study_id,
                   queue=queue, priority=priority, metadata=metadata)
