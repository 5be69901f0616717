"""Accuracy without training (Sankaran et al., section 3.3), extended with hyperparameters.

A `PredictorRow` describes one (model, dataset) pair; `feature_vector` turns it into
``[similarity (one column per known dataset, sorted by name), architecture vector,
log10 lr, log2 batch size, one-hot optimizer (adam, adamw, sgd, rmsprop, other), weight decay,
epochs, log10 params, log10 FLOPs, curve values (k, zero padded), curve mask (k)]``.

`AccuracyPredictor.fit` scores the paper's eight regressors (ridge; SVR rbf, linear, poly; random
forest; gradient boosting; AdaBoost; MLP — each behind a StandardScaler) by k-fold out-of-fold
predictions: MSE, Pearson, Spearman and Kendall tau over all rows. The best by Kendall tau (ties:
lower MSE; undefined correlations count as worst) is refitted on every row.

Interval: `predict` returns ``(mean, lower, upper)`` where lower/upper add the 5th and 95th
percentiles of the chosen regressor's out-of-fold residuals (actual - predicted) to the mean — a
90 % split-conformal-style interval. All three are clipped to ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.ensemble import AdaBoostRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.schema.vocabulary import OPTIMIZERS

__all__ = [
    "MIN_TRAINED_MODELS",
    "PREDICTOR_FORMAT",
    "AccuracyPredictor",
    "PredictorRow",
    "RegressorScore",
]

#: Format string stored with every saved predictor; `AccuracyPredictor.load` refuses others.
PREDICTOR_FORMAT = "nasdb-predictor/1"
#: Fewest trained models `AccuracyPredictor.fit` accepts: 5 folds of at least 4 held-out models.
MIN_TRAINED_MODELS = 20
_FOLDS = 5


@dataclass(frozen=True)
class PredictorRow:
    """What the predictor knows about one model on one dataset (no trained weights needed).

    ``similarity`` maps known dataset names to vote shares (a dataset's own models use ``{name:
    1.0}`` or its measured similarity vector); ``learning_curve`` holds the first validation
    accuracies when some epochs have been trained (only the first ``curve_epochs`` are used).
    """

    similarity: Mapping[str, float]
    architecture: Sequence[float] | np.ndarray
    hyperparameters: Mapping[str, Any]
    params: int
    flops: int
    learning_curve: Sequence[float] = ()
    model_id: str | None = None


@dataclass(frozen=True)
class RegressorScore:
    """Out-of-fold quality of one regressor (NaN when a correlation is undefined)."""

    name: str
    mse: float
    pearson: float
    spearman: float
    kendall: float

    def as_dict(self) -> dict[str, float | str]:
        """JSON-ready form (undefined correlations stay NaN floats)."""
        return {
            "name": self.name,
            "mse": self.mse,
            "pearson": self.pearson,
            "spearman": self.spearman,
            "kendall": self.kendall,
        }


def _regressors(seed: int) -> dict[str, Pipeline]:
    def scaled(model: Any) -> Pipeline:
        return make_pipeline(StandardScaler(), model)

    return {
        "ridge": scaled(Ridge(alpha=1.0)),
        "svr_rbf": scaled(SVR(kernel="rbf", C=1.0, epsilon=0.01)),
        "svr_linear": scaled(SVR(kernel="linear", C=0.1, epsilon=0.01)),
        "svr_poly": scaled(SVR(kernel="poly", degree=2, C=1.0, epsilon=0.01)),
        "random_forest": scaled(RandomForestRegressor(n_estimators=100, random_state=seed)),
        "gradient_boosting": scaled(GradientBoostingRegressor(random_state=seed)),
        "adaboost": scaled(AdaBoostRegressor(random_state=seed)),
        "mlp": scaled(
            MLPRegressor(
                hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=2000, random_state=seed
            )
        ),
    }


def _log10(value: float, floor: float) -> float:
    return math.log10(max(float(value), floor))


def _safe(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


def _fingerprint(rows: Sequence[PredictorRow], targets: np.ndarray) -> str:
    payload = [
        {
            "id": r.model_id,
            "similarity": {k: round(float(v), 9) for k, v in sorted(r.similarity.items())},
            "architecture": [round(float(v), 6) for v in np.asarray(r.architecture).ravel()],
            "hyperparameters": {k: r.hyperparameters[k] for k in sorted(r.hyperparameters)},
            "params": int(r.params),
            "flops": int(r.flops),
            "curve": [round(float(v), 9) for v in r.learning_curve],
            "target": round(float(t), 9),
        }
        for r, t in zip(rows, targets, strict=True)
    ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AccuracyPredictor:
    """Predicts a model's test accuracy from a `PredictorRow`. Build with `fit` or `load`.

    Attributes after fitting: ``best`` (the chosen regressor's name), ``scores`` (one
    `RegressorScore` per regressor, best first), ``fingerprint`` (sha256 of the training rows and
    targets, for the RecommenderTrained event), ``n_rows``. A fitted predictor is read-only.
    """

    def __init__(self, curve_epochs: int = 0) -> None:
        if curve_epochs < 0:
            raise InvalidRequest(f"curve_epochs must be >= 0; got {curve_epochs}")
        self.curve_epochs = curve_epochs
        self.datasets: list[str] = []
        self.architecture_dim = 0
        self.best = ""
        self.scores: list[RegressorScore] = []
        self.fingerprint = ""
        self.n_rows = 0
        self.seed = 0
        self._model: Pipeline | None = None
        self._residual_low = 0.0
        self._residual_high = 0.0

    # ------------------------------------------------------------------ features
    def feature_vector(self, row: PredictorRow) -> np.ndarray:
        """The feature row of ``row`` (see the module docstring for the column order).

        Similarity keys the predictor was not fitted on are ignored. Raises `InvalidRequest` when
        the architecture vector has the wrong length or the hyperparameters lack lr/batch_size.
        """
        vector = np.asarray(row.architecture, dtype=np.float64).ravel()
        if vector.shape[0] != self.architecture_dim:
            raise InvalidRequest(
                f"architecture vector of model {row.model_id or '?'} has length {vector.shape[0]}; "
                f"the predictor was fitted on length {self.architecture_dim} (same encoder?)"
            )
        hp = row.hyperparameters
        missing = [k for k in ("lr", "batch_size") if k not in hp]
        if missing:
            raise InvalidRequest(
                f"hyperparameters of model {row.model_id or '?'} lack {', '.join(missing)}"
            )
        optimizer = str(hp.get("optimizer", "adam")).lower()
        one_hot = [1.0 if optimizer == o else 0.0 for o in OPTIMIZERS]
        one_hot.append(0.0 if optimizer in OPTIMIZERS else 1.0)
        curve = [float(v) for v in row.learning_curve][: self.curve_epochs]
        mask = [1.0] * len(curve) + [0.0] * (self.curve_epochs - len(curve))
        curve += [0.0] * (self.curve_epochs - len(curve))
        return np.concatenate(
            [
                [float(row.similarity.get(name, 0.0)) for name in self.datasets],
                vector,
                [
                    _log10(hp["lr"], 1e-12),
                    math.log2(max(float(hp["batch_size"]), 1.0)),
                    *one_hot,
                    float(hp.get("weight_decay", 0.0)),
                    float(hp.get("epochs", 0)),
                    _log10(row.params, 1.0),
                    _log10(row.flops, 1.0),
                ],
                curve,
                mask,
            ]
        )

    def _matrix(self, rows: Sequence[PredictorRow]) -> np.ndarray:
        return np.stack([self.feature_vector(r) for r in rows])

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        rows: Sequence[PredictorRow],
        targets: Sequence[float],
        seed: int = 0,
        *,
        curve_epochs: int = 0,
        regressors: Sequence[str] | None = None,
    ) -> AccuracyPredictor:
        """Score the regressors by 5-fold out-of-fold predictions, refit the best on all rows.

        ``targets`` are test accuracies in ``[0, 1]``. ``regressors`` restricts the candidates by
        name (default: all eight). Raises `InvalidRequest` with fewer than `MIN_TRAINED_MODELS`
        rows, mismatched lengths, non-finite or out-of-range targets, or unknown regressor names.
        """
        if len(rows) < MIN_TRAINED_MODELS:
            raise InvalidRequest(
                f"need at least {MIN_TRAINED_MODELS} trained models to fit the accuracy "
                f"predictor; the database has {len(rows)}"
            )
        y = np.asarray(targets, dtype=np.float64)
        if y.shape != (len(rows),):
            raise InvalidRequest(
                f"got {len(rows)} rows but {y.size} targets; give one accuracy per row"
            )
        if not np.all(np.isfinite(y)) or y.min() < 0.0 or y.max() > 1.0:
            raise InvalidRequest("targets must be accuracies in [0, 1] (no NaN)")
        candidates = _regressors(seed)
        if regressors is not None:
            unknown = sorted(set(regressors) - set(candidates))
            if unknown or not regressors:
                raise InvalidRequest(
                    f"unknown regressor(s) {unknown or '(none given)'}; "
                    f"choose from {sorted(candidates)}"
                )
            candidates = {k: v for k, v in candidates.items() if k in regressors}

        predictor = cls(curve_epochs)
        predictor.seed = seed
        predictor.datasets = sorted({name for r in rows for name in r.similarity})
        predictor.architecture_dim = int(np.asarray(rows[0].architecture).size)
        x = predictor._matrix(rows)
        with threadpool_limits(1):
            predictor._fit_matrix(x, y, candidates)
        predictor.n_rows = len(rows)
        predictor.fingerprint = _fingerprint(rows, y)
        return predictor

    def _fit_matrix(self, x: np.ndarray, y: np.ndarray, candidates: dict[str, Pipeline]) -> None:
        folds = list(KFold(_FOLDS, shuffle=True, random_state=self.seed).split(x))
        out_of_fold: dict[str, np.ndarray] = {}
        scores = []
        for name, template in candidates.items():
            predicted = np.zeros_like(y)
            for train, test in folds:
                model = clone(template).fit(x[train], y[train])
                predicted[test] = model.predict(x[test])
            out_of_fold[name] = predicted
            scores.append(
                RegressorScore(
                    name=name,
                    mse=float(np.mean((predicted - y) ** 2)),
                    pearson=_safe(stats.pearsonr, predicted, y),
                    spearman=_safe(stats.spearmanr, predicted, y),
                    kendall=_safe(stats.kendalltau, predicted, y),
                )
            )
        scores.sort(key=lambda s: (-(s.kendall if math.isfinite(s.kendall) else -2.0), s.mse))
        self.scores = scores
        self.best = scores[0].name
        residuals = y - out_of_fold[self.best]
        self._residual_low = float(np.quantile(residuals, 0.05))
        self._residual_high = float(np.quantile(residuals, 0.95))
        self._model = clone(candidates[self.best]).fit(x, y)

    # ------------------------------------------------------------------ predicting
    def predict(self, rows: Sequence[PredictorRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, lower, upper)`` arrays, one entry per row, each clipped to ``[0, 1]``.

        lower/upper form the 90 % residual-quantile interval described in the module docstring.
        Raises `InvalidRequest` before fitting or for rows of the wrong shape.
        """
        if self._model is None:
            raise InvalidRequest("the accuracy predictor is not fitted; run `nasdb recommend fit`")
        if len(rows) == 0:
            empty = np.zeros(0)
            return empty, empty.copy(), empty.copy()
        with threadpool_limits(1):
            mean = np.asarray(self._model.predict(self._matrix(rows)), dtype=np.float64)
        lower = np.clip(mean + self._residual_low, 0.0, 1.0)
        upper = np.clip(mean + self._residual_high, 0.0, 1.0)
        mean = np.clip(mean, 0.0, 1.0)
        return mean, np.minimum(lower, mean), np.maximum(upper, mean)

    def report(self) -> list[dict[str, float | str]]:
        """Per-regressor scores, best first, JSON-ready."""
        return [s.as_dict() for s in self.scores]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the predictor with joblib, tagged with `PREDICTOR_FORMAT` and the fingerprint."""
        joblib.dump(
            {"format": PREDICTOR_FORMAT, "fingerprint": self.fingerprint, "predictor": self},
            Path(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> AccuracyPredictor:
        """Read a predictor written by `save` (a trusted file: joblib unpickles it).

        Raises `NotFound` for a missing file and `InvalidRequest` for another format.
        """
        path = Path(path)
        if not path.exists():
            raise NotFound(
                f"no accuracy-predictor file at {path}; fit one with `nasdb recommend fit`"
            )
        blob = joblib.load(path)
        found = blob.get("format") if isinstance(blob, dict) else None
        if found != PREDICTOR_FORMAT or not isinstance(blob.get("predictor"), cls):
            raise InvalidRequest(
                f"{path} holds accuracy-predictor format {found!r}, this code reads "
                f"{PREDICTOR_FORMAT!r}; refit it with `nasdb recommend fit`"
            )
        predictor: AccuracyPredictor = blob["predictor"]
        return predictor
