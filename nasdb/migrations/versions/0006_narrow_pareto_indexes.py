"""Covering indexes so a Pareto front is computed from narrow index data.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

The query compiler computes a front from (model id, objectives) alone and reads the wide model rows
only for the front's few members (measured with benchmarks/query.py at 1M models):

- rm_models (params) include (id, test_acc) replaces rm_models (params): a params filter, and the
  default accuracy-vs-params front, read ids, params and accuracy from an index-only scan instead
  of one scattered heap read per matching model (the 1,000 smallest models that anchor a front's
  pruning: an index walk with no heap reads).
- rm_class_metrics (class_name, model_id) include (accuracy) replaces rm_class_metrics (class_name,
  model_id): a class focus looks up a model's class accuracy from the index alone.

With the compiler's narrow-first, anchor-pruned fronts: ``pareto params<100k class=3`` 0.6-0.8 s ->
95 ms, ``pareto`` 5.4 s -> 13 ms at 1M models.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index rm_models_params_covering on rm_models (params) include (id, test_acc);
        drop index if exists rm_models_params;
        create index rm_class_metrics_class_model on rm_class_metrics (class_name, model_id)
            include (accuracy);
        drop index if exists rm_class_metrics_class;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        create index rm_class_metrics_class on rm_class_metrics (class_name, model_id);
        drop index if exists rm_class_metrics_class_model;
        create index rm_models_params on rm_models (params);
        drop index if exists rm_models_params_covering;
        """
    )
