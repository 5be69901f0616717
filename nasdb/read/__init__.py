"""nasdb.read: the read side. Named reads of the public views with typed rows (SQLModel).

The CLI, the web app, the steering commands and the recommender ask here for a model, a dataset
or a study (and for lists of them) instead of writing their own SQL for the same rows. The views
are built by `nasdb.ingest`'s projections; nothing here writes.
"""

from __future__ import annotations

from ._reads import (
    class_metrics,
    dataset_row,
    find_model,
    get_dataset,
    get_model,
    get_study,
    list_datasets,
    list_models,
    list_studies,
    suggest,
)
from ._rows import ClassMetricRow, DatasetRow, ModelRow, StudyRow

__all__ = [
    "ClassMetricRow",
    "DatasetRow",
    "ModelRow",
    "StudyRow",
    "class_metrics",
    "dataset_row",
    "find_model",
    "get_dataset",
    "get_model",
    "get_study",
    "list_datasets",
    "list_models",
    "list_studies",
    "suggest",
]
