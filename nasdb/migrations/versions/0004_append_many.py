"""Set-based append: many streams in one statement, one lock, slim result rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_LOCK_KEY = 5_310_101  # the same lock as nasdb_append: one ordering for every writer


APPEND_MANY_SQL = f"""
        create function nasdb_append_many(p_streams text[], p_expected integer[], p_events jsonb)
        returns table (o_position bigint, o_event_id uuid, o_stream_id text, o_version integer,
                       o_recorded_at timestamptz, o_existed boolean)
        language plpgsql security definer set search_path = public, pg_temp as $$
        -- p_events: [{{"s": stream ordinal (1-based), "event_id", "type", "schema_version",
        --              "data", "metadata"}}, ...] in append order.
        declare
            v_existing integer;
            v_count integer := jsonb_array_length(p_events);
            v_heads integer[];
        begin
            perform pg_advisory_xact_lock({APPEND_LOCK_KEY});

            select count(*) into v_existing from events ev
             where ev.event_id in (select (e->>'event_id')::uuid
                                     from jsonb_array_elements(p_events) e);
            if v_existing > 0 then
                if v_existing = v_count then
                    return query select ev.position, ev.event_id, ev.stream_id, ev.version,
                                        ev.recorded_at, true
                                   from events ev
                                  where ev.event_id in (select (e->>'event_id')::uuid
                                                          from jsonb_array_elements(p_events) e)
                                  order by ev.position;
                    return;
                end if;
                raise exception 'only % of % events in this append were already recorded',
                    v_existing, v_count using errcode = 'unique_violation';
            end if;

            select array_agg(coalesce((select max(ev.version) from events ev
                                        where ev.stream_id = u.stream_id), 0) order by u.s)
              into v_heads
              from unnest(p_streams) with ordinality as u(stream_id, s);
            for i in 1 .. coalesce(array_length(p_streams, 1), 0) loop
                if p_expected[i] is not null and p_expected[i] <> v_heads[i] then
                    raise exception 'concurrency conflict' using
                        errcode = 'serialization_failure',
                        detail = format('stream=%s expected=%s actual=%s',
                                        p_streams[i], p_expected[i], v_heads[i]);
                end if;
            end loop;

            perform pg_notify('nasdb_events', p_streams[1]);
            return query
            insert into events as ev (event_id, stream_id, version, type, schema_version, data,
                                      metadata)
            select b.event_id, p_streams[b.s],
                   v_heads[b.s] + (row_number() over (partition by b.s order by b.ord))::integer,
                   b.type, b.schema_version, b.data, b.metadata
              from (select t.ord, (t.e->>'s')::integer as s, (t.e->>'event_id')::uuid as event_id,
                           t.e->>'type' as type, (t.e->>'schema_version')::integer
                               as schema_version,
                           t.e->'data' as data, t.e->'metadata' as metadata
                      from jsonb_array_elements(p_events) with ordinality as t(e, ord)) b
             order by b.ord
            returning ev.position, ev.event_id, ev.stream_id, ev.version, ev.recorded_at, false;
        end $$;
        revoke all on function nasdb_append_many(text[], integer[], jsonb) from public;
        grant execute on function nasdb_append_many(text[], integer[], jsonb) to nasdb_writer;
"""


def upgrade() -> None:
    op.execute(APPEND_MANY_SQL)


def downgrade() -> None:
    op.execute("drop function if exists nasdb_append_many(text[], integer[], jsonb)")
