"""Artifacts: content-addressed blobs (checkpoints, fitted recommenders) referenced by events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Downgrade is lossy: it drops the stored checkpoints (events keep their sha256 references).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table artifacts (
            sha256     text primary key,
            kind       text not null,
            size       bigint not null,
            content    bytea not null,
            created_at timestamptz not null default now()
        );
        revoke all on artifacts from public;
        grant select, insert on artifacts to nasdb_writer;
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists artifacts")
