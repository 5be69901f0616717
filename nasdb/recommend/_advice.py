"""Recommendations and predictions for a dataset, read from the database (AutoCl's view data).

`recommend_for` ranks the models of a dataset: trained ones by their measured test accuracy,
proposed/queued/training ones by the predictor (marked ``predicted``, with an interval), each with
its class-level metrics and its nearest trained neighbours (``why``). A dataset with nothing
trained yet gets the trained models of its most similar dataset (by the similarity recommender,
among datasets that have trained models), each re-checked against the new input shape, with
accuracies predicted for the new dataset and ``why`` naming the measured models on the source
dataset.

`predict_model` predicts one model's accuracy on a dataset and, when that is the model's own
dataset, records it with an AccuracyPredicted event (the read model's ``predicted_acc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasdb.ingest import EventStore, NewEvent
from nasdb.read import trained_dataset_ids, val_acc_curves
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidArchitecture, InvalidRequest, NotFound
from nasdb.schema.events import AccuracyPredicted
from nasdb.schema.vocabulary import FINISHED_JOB_STATES, MODEL_STATUSES

from ._recommend import Candidate, recommend
from ._service import (
    Bundle,
    has_architecture,
    load_bundle,
    partial_curve,
    usable_trained_models,
)

__all__ = ["predict_model", "recommend_for"]

_OPEN_STATES = tuple(s for s in MODEL_STATUSES if s not in FINISHED_JOB_STATES)


def _bundle(db: Database) -> Bundle:
    try:
        return load_bundle(db)
    except NotFound as e:
        raise NotFound(f"{e} (recommendations need a fitted predictor)") from None


def _class_metrics(db: Database, model_ids: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    from nasdb.read import class_metrics

    out: dict[str, dict[str, dict[str, float]]] = {}
    if not model_ids:
        return out
    for r in class_metrics(db, model_ids=model_ids):
        values = {"accuracy": r.accuracy, "precision": r.precision, "recall": r.recall,
                  "specificity": r.specificity, "support": r.support}
        out.setdefault(r.model_id, {})[r.class_name] = {
            k: float(v) for k, v in values.items() if v is not None
        }
    return out


def _open_models(db: Database, dataset_id: str) -> list[dict[str, Any]]:
    from nasdb.read import list_models

    rows = list_models(db, dataset_id=dataset_id, statuses=_OPEN_STATES)
    return [r.model_dump() for r in rows if has_architecture(r.architecture)]


def _source_dataset(bundle: Bundle, dataset_id: str) -> str:
    """The most similar other dataset that has trained models."""
    trained = [d for d in trained_dataset_ids(bundle.db) if d != dataset_id]
    if not trained:
        raise InvalidRequest(
            f"no model has been trained on {dataset_id!r} or on any other dataset; "
            "train some first (nasdb sample, then nasdb worker)"
        )
    shares = bundle.similarity_of(dataset_id)
    return max(trained, key=lambda d: (shares.get(d, 0.0), -trained.index(d)))


def _refit_shapes(models: Sequence[dict[str, Any]], dataset_id: str, db: Database) -> list[dict]:
    """The models re-counted for another dataset's input shape; those that do not fit dropped."""
    from nasdb.read import get_dataset
    from nasdb.search import Architecture
    from nasdb.trainers.measure import layer_table

    info = get_dataset(db, dataset_id)
    out = []
    for m in models:
        try:
            arch = Architecture.from_json(dict(m["architecture"]))
            infos = layer_table(arch, info.input_shape, info.num_classes)
        except InvalidArchitecture:
            continue
        out.append({**m, "params": sum(i.params for i in infos),
                    "flops": sum(i.flops for i in infos),
                    "glyph": arch.glyph(info.num_classes)})
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.asarray(np.clip(1.0 - a @ b.T, 0.0, 2.0))


def recommend_for(
    db: Database,
    dataset_id: str,
    *,
    max_params: int | None = None,
    classes: Sequence[str] = (),
    limit: int | None = 10,
    neighbours: int = 3,
) -> dict[str, Any]:
    """Ranked recommendations for ``dataset_id`` (see the module docstring).

    Returns ``{"dataset", "mode" ("trained" | "transfer"), "source_dataset", "recommenders",
    "recommendations": [...]}``. Raises `NotFound` for an unknown dataset or when nothing is
    fitted, `InvalidRequest` for an unknown class.
    """
    from nasdb.read import get_dataset

    get_dataset(db, dataset_id)
    bundle = _bundle(db)
    trained = usable_trained_models(db, dataset_id)
    mode = "trained" if trained else "transfer"
    source = dataset_id if trained else _source_dataset(bundle, dataset_id)
    if mode == "trained":
        pool = trained
        open_models = _open_models(db, dataset_id)
    else:
        pool = _refit_shapes(
            usable_trained_models(db, source),
            dataset_id, db,
        )
        open_models = []
        if classes:
            raise InvalidRequest(
                f"nothing has been trained on {dataset_id!r} yet, so there are no class-level "
                f"metrics to rank by; drop --class (recommendations come from {source!r})"
            )
    found_curves = val_acc_curves(db, [m["id"] for m in open_models])
    for m in open_models:
        m["curve"] = partial_curve(found_curves.get(m["id"], []), 0, False)
    models = pool + open_models
    rows = bundle.rows(dataset_id, models)
    metrics = _class_metrics(db, [m["id"] for m in trained])
    candidates = [
        Candidate(
            model_id=m["id"],
            hyperparameters=dict(m["hyperparameters"]),
            params=int(m["params"]),
            measured_accuracy=float(m["test_acc"])
            if mode == "trained" and m.get("test_acc") is not None else None,
            class_metrics=metrics.get(m["id"], {}),
            row=row,
        )
        for m, row in zip(models, rows, strict=True)
    ]
    predictor = bundle.predictor.model if bundle.predictor else None
    ranked = recommend(candidates, predictor, max_params=max_params, classes=list(classes),
                       neighbours=neighbours if mode == "trained" else 0, limit=limit)
    by_id = {m["id"]: m for m in models}
    source_vectors = np.stack([np.asarray(r.architecture, dtype=np.float64) for r in rows]) \
        if rows else np.zeros((0, 0))
    index = {m["id"]: i for i, m in enumerate(models)}
    out = []
    for r in ranked:
        item = r.as_dict()
        m = by_id[r.model_id]
        item["glyph"] = m["glyph"]
        item["dataset_id"] = dataset_id
        item["trained_on"] = m["dataset_id"] if m.get("test_acc") is not None else None
        item["status"] = m.get("status", "done")
        if mode == "transfer" and neighbours:
            own = index[r.model_id]
            d = _cosine(source_vectors[own][None, :], source_vectors)[0]
            d[own] = -1.0  # the model's own measured run comes first
            item["why"] = [
                {"model_id": models[j]["id"], "distance": round(max(float(d[j]), 0.0), 6),
                 "accuracy": float(models[j]["test_acc"]), "dataset_id": source}
                for j in np.argsort(d, kind="stable")[:neighbours]
            ]
        out.append(item)
    return {
        "dataset": dataset_id,
        "mode": mode,
        "source_dataset": source,
        "recommenders": bundle.ids,
        "recommendations": out,
    }


def predict_model(
    db: Database, model_id: str, dataset_id: str | None = None, *, record: bool = True
) -> dict[str, Any]:
    """Predicted test accuracy (with a 90 % interval) of ``model_id`` on ``dataset_id`` (default:
    its own dataset). Appends AccuracyPredicted when ``record`` and the dataset is the model's own.
    """
    from nasdb.read import get_dataset, get_model

    model = get_model(db, model_id).model_dump()
    target = dataset_id or model["dataset_id"]
    get_dataset(db, target)
    if not has_architecture(model.get("architecture")):
        raise InvalidRequest(
            f"model {model_id} has no recorded architecture; there is nothing to predict from"
        )
    bundle = _bundle(db)
    assert bundle.predictor is not None
    item: Mapping[str, Any]
    if target == model["dataset_id"]:
        curve = val_acc_curves(db, [model_id]).get(model_id, [])
        item = {**model, "curve": partial_curve(curve, int(model["epochs_trained"] or 0),
                                               model["status"] == "done")}
    else:
        refit = _refit_shapes([model], target, db)
        if not refit:
            raise InvalidRequest(
                f"model {model_id}'s architecture does not fit dataset {target!r} "
                "(its input shape leaves a layer with nothing to work on)"
            )
        item = {**refit[0], "curve": []}
    [row] = bundle.rows(target, [item])
    mean, low, high = bundle.predictor.model.predict([row])
    recorded = bool(record and target == model["dataset_id"])
    if recorded:
        EventStore(db=db).append(
            f"model-{model_id}",
            [NewEvent.of(AccuracyPredicted(
                predicted_acc=float(mean[0]), lower=float(low[0]), upper=float(high[0]),
                recommender_id=bundle.predictor.recommender_id))],
        )
    measured = model.get("test_acc") if target == model["dataset_id"] else None
    return {
        "model_id": model_id,
        "dataset": target,
        "predicted_acc": float(mean[0]),
        "lower": float(low[0]),
        "upper": float(high[0]),
        "measured_acc": measured,
        "curve_epochs_used": len(row.learning_curve),
        "regressor": bundle.predictor.metrics.get("best"),
        "recommender_id": bundle.predictor.recommender_id,
        "recorded": recorded,
    }
