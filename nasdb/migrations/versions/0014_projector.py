"""Projector service: recorded projection failures, the projection's lag, lost workers.

Revision ID: 0014
Revises: 0006
Create Date: 2026-11-28

- rm_projection_failures: one row per event the projector could not apply (position, type, stream,
  handler, message), written in the transaction that advances the checkpoint past it; replay
  rebuilds it with the read models. Public as the ``projection_failures`` view.
- projection_status (view): the checkpoint, the log's last position and the lag between them,
  and how many events failed.
- rm_workers.lease_seconds: how long a worker may stay silent; the ``workers`` view shows a
  running worker whose last sign of life is older than that as ``lost`` (same columns as before).

Downgrade drops the failures and the lease column (the next replay rebuilds what remains).
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0006"
branch_labels = None
depends_on = None

DEFAULT_LEASE_SECONDS = 60  # a worker that never said its lease (older logs): the setting's default


def upgrade() -> None:
    op.execute(
        f"""
        create table rm_projection_failures (
            position  bigint primary key,
            stream_id text not null,
            type      text not null,
            handler   text not null,
            message   text not null,
            recorded_at timestamptz not null
        );
        create view projection_failures as select position, stream_id, type, handler,
            message, recorded_at from rm_projection_failures;

        alter table rm_workers add column lease_seconds double precision;
        create or replace view workers as select
            worker, host, pid, device,
            case when state = 'running'
                      and last_seen + make_interval(
                          secs => coalesce(lease_seconds, {DEFAULT_LEASE_SECONDS})) < now()
                 then 'lost' else state end as state,
            current_model, jobs_done, started_at, last_seen
        from rm_workers;

        create view projection_status as select
            coalesce((select position from projection_checkpoints where name = 'read_models'), 0)
                as projected_to,
            (select coalesce(max(position), 0) from events) as last_position,
            (select coalesce(max(position), 0) from events)
              - coalesce((select position from projection_checkpoints
                           where name = 'read_models'), 0) as lag,
            (select count(*) from rm_projection_failures) as failures;

        grant select on projection_failures, projection_status to nasdb_reader, nasdb_writer;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop view if exists projection_status;
        drop view if exists projection_failures;
        drop table if exists rm_projection_failures;
        create or replace view workers as select
            worker, host, pid, device, state, current_model, jobs_done, started_at, last_seen
        from rm_workers;
        alter table rm_workers drop column if exists lease_seconds;
        """
    )
