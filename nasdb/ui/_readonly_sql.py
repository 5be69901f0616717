"""`nasdb sql`: one statement, as the SELECT-only login role, read-only, with a timeout.

Four locks, any one of which stops a write: the statement goes through the extended protocol (a
prepared statement), which the server refuses to hold more than one command, so ``commit; ...``
cannot end the transaction and start another; the connection is a separate login role
(``nasdb_sql``, or ``NASDB_SQL_URL``) that holds SELECT on the views and nothing else — never the
owner switching role, which ``reset role`` would undo; the transaction is read-only (and the role's
default is too); and ``statement_timeout`` (``NASDB_SQL_TIMEOUT_SECONDS``) ends a runaway query.
A role that could write (a superuser, or one allowed to append or write read models) is refused
before the statement runs.
"""

from __future__ import annotations

from typing import Any

import psycopg

from nasdb.schema import settings
from nasdb.schema.db import Database, mask_url
from nasdb.schema.errors import DatabaseUnavailable, InvalidRequest

_CAN_WRITE = """
select r.rolsuper or r.rolcreaterole
       or has_function_privilege('nasdb_append_many(text[], integer[], jsonb)', 'execute')
       or has_table_privilege('rm_models', 'insert')
       or has_table_privilege('events', 'insert')
  from pg_roles r where r.rolname = current_user
"""


def run_readonly(db: Database, statement: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The result of one read-only statement as (columns, rows); `InvalidRequest` otherwise."""
    if not statement.strip():
        raise InvalidRequest("sql: give one SQL statement")
    timeout_ms = settings.statement_timeout_ms()
    options = "-c default_transaction_read_only=on"
    try:
        conn = db.connect(url=db.sql_url, options=options)
    except DatabaseUnavailable as e:
        raise DatabaseUnavailable(
            f"{e} (nasdb sql connects as the SELECT-only role at {mask_url(db.sql_url)}; set "
            "NASDB_SQL_URL to a login role granted nasdb_reader)"
        ) from e
    with conn:
        row = conn.execute(_CAN_WRITE).fetchone()
        if row is None or row[0]:
            raise InvalidRequest(
                f"sql: refused to run as {conn.info.user!r}, a role that can write; set "
                "NASDB_SQL_URL to a login role granted only nasdb_reader"
            )
        conn.rollback()
        conn.execute("set transaction read only")
        conn.execute(f"set local statement_timeout = {timeout_ms}")  # the statement's alone
        try:
            cur = conn.execute(statement, prepare=True)
        except psycopg.errors.QueryCanceled as e:
            raise InvalidRequest(
                f"sql: the statement ran past the {timeout_ms / 1000:g} s timeout "
                "(NASDB_SQL_TIMEOUT_SECONDS)"
            ) from e
        except psycopg.Error as e:
            message = (e.diag.message_primary or str(e)).strip().splitlines()[0]
            conn.close()  # a COPY leaves it mid-protocol: a rollback would log a second line
            raise InvalidRequest(f"sql: {message}") from e
        if cur.description is None:
            raise InvalidRequest("sql: the statement returned no rows (only queries can run here)")
        columns = [d.name for d in cur.description]
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
        conn.rollback()
    return columns, rows
