"""Typed rows of the public views, as SQLModel classes mapped onto them (read only).

Each class names the view it reads (``__tablename__``) and the columns nasdb's own code uses; the
views are the documented, stable interface (docs/contracts.md), so an analyst's `psql` and nasdb's
code read the same rows. Nothing creates these "tables": the views are made by the migrations and
filled by the projections (`nasdb.ingest`); these classes are never added to a session's writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from nasdb.search import DatasetInfo

__all__ = ["ClassMetricRow", "DatasetRow", "ModelRow", "StudyRow"]


def _texts() -> Any:
    return Field(default_factory=list, sa_column=Column(ARRAY(Text)))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSONB))


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ModelRow(SQLModel, table=True):
    """One row of the `models` view: a model, its training state and its results."""

    __tablename__ = "models"

    id: str = Field(primary_key=True)
    study_id: str | None = None
    dataset_id: str
    origin: str
    parent_id: str | None = None
    changes: list[str] = _texts()
    architecture: dict[str, Any] = _json()
    layer_types: list[str] = _texts()
    glyph: str
    depth: int
    params: int = Field(sa_column=Column(BigInteger))
    flops: int = Field(sa_column=Column(BigInteger))
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    epochs_planned: int | None = None
    hyperparameters: dict[str, Any] = _json()
    status: str
    priority: int = 0
    epochs_trained: int = 0
    best_val_acc: float | None = None
    last_val_acc: float | None = None
    last_val_loss: float | None = None
    last_train_loss: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    latency_ms: float | None = None
    train_seconds: float | None = None
    pinned: bool = False
    tags: list[str] = _texts()
    notes_count: int = 0
    predicted_acc: float | None = None
    error: str | None = None
    created_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)

    @property
    def acc(self) -> float | None:
        """Test accuracy (None until trained): ``acc`` means test accuracy everywhere."""
        return self.test_acc

    @property
    def val_acc(self) -> float | None:
        """The best validation accuracy so far."""
        return self.best_val_acc


class DatasetRow(SQLModel, table=True):
    """One row of the `datasets` view: a registered dataset."""

    __tablename__ = "datasets"

    id: str = Field(primary_key=True)
    name: str
    kind: str
    source: str
    fingerprint: str
    channels: int
    height: int
    width: int
    classes: list[str] = _texts()
    num_classes: int
    train_size: int
    val_size: int
    test_size: int
    val_seed: int
    registered_at: datetime = _when()

    @property
    def info(self) -> DatasetInfo:
        """What the model space needs of the dataset: its input shape, classes and training
        split size (whether flips are allowed is in the registration event: `get_dataset`)."""
        return DatasetInfo(self.id, (self.channels, self.height, self.width), tuple(self.classes),
                           train_size=self.train_size)


class StudyRow(SQLModel, table=True):
    """One row of the `studies` view: a study's definition and state."""

    __tablename__ = "studies"

    id: str = Field(primary_key=True)
    dataset_id: str
    strategy: str
    settings: dict[str, Any] = _json()
    space: dict[str, Any] = _json()
    objectives: list[str] = _texts()
    budget: dict[str, Any] = _json()
    state: str
    previous_study_id: str | None = None
    next_study_id: str | None = None
    created_at: datetime = _when()
    updated_at: datetime = _when()
    models_count: int = Field(default=0, sa_column=Column(BigInteger))


class ClassMetricRow(SQLModel, table=True):
    """One row of the `class_metrics` view: a trained model's metrics on one class of its test
    split (``accuracy`` is the class's recall)."""

    __tablename__ = "class_metrics"

    model_id: str = Field(primary_key=True)
    class_index: int = Field(primary_key=True)
    dataset_id: str
    class_name: str
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    specificity: float | None = None
    support: int | None = None
