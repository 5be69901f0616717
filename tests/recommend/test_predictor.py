"""The accuracy predictor: the paper's eight regressors, scored out of fold, refitted, persisted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasdb.recommend import MIN_TRAINED_MODELS, AccuracyPredictor, PredictorRow
from nasdb.schema.errors import InvalidRequest, NotFound

Data = tuple[list[PredictorRow], list[float], list[Any]]


def test_reports_all_eight_regressors_and_picks_the_best_by_kendall(
    predictor: AccuracyPredictor,
) -> None:
    names = {s.name for s in predictor.scores}
    assert names == {"ridge", "svr_rbf", "svr_linear", "svr_poly", "random_forest",
                     "gradient_boosting", "adaboost", "mlp"}
    best = predictor.scores[0]
    assert predictor.best == best.name
    assert all(best.kendall >= s.kendall for s in predictor.scores)
    for row in predictor.report():
        print(f"{row['name']:>18} mse {row['mse']:.4f} pearson {row['pearson']:.3f} "
              f"spearman {row['spearman']:.3f} kendall {row['kendall']:.3f}")
    # the synthetic ground truth is learnable: the chosen regressor ranks held-out models well
    assert best.kendall > 0.5
    assert best.spearman > 0.65
    assert predictor.n_rows == 80


def test_predict_gives_a_mean_inside_its_interval(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    rows, _, _ = predictor_data
    mean, lower, upper = predictor.predict(rows[:10])
    assert mean.shape == lower.shape == upper.shape == (10,)
    assert np.all((lower <= mean) & (mean <= upper))
    assert np.all((lower >= 0) & (upper <= 1))
    assert np.all(upper - lower > 0)
    empty = predictor.predict([])
    assert [a.shape for a in empty] == [(0,), (0,), (0,)]


def test_fingerprint_identifies_the_training_data(
    predictor: AccuracyPredictor, predictor_data: Data
) -> None:
    rows, targets, _ = predictor_data
    assert len(predictor.fingerprint) == 64
    again = AccuracyPredictor.fit(rows, targets, seed=0, regressors=["ridge"])
    assert again.fingerprint == predictor.fingerprint
    changed = AccuracyPredictor.fit(rows, [*targets[:-1], 0.5], seed=0, regressors=["ridge"])
    assert changed.fingerprint != predictor.fingerprint


def test_too_few_trained_models_says_how_many_are_needed(predictor_data: Data) -> None:
    rows, targets, _ = predictor_data
    assert MIN_TRAINED_MODELS == 20
    with pytest.raises(InvalidRequest) as info:
        AccuracyPredictor.fit(rows[:7], targets[:7])
    assert str(info.value) == (
        "need at least 20 trained models to fit the accuracy predictor; the database has 7"
    )


def test_bad_inputs(predictor: AccuracyPredictor, predictor_data: Data) -> None:
    rows, targets, _ = predictor_data
    with pytest.raises(InvalidRequest) as info:
        AccuracyPredictor.fit(rows, targets[:-1])
    assert str(info.value) == "got 80 rows but 79 targets; give one accuracy per row"
    with pytest.raises(InvalidRequest) as info:
        AccuracyPredictor.fit(rows, [*targets[:-1], 1.5])
    assert str(info.value) == "targets must be accuracies in [0, 1] (no NaN)"
    with pytest.raises(InvalidRequest) as info:
        AccuracyPredictor.fit(rows, targets, regressors=["ridge", "xgboost"])
    assert str(info.value).startswith("unknown regressor(s) ['xgboost']; choose from ['adaboost',")
    short = replace(rows[0], architecture=np.zeros(5), model_id="m99")
    with pytest.raises(InvalidRequest) as info:
        predictor.predict([short])
    assert str(info.value) == (
        "architecture vector of model m99 has length 5; "
        "the predictor was fitted on length 32 (same encoder?)"
    )
    with pytest.raises(InvalidRequest) as info:
        AccuracyPredictor().predict(rows[:1])
    assert str(info.value) == (
        "the accuracy predictor is not fitted; run `nasdb recommend fit`"
    )


def test_partial_learning_curves_are_used_with_a_mask(predictor_data: Data) -> None:
    rows, targets, _ = predictor_data
    # the curve carries the target itself (a noisy early val accuracy): the predictor must use it
    rng = np.random.default_rng(0)
    curved = [
        replace(r, learning_curve=[t * 0.8, t * 0.95 + rng.normal(0, 0.01)][: 1 + i % 2])
        for i, (r, t) in enumerate(zip(rows, targets, strict=True))
    ]
    fitted = AccuracyPredictor.fit(curved, targets, seed=0, curve_epochs=3,
                                   regressors=["ridge", "svr_linear"])
    feature = fitted.feature_vector(curved[0])
    assert list(feature[-6:]) == pytest.approx([targets[0] * 0.8, 0, 0, 1, 0, 0])
    assert fitted.scores[0].kendall > 0.8


def test_save_and_load(predictor: AccuracyPredictor, predictor_data: Data, tmp_path: Path) -> None:
    rows, _, _ = predictor_data
    path = tmp_path / "predictor.joblib"
    predictor.save(path)
    loaded = AccuracyPredictor.load(path)
    assert loaded.fingerprint == predictor.fingerprint
    assert loaded.best == predictor.best
    for a, b in zip(loaded.predict(rows[:5]), predictor.predict(rows[:5]), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(NotFound) as info:
        AccuracyPredictor.load(tmp_path / "none.joblib")
    assert str(info.value) == (
        f"no accuracy-predictor file at {tmp_path / 'none.joblib'}; "
        "fit one with `nasdb recommend fit`"
    )
