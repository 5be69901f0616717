"""Ranking logic for recommendations (AutoCl) and predictor-guided search — no database access.

`recommend` ranks candidate models for a dataset: a candidate's accuracy is its measured test
accuracy when it has one (``source="measured"``), otherwise the predictor's (``"predicted"``, with
an interval). With a class focus the ranking uses the mean measured accuracy on those classes for
candidates that have class metrics for all of them; candidates without ranks after those, by
overall accuracy (``score_basis`` says which was used). ``why`` lists the k nearest trained
candidates by cosine distance between architecture vectors.

`guided_selection` keeps the most promising fraction of proposals by
``score = predicted accuracy / log10(max(params, 10))`` — predicted accuracy per decade of
parameters, so of two equally accurate proposals the smaller wins.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nasdb.schema.errors import InvalidRequest

from ._predictor import AccuracyPredictor, PredictorRow

__all__ = [
    "Candidate",
    "GuidedChoice",
    "Neighbour",
    "Recommendation",
    "guided_score",
    "guided_selection",
    "recommend",
]


@dataclass(frozen=True)
class Candidate:
    """A model that may be recommended.

    ``class_metrics`` maps a class name to its metrics (``accuracy`` - the class's recall, as
    `nasdb.schema.metrics` defines it -, ``precision``, ``recall``, ``specificity`` as measured).
    ``row`` feeds the predictor and gives the architecture vector for
    ``why``; it is required when ``measured_accuracy`` is None.
    """

    model_id: str
    hyperparameters: Mapping[str, Any]
    params: int
    measured_accuracy: float | None
    class_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    row: PredictorRow | None = None


@dataclass(frozen=True)
class Neighbour:
    """A trained model near a recommendation in architecture-vector space (cosine distance)."""

    model_id: str
    distance: float
    accuracy: float


@dataclass(frozen=True)
class Recommendation:
    """One ranked entry. ``lower``/``upper`` are set only for predicted accuracies."""

    rank: int
    model_id: str
    accuracy: float
    source: Literal["measured", "predicted"]
    score: float
    score_basis: Literal["overall", "class"]
    params: int
    hyperparameters: Mapping[str, Any]
    class_metrics: Mapping[str, Mapping[str, float]]
    why: list[Neighbour]
    lower: float | None = None
    upper: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--format json``)."""
        return {
            "rank": self.rank,
            "model_id": self.model_id,
            "accuracy": self.accuracy,
            "source": self.source,
            "interval": None if self.lower is None else [self.lower, self.upper],
            "score": self.score,
            "score_basis": self.score_basis,
            "params": self.params,
            "hyperparameters": dict(self.hyperparameters),
            "class_metrics": {k: dict(v) for k, v in self.class_metrics.items()},
            "why": [
                {"model_id": n.model_id, "distance": n.distance, "accuracy": n.accuracy}
                for n in self.why
            ],
        }


@dataclass(frozen=True)
class GuidedChoice:
    """A proposal kept by `guided_selection`: its index in the input, prediction and score."""

    index: int
    model_id: str | None
    predicted: float
    lower: float
    upper: float
    params: int
    score: float


def _cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def _vector(row: PredictorRow) -> np.ndarray:
    return np.asarray(row.architecture, dtype=np.float64).ravel()


def _check_classes(candidates: Sequence[Candidate], classes: Sequence[str]) -> None:
    known = sorted({name for c in candidates for name in c.class_metrics})
    for name in classes:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known classes: {known}"
            raise InvalidRequest(f"unknown class {name!r}{hint}")


def recommend(
    candidates: Sequence[Candidate],
    predictor: AccuracyPredictor | None = None,
    *,
    max_params: int | None = None,
    classes: Sequence[str] = (),
    neighbours: int = 3,
    limit: int | None = None,
) -> list[Recommendation]:
    """Rank ``candidates`` (best first) as described in the module docstring.

    Ties break by fewer parameters, then model id. Raises `InvalidRequest` for an unknown class
    (with a did-you-mean), a negative ``neighbours``/``limit``, or a candidate that has neither a
    measured accuracy nor (a predictor and a row).
    """
    if neighbours < 0 or (limit is not None and limit < 0):
        raise InvalidRequest(f"neighbours and limit must be >= 0; got {neighbours}, {limit}")
    if classes:
        _check_classes(candidates, classes)
    kept = [c for c in candidates if max_params is None or c.params <= max_params]

    to_predict = [c for c in kept if c.measured_accuracy is None]
    for c in to_predict:
        if predictor is None or c.row is None:
            raise InvalidRequest(
                f"model {c.model_id} has no measured accuracy and "
                + ("no predictor was given; fit one with `nasdb recommend fit`"
                   if predictor is None else "no predictor row (architecture vector)")
            )
    predicted: dict[str, tuple[float, float, float]] = {}
    if to_predict and predictor is not None:
        mean, low, high = predictor.predict([c.row for c in to_predict if c.row is not None])
        for c, m, lo, hi in zip(to_predict, mean, low, high, strict=True):
            predicted[c.model_id] = (float(m), float(lo), float(hi))

    trained = [c for c in candidates if c.measured_accuracy is not None and c.row is not None]
    trained_vectors = (
        np.stack([_vector(c.row) for c in trained if c.row is not None])
        if trained
        else np.zeros((0, 0))
    )

    entries: list[tuple[tuple[float, float, int, str], Recommendation]] = []
    for c in kept:
        if c.measured_accuracy is not None:
            accuracy, source = float(c.measured_accuracy), "measured"
            lower = upper = None
        else:
            accuracy, lower, upper = predicted[c.model_id]
            source = "predicted"
        basis: Literal["overall", "class"] = "overall"
        score = accuracy
        has_classes = bool(classes) and all(
            "accuracy" in c.class_metrics.get(name, {}) for name in classes
        )
        if has_classes:
            basis = "class"
            score = float(np.mean([c.class_metrics[name]["accuracy"] for name in classes]))
        why: list[Neighbour] = []
        if neighbours and c.row is not None and trained:
            distances = _cosine_distances(_vector(c.row)[None, :], trained_vectors)[0]
            order = [i for i in np.argsort(distances, kind="stable") if trained[i] is not c]
            why = [
                Neighbour(
                    trained[i].model_id,
                    round(float(distances[i]), 6),
                    float(trained[i].measured_accuracy or 0.0),
                )
                for i in order[:neighbours]
            ]
        recommendation = Recommendation(
            rank=0,
            model_id=c.model_id,
            accuracy=accuracy,
            source=source,  # type: ignore[arg-type]
            score=score,
            score_basis=basis,
            params=int(c.params),
            hyperparameters=c.hyperparameters,
            class_metrics=c.class_metrics,
            why=why,
            lower=lower,
            upper=upper,
        )
        group = 0.0 if (has_classes or not classes) else 1.0
        entries.append(((group, -score, int(c.params), c.model_id), recommendation))
    entries.sort(key=lambda e: e[0])
    ranked = [
        Recommendation(**{**r.__dict__, "rank": i + 1}) for i, (_, r) in enumerate(entries)
    ]
    return ranked if limit is None else ranked[:limit]


def guided_score(predicted_accuracy: float, params: int) -> float:
    """``predicted_accuracy / log10(max(params, 10))`` (see the module docstring)."""
    return float(predicted_accuracy) / math.log10(max(int(params), 10))


def guided_selection(
    proposals: Sequence[PredictorRow], predictor: AccuracyPredictor, ratio: float
) -> list[GuidedChoice]:
    """Keep the top ``ceil(ratio * n)`` proposals (at least one) by `guided_score`, best first.

    Each choice carries the prediction so it can be recorded with the proposal and later compared
    with the measured accuracy. Raises `InvalidRequest` unless ``0 < ratio <= 1``.
    """
    if not 0.0 < ratio <= 1.0:
        raise InvalidRequest(f"ratio must be in (0, 1]; got {ratio}")
    if not proposals:
        return []
    mean, low, high = predictor.predict(list(proposals))
    choices = [
        GuidedChoice(
            index=i,
            model_id=row.model_id,
            predicted=float(mean[i]),
            lower=float(low[i]),
            upper=float(high[i]),
            params=int(row.params),
            score=guided_score(float(mean[i]), int(row.params)),
        )
        for i, row in enumerate(proposals)
    ]
    choices.sort(key=lambda c: (-c.score, c.params, c.index))
    return choices[: max(1, math.ceil(round(ratio * len(choices), 9)))]
