"""Indexes for the query language at a million models (measured with benchmarks/query.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

- rm_models (created_at desc, id): plain filter queries list the newest models first with a limit;
  with this index PostgreSQL walks models newest-first and stops after the limit instead of
  filtering and sorting every model (``max(val_acc)>0.85``: 7.9 s -> milliseconds at 1M models).
- rm_models (origin) include (test_acc): ``group by origin`` counts and takes the best / mean
  accuracy from an index-only scan instead of reading every (wide) model row.
- rm_class_metrics (class_name, accuracy): a class focus with an accuracy filter
  (``class=cat acc>0.99``) reads only the matching class rows.
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
        create index rm_class_metrics_class_accuracy on rm_class_metrics (class_name, accuracy);
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
