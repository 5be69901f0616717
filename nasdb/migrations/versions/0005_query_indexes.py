"""Indexes for the query language at a million models (measured with benchmarks/query.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

- rm_models (created_at desc, id): plain filter queries list the newest models first with a limit;
  with this index PostgreSQL walks models newest-first and stops after the limit instead of
  filtering and sorting every model (``max(val_acc)>0.85``: 7.9 s -> milliseconds at 1M models).
- rm_models (origin) include (test_acc): ``group by origin`` counts and takes the best / mean
  accuracy from an index-only scan instead of reading every (wide) model row.
- rm_class_metrics (class_name, accuracy) include (model_id): a class focus reads one class's
  (model, accuracy) pairs from an index-only scan instead of all 9M class rows
  (``pareto params<100k class=3``: 2.2 s -> 0.86 s at 1M models), and an accuracy filter on it
  (``class=3 acc>0.99``) only the matching range.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index rm_models_created on rm_models (created_at desc, id);
        create index rm_models_origin on rm_models (origin) include (test_acc);
        create index rm_class_metrics_class_accuracy on rm_class_metrics (class_name, accuracy)
            include (model_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists rm_class_metrics_class_accuracy;
        drop index if exists rm_models_origin;
        drop index if exists rm_models_created;
        """
    )
