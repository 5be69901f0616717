"""Event store: the append-only events table, its single write path, roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Downgrade is lossy: it drops the event log.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The advisory-lock key every append takes; held to commit so commit order = position order.
APPEND_LOCK_KEY = 5_310_101


APPEND_SQL = f"""
        create function nasdb_append(p_stream text, p_expected integer, p_events jsonb)
        returns setof events
        language plpgsql security definer set search_path = public, pg_temp as $$
        declare
            v_current integer;
            v_existing integer;
            v_count integer := jsonb_array_length(p_events);
        begin
            -- One writer at a time, held until commit: positions become visible in order, so a
            -- reader polling position > last_seen can never skip an event.
            perform pg_advisory_xact_lock({APPEND_LOCK_KEY});

            select count(*) into v_existing from events
             where event_id in (select (e->>'event_id')::uuid
                                  from jsonb_array_elements(p_events) e);
            if v_existing > 0 then
                if v_existing = v_count then
                    return query select * from events
                     where event_id in (select (e->>'event_id')::uuid
                                          from jsonb_array_elements(p_events) e)
                     order by position;
                    return;
                end if;
                raise exception 'only % of % events in this append were already recorded',
                    v_existing, v_count using errcode = 'unique_violation';
            end if;

            select coalesce(max(version), 0) into v_current from events where stream_id = p_stream;
            if p_expected is not null and p_expected <> v_current then
                raise exception 'concurrency conflict' using
                    errcode = 'serialization_failure',
                    detail = format('stream=%s expected=%s actual=%s', p_stream, p_expected, v_current);
            end if;

            perform pg_notify('nasdb_events', p_stream);
            return query
            insert into events (event_id, stream_id, version, type, schema_version, data, metadata)
            select (e->>'event_id')::uuid, p_stream, v_current + t.ord::integer, e->>'type',
                   (e->>'schema_version')::integer, e->'data', e->'metadata'
              from jsonb_array_elements(p_events) with ordinality as t(e, ord)
             order by t.ord
            returning *;
        end $$;
"""


def upgrade() -> None:
    op.execute(
        """
        create table events (
            position       bigint generated always as identity primary key,
            event_id       uuid        not null unique,
            stream_id      text        not null,
            version        integer     not null check (version >= 1),
            type           text        not null,
            schema_version integer     not null default 1,
            data           jsonb       not null,
            metadata       jsonb       not null default '{}'::jsonb,
            recorded_at    timestamptz not null default clock_timestamp(),
            unique (stream_id, version)
        );
        create index events_type_position on events (type, position);

        create function nasdb_refuse_change() returns trigger language plpgsql as $$
        begin
            raise exception 'the event log is append-only: % on events is refused', tg_op
                using errcode = 'insufficient_privilege';
        end $$;
        create trigger events_no_update before update or delete on events
            for each row execute function nasdb_refuse_change();
        create trigger events_no_truncate before truncate on events
            for each statement execute function nasdb_refuse_change();
        """
    )
    op.execute(APPEND_SQL)
    op.execute(
        """
        do $$ begin
            if not exists (select 1 from pg_roles where rolname = 'nasdb_reader') then
                create role nasdb_reader nologin;
            end if;
            if not exists (select 1 from pg_roles where rolname = 'nasdb_writer') then
                create role nasdb_writer nologin;
            end if;
        end $$;
        revoke all on events from public;
        revoke all on function nasdb_append(text, integer, jsonb) from public;
        grant select on events to nasdb_writer;
        grant execute on function nasdb_append(text, integer, jsonb) to nasdb_writer;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop function if exists nasdb_append(text, integer, jsonb);
        drop table if exists events;
        drop function if exists nasdb_refuse_change();
        """
    )
