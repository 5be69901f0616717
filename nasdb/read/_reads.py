"""Named reads of the public views, returning typed rows: the one place nasdb asks for a model,
a dataset or a study by id, or lists them.

Every function opens a short session on the database's engine, so it is safe to call from any
thread; rows come back detached (plain typed objects). A missing id raises `NotFound` with a "did
you mean" suggestion and what to do next.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func
from sqlmodel import Session, col, select

from nasdb.schema.db import Database
from nasdb.schema.errors import NotFound
from nasdb.search import DatasetInfo

from ._rows import ClassMetricRow, DatasetRow, ModelRow, StudyRow

__all__ = [
    "ModelScore",
    "class_metrics",
    "dataset_row",
    "find_model",
    "get_dataset",
    "get_model",
    "get_study",
    "list_datasets",
    "list_models",
    "list_studies",
    "model_scores",
    "stored_architectures",
    "suggest",
    "trained_dataset_ids",
    "val_acc_curves",
]


def suggest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(text: Any) -> ColumnElement[int]:
    """The digits of an id as a number (``m12`` -> 12), for "nearest id" suggestions."""
    return cast(func.coalesce(func.nullif(func.regexp_replace(text, r"\D", "", "g"), ""), "0"),
                BigInteger)


def find_model(db: Database, model_id: str) -> ModelRow | None:
    """The model's row, or None."""
    with Session(db.engine) as session:
        return session.get(ModelRow, model_id)


def get_model(db: Database, model_id: str) -> ModelRow:
    """The model's row; `NotFound` suggesting the nearest ids when unknown."""
    with Session(db.engine) as session:
        row = session.get(ModelRow, model_id)
        if row is not None:
            return row
        distance = func.abs(_number(ModelRow.id) - _number(model_id))
        near = session.exec(select(ModelRow.id).order_by(distance).limit(5)).all()
    raise NotFound(f"no model {model_id!r}{suggest(model_id, list(near))}; see: nasdb models")


def list_models(
    db: Database,
    *,
    dataset_id: str | None = None,
    study_id: str | None = None,
    parent_id: str | None = None,
    statuses: Sequence[str] | None = None,
    tested: bool = False,
    limit: int | None = None,
) -> list[ModelRow]:
    """Models matching every filter given (``tested``: only those with a test accuracy), in id
    order (``m2`` before ``m10``), the first ``limit`` of them when given."""
    query = select(ModelRow)
    if dataset_id is not None:
        query = query.where(ModelRow.dataset_id == dataset_id)
    if study_id is not None:
        query = query.where(ModelRow.study_id == study_id)
    if parent_id is not None:
        query = query.where(ModelRow.parent_id == parent_id)
    if statuses is not None:
        query = query.where(col(ModelRow.status).in_(list(statuses)))
    if tested:
        query = query.where(col(ModelRow.test_acc).is_not(None))
    query = query.order_by(func.length(ModelRow.id), ModelRow.id)
    if limit is not None:
        query = query.limit(limit)
    with Session(db.engine) as session:
        return list(session.exec(query).all())


def list_datasets(db: Database) -> list[DatasetRow]:
    """Every registered dataset, in id order."""
    with Session(db.engine) as session:
        return list(session.exec(select(DatasetRow).order_by(DatasetRow.id)).all())


def dataset_row(db: Database, dataset_id: str) -> DatasetRow:
    """The dataset's row; `NotFound` naming the registered datasets when unknown."""
    with Session(db.engine) as session:
        row = session.get(DatasetRow, dataset_id)
        if row is not None:
            return row
        known = list(session.exec(select(DatasetRow.id).order_by(DatasetRow.id)).all())
    listing = ", ".join(known) if known else "none yet"
    raise NotFound(
        f"dataset {dataset_id!r} is not registered{suggest(dataset_id, known)}; "
        f"registered datasets: {listing}. Register one with: nasdb dataset add NAME"
    )


def get_dataset(db: Database, dataset_id: str) -> DatasetInfo:
    """The registered dataset as the model space needs it (input shape, classes, training size,
    and whether a horizontal flip keeps a class, as its latest DatasetRegistered recorded it;
    False when it predates that field); `NotFound` like `dataset_row`."""
    info = dataset_row(db, dataset_id).info
    with db.connect() as conn:
        row = conn.execute(
            "select (data->>'hflip')::boolean from events where stream_id = %s and type = "
            "'DatasetRegistered' order by version desc limit 1", (f"dataset-{dataset_id}",),
        ).fetchone()
    return replace(info, hflip=bool(row and row[0]))


def list_studies(db: Database) -> list[StudyRow]:
    """Every study, oldest first."""
    with Session(db.engine) as session:
        query = select(StudyRow).order_by(col(StudyRow.created_at), StudyRow.id)
        return list(session.exec(query).all())


def get_study(db: Database, study_id: str) -> StudyRow:
    """The study's row; `NotFound` naming the studies when unknown."""
    with Session(db.engine) as session:
        row = session.get(StudyRow, study_id)
        if row is not None:
            return row
        known = list(session.exec(select(StudyRow.id).order_by(StudyRow.id)).all())
    listing = ", ".join(known) if known else "none yet"
    raise NotFound(
        f"no study {study_id!r}{suggest(study_id, known)}; studies: {listing}. Create one "
        "with: nasdb study create --dataset NAME --strategy random --budget-models 10"
    )


def class_metrics(
    db: Database, *, model_ids: Sequence[str] | None = None, study_id: str | None = None
) -> list[ClassMetricRow]:
    """Per-class metrics of the given models (or of a study's models), by model and class index."""
    query = select(ClassMetricRow)
    if model_ids is not None:
        query = query.where(col(ClassMetricRow.model_id).in_(list(model_ids)))
    if study_id is not None:
        models = select(ModelRow.id).where(ModelRow.study_id == study_id)
        query = query.where(col(ClassMetricRow.model_id).in_(models))
    query = query.order_by(col(ClassMetricRow.model_id), col(ClassMetricRow.class_index))
    with Session(db.engine) as session:
        return list(session.exec(query).all())


def trained_dataset_ids(db: Database) -> list[str]:
    """The datasets with at least one trained model (done, with a test accuracy), in id order."""
    with db.connect() as conn:
        rows = conn.execute("select distinct dataset_id from models where status = 'done' "
                            "and test_acc is not null order by 1").fetchall()
    return [r[0] for r in rows]


def val_acc_curves(db: Database, model_ids: Sequence[str]) -> dict[str, list[float]]:
    """Validation accuracy per epoch (epoch order) of each of ``model_ids`` that recorded one."""
    out: dict[str, list[float]] = {}
    if not model_ids:
        return out
    with db.connect() as conn:
        for model_id, val_acc in conn.execute(
            "select model_id, val_acc from epochs where model_id = any(%s) and val_acc is not null "
            "order by model_id, epoch",
            (list(model_ids),),
        ).fetchall():
            out.setdefault(model_id, []).append(float(val_acc))
    return out


def stored_architectures(db: Database, *, exclude: Sequence[str] = ()) -> list[Any]:
    """Every distinct stored architecture (its JSON) of the models not in ``exclude``, in no
    particular order."""
    with db.connect() as conn:
        return [r[0] for r in conn.execute(
            "select distinct architecture from models where not (id = any(%s))",
            (list(exclude),)).fetchall()]


@dataclass(frozen=True)
class ModelScore:
    """A model's size and accuracies, and where it belongs (a light row of the `models` view)."""

    id: str
    params: int | None
    test_acc: float | None
    best_val_acc: float | None
    study_id: str | None
    dataset_id: str


def model_scores(db: Database) -> list[ModelScore]:
    """Every model's `ModelScore`, in no particular order."""
    with db.connect() as conn:
        rows = conn.execute("select id, params, test_acc, best_val_acc, study_id, dataset_id "
                            "from models").fetchall()
    return [ModelScore(*r) for r in rows]
