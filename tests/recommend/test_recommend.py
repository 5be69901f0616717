"""Ranking candidates (measured or predicted), class focus, neighbours, predictor-guided search."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from nasdb.recommend import (
    AccuracyPredictor,
    Candidate,
    PredictorRow,
    guided_score,
    guided_selection,
    recommend,
)
from nasdb.schema.errors import InvalidRequest

Data = tuple[list[PredictorRow], list[float], list[Any]]


def _candidates(data: Data) -> list[Candidate]:
    rows, targets, _ = data
    out = []
    for i, (row, target) in enumerate(zip(rows[:12], targets[:12], strict=True)):
        measured = i < 8
        out.append(
            Candidate(
                model_id=row.model_id or "",
                hyperparameters=row.hyperparameters,
                params=row.params,
                measured_accuracy=target if measured else None,
                class_metrics=(
                    {"bird": {"accuracy": 1.0 - target, "precision": 0.5},
                     "cat": {"accuracy": target, "precision": 0.5}}
                    if measured else {}
                ),
                row=row,
            )
        )
    return out


def test_ranked_list_marks_measured_and_predicted(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    ranked = recommend(_candidates(predictor_data), predictor, neighbours=3)
    assert [r.rank for r in ranked] == list(range(1, 13))
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    sources = {r.model_id: r.source for r in ranked}
    assert sources["m1"] == "measured" and sources["m12"] == "predicted"
    for r in ranked:
        if r.source == "measured":
            assert r.lower is None and r.upper is None
        else:
            assert r.lower is not None and r.upper is not None
            assert r.lower <= r.accuracy <= r.upper
        assert len(r.why) == 3
        assert r.model_id not in {n.model_id for n in r.why}
        assert [n.distance for n in r.why] == sorted(n.distance for n in r.why)
        assert all(int(n.model_id[1:]) <= 8 for n in r.why)  # only trained neighbours
    as_json = ranked[0].as_dict()
    assert set(as_json) >= {"model_id", "accuracy", "source", "interval", "class_metrics", "why"}


def test_max_params_and_limit(predictor: AccuracyPredictor, predictor_data: Data) -> None:
    candidates = _candidates(predictor_data)
    cap = sorted(c.params for c in candidates)[5]
    ranked = recommend(candidates, predictor, max_params=cap)
    assert len(ranked) == 6 and all(r.params <= cap for r in ranked)
    assert len(recommend(candidates, predictor, limit=2)) == 2


def test_class_focus_ranks_by_class_accuracy_first(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    ranked = recommend(_candidates(predictor_data), predictor, classes=["bird"])
    with_class = [r for r in ranked if r.score_basis == "class"]
    assert len(with_class) == 8 and ranked[:8] == with_class
    bird = [r.class_metrics["bird"]["accuracy"] for r in with_class]
    assert bird == sorted(bird, reverse=True)
    with pytest.raises(InvalidRequest) as info:
        recommend(_candidates(predictor_data), predictor, classes=["brid"])
    assert str(info.value) == "unknown class 'brid'; did you mean 'bird'?"


def test_unmeasured_candidate_without_predictor_is_an_error(predictor_data: Data) -> None:
    with pytest.raises(InvalidRequest) as info:
        recommend(_candidates(predictor_data))
    assert str(info.value) == (
        "model m9 has no measured accuracy and no predictor was given; "
        "fit one with `nasdb recommend fit`"
    )


def test_guided_selection_keeps_the_best_fraction(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    rows = predictor_data[0][:10]
    kept = guided_selection(rows, predictor, ratio=0.3)
    assert len(kept) == 3
    mean, _, _ = predictor.predict(rows)
    # The documented rule, written out here: predicted accuracy per decade of parameters.
    per_decade = [float(m) / math.log10(max(r.params, 10)) for m, r in zip(mean, rows, strict=True)]
    best_three = sorted(range(10), key=lambda i: -per_decade[i])[:3]
    assert [c.index for c in kept] == best_three
    assert [c.predicted for c in kept] == pytest.approx([float(mean[i]) for i in best_three])
    assert [c.score for c in kept] == pytest.approx([per_decade[i] for i in best_three])
    dropped = set(range(10)) - set(best_three)
    assert min(per_decade[i] for i in best_three) >= max(per_decade[i] for i in dropped)
    assert len(guided_selection(rows, predictor, ratio=0.01)) == 1
    with pytest.raises(InvalidRequest) as info:
        guided_selection(rows, predictor, ratio=0)
    assert str(info.value) == "ratio must be in (0, 1]; got 0"


def test_guided_score_prefers_the_smaller_of_equally_accurate_models(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    assert guided_score(0.9, 10_000) > guided_score(0.9, 1_000_000)
    assert guided_score(0.9, 3) == guided_score(0.9, 10)  # floor at 10 parameters
    row = predictor_data[0][0]
    same = [replace(row, params=1_000_000, model_id="big"), replace(row, params=1_000_000,
                                                                    model_id="big2")]
    kept = guided_selection(same, predictor, ratio=0.5)
    assert [c.model_id for c in kept] == ["big"]  # ties keep input order
