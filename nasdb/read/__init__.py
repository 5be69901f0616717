"""nasdb.read: the read side. Named reads of the public views with typed rows (SQLModel).

The CLI, the web app, the steering commands, the workers and the recommender ask here for a
model, a dataset, a study or the training queue (and for lists of them) instead of writing their
own SQL for the same rows. `nasdb.read.frames` reads the same views as pandas frames, for the web
app's plots and tables. The views are built by `nasdb.ingest`'s projections; nothing here writes.
"""

from __future__ import annotations

from ._queue import claimable_jobs, count_jobs
from ._reads import (
    ModelScore,
    class_metrics,
    dataset_row,
    find_model,
    get_dataset,
    get_model,
    get_study,
    list_datasets,
    list_models,
    list_studies,
    model_scores,
    stored_architectures,
    suggest,
    trained_dataset_ids,
    val_acc_curves,
)
from ._recommenders import RecordedRecommender, latest_recommender, recorded_recommender
from ._rows import ClassMetricRow, DatasetRow, ModelRow, StudyRow
from ._status import (
    ProjectionFailureRow,
    done_models_by_dataset,
    holdings,
    models_by_status,
    recent_projection_failures,
)
from ._trials import TrialRow, study_trials

__all__ = [
    "ClassMetricRow",
    "DatasetRow",
    "ModelRow",
    "ModelScore",
    "ProjectionFailureRow",
    "RecordedRecommender",
    "StudyRow",
    "TrialRow",
    "claimable_jobs",
    "class_metrics",
    "count_jobs",
    "dataset_row",
    "done_models_by_dataset",
    "find_model",
    "get_dataset",
    "get_model",
    "get_study",
    "holdings",
    "latest_recommender",
    "list_datasets",
    "list_models",
    "list_studies",
    "model_scores",
    "models_by_status",
    "recent_projection_failures",
    "recorded_recommender",
    "stored_architectures",
    "study_trials",
    "suggest",
    "trained_dataset_ids",
    "val_acc_curves",
]
