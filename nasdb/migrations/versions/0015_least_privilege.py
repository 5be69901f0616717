"""Least privilege: login roles for the application and for `nasdb sql`; the database checks payloads.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28

Roles (cluster-wide, created when missing, never dropped: other databases may use them):
- ``nasdb_reader`` (group): SELECT on the public views and ``events``.
- ``nasdb_writer`` (group): reads, and appends only through ``nasdb_append_many``.
- ``nasdb_projector`` (group): writes the read models (``rm_*``, checkpoints), nothing else.
- ``nasdb_app`` (login, no password): writer + projector, the everyday connection of the CLI,
  workers and the web app.
- ``nasdb_sql`` (login, no password): reader only, read-only transactions by default; what
  `nasdb sql` connects as.

``nasdb_append_many`` now refuses unknown (type, schema version) pairs and payloads that break the
catalogue generated from the pydantic classes (`nasdb.schema.catalogue_sql`), records the login
role that appended each event in its metadata (``db_user``), and ``nasdb_append`` becomes a thin
wrapper over it so there is one write path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

from nasdb.schema import catalogue_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_LOCK_KEY = 5_310_101  # the same lock as 0001 and 0004: one ordering for every writer

_CHECK = """
            -- The catalogue, enforced here for every client (generated from the payload classes).
            select format('event %s (%s v%s): %s', p.ord, p.type, p.ver, p.problem)
              into v_problem
              from (
                select t.ord, t.e->>'type' as type, t.e->>'schema_version' as ver,
                       case
                         when not exists (select 1 from nasdb_event_types c
                                           where c.type = t.e->>'type'
                                             and c.schema_version::text = t.e->>'schema_version')
                           then 'unknown event type or schema version'
                         when jsonb_typeof(t.e->'data') is distinct from 'object'
                           then 'the payload is not a JSON object'
                         else (select format('field %s: %s', f.field,
                                             case when not (t.e->'data' ? f.field)
                                                  then 'is required'
                                                  else 'must be ' || array_to_string(f.json_types,
                                                                                     ' or ') end)
                                 from nasdb_event_fields f
                                where f.type = t.e->>'type'
                                  and f.schema_version::text = t.e->>'schema_version'
                                  and ((f.required and not (t.e->'data' ? f.field))
                                       or (t.e->'data' ? f.field
                                           and not nasdb_json_type_ok(t.e->'data'->f.field,
                                                                      f.json_types)))
                                order by f.field limit 1)
                       end as problem
                  from jsonb_array_elements(p_events) with ordinality as t(e, ord)
              ) p
             where p.problem is not null
             order by p.ord limit 1;
            if v_problem is null then
                select format('event %s (%s): field %s is not declared by its type', t.ord,
                              t.e->>'type', k.key)
                  into v_problem
                  from jsonb_array_elements(p_events) with ordinality as t(e, ord),
                       jsonb_object_keys(t.e->'data') as k(key)
                 where not exists (select 1 from nasdb_event_fields f
                                    where f.type = t.e->>'type'
                                      and f.schema_version::text = t.e->>'schema_version'
                                      and f.field = k.key)
                   -- an older version the code no longer describes: any object is accepted
                   and exists (select 1 from nasdb_event_fields f
                                where f.type = t.e->>'type'
                                  and f.schema_version::text = t.e->>'schema_version')
                 order by t.ord limit 1;
            end if;
            if v_problem is not null then
                raise exception 'invalid event: %', v_problem using errcode = 'check_violation';
            end if;
"""


def _append_many(check: str) -> str:
    return f"""
        create or replace function nasdb_append_many(p_streams text[], p_expected integer[],
                                                      p_events jsonb)
        returns table (o_position bigint, o_event_id uuid, o_stream_id text, o_version integer,
                       o_recorded_at timestamptz, o_existed boolean)
        language plpgsql security definer set search_path = public, pg_temp as $$
        declare
            v_existing integer;
            v_count integer := jsonb_array_length(p_events);
            v_heads integer[];
            v_problem text;
        begin
            {check}
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
                           t.e->'data' as data,
                           coalesce(t.e->'metadata', '{{}}'::jsonb)
                               || jsonb_build_object('db_user', session_user::text) as metadata
                      from jsonb_array_elements(p_events) with ordinality as t(e, ord)) b
             order by b.ord
            returning ev.position, ev.event_id, ev.stream_id, ev.version, ev.recorded_at, false;
        end $$;
    """


def upgrade() -> None:
    op.execute(
        """
        do $$ begin
            if not exists (select 1 from pg_roles where rolname = 'nasdb_projector') then
                create role nasdb_projector nologin;
            end if;
            if not exists (select 1 from pg_roles where rolname = 'nasdb_app') then
                create role nasdb_app login;
            end if;
            if not exists (select 1 from pg_roles where rolname = 'nasdb_sql') then
                create role nasdb_sql login;
            end if;
        end $$;
        grant nasdb_writer, nasdb_projector to nasdb_app;
        grant nasdb_reader to nasdb_sql;
        alter role nasdb_sql set default_transaction_read_only = on;
        alter role nasdb_sql set statement_timeout = '30s';

        create table nasdb_catalogue (fingerprint text);
        insert into nasdb_catalogue values (null);
        create table nasdb_event_types (
            type           text    not null,
            schema_version integer not null,
            primary key (type, schema_version)
        );
        create table nasdb_event_fields (
            type           text    not null,
            schema_version integer not null,
            field          text    not null,
            json_types     text[],
            required       boolean not null,
            primary key (type, schema_version, field)
        );
        create function nasdb_json_type_ok(v jsonb, types text[]) returns boolean
        language sql immutable as $$
            select types is null
                or jsonb_typeof(v) = any(types)
                or ('integer' = any(types) and jsonb_typeof(v) = 'number'
                    and (v::text)::numeric = trunc((v::text)::numeric))
        $$;
        """
    )
    catalogue_sql.sync(op.get_bind())
    op.execute(_append_many(_CHECK))
    op.execute(
        """
        create or replace function nasdb_append(p_stream text, p_expected integer, p_events jsonb)
        returns setof events
        language plpgsql security definer set search_path = public, pg_temp as $$
        declare
            v_positions bigint[];
        begin
            select array_agg(r.o_position) into v_positions
              from nasdb_append_many(
                array[p_stream], array[p_expected],
                coalesce((select jsonb_agg(e || '{"s": 1}'::jsonb order by ord)
                            from jsonb_array_elements(p_events) with ordinality as t(e, ord)),
                         '[]'::jsonb)) r;
            return query select * from events where position = any(v_positions) order by position;
        end $$;

        revoke all on nasdb_catalogue, nasdb_event_types, nasdb_event_fields from public;
        grant select on nasdb_catalogue, nasdb_event_types, nasdb_event_fields, alembic_version
            to nasdb_writer;
        -- the read models (rm_*, checkpoints, whatever earlier revisions added), never the log,
        -- the catalogue, the blobs or the schema's version
        grant select, insert, update, delete, truncate on all tables in schema public
            to nasdb_projector;
        revoke insert, update, delete, truncate on events, nasdb_catalogue, nasdb_event_types,
            nasdb_event_fields, artifacts, alembic_version from nasdb_projector;
        -- tables later revisions add are the projector's to write (read models); the log is not
        alter default privileges in schema public
            grant select, insert, update, delete, truncate on tables to nasdb_projector;
        """
    )


def _sibling(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"_nasdb_rev_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    """Back to 0004's append functions; the log is kept, the roles stay (other databases on the
    server may use them)."""
    op.execute(
        """
        drop function if exists nasdb_append(text, integer, jsonb);
        drop function if exists nasdb_append_many(text[], integer[], jsonb);
        """
    )
    op.execute(_sibling("0004_append_many.py").APPEND_MANY_SQL)
    op.execute(_sibling("0001_event_store.py").APPEND_SQL)
    op.execute(
        """
        revoke all on function nasdb_append(text, integer, jsonb) from public;
        grant execute on function nasdb_append(text, integer, jsonb) to nasdb_writer;
        alter default privileges in schema public
            revoke select, insert, update, delete, truncate on tables from nasdb_projector;
        drop function if exists nasdb_json_type_ok(jsonb, text[]);
        drop table if exists nasdb_catalogue, nasdb_event_types, nasdb_event_fields;
        """
    )
