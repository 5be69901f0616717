"""The one entry point: text -> rows, for the CLI, the web UI and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from nasdb.query._compiler import Catalog, CompiledQuery, compile
from nasdb.query._datasets import check_one_dataset, scoped
from nasdb.query._errors import query_error
from nasdb.query._parser import parse
from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest, QuerySyntaxError

__all__ = ["Result", "run"]


class _Connectable(Protocol):
    def connect(self) -> Any: ...


@dataclass(frozen=True)
class Result:
    """What a query returned: rows (dicts keyed by `columns`), what was asked, and how.

    `kind` is the compiled query's kind (rows, pareto, top, count, group, lineage) or ``explain``
    when nothing was run (then `rows` is empty and `sql` / `params` say what would run).
    """

    rows: list[dict[str, Any]]
    columns: tuple[str, ...]
    description: str
    sql: str
    params: dict[str, Any]
    kind: str
    query_kind: str = field(default="")


def run(text: str, db: _Connectable | None, *, explain: bool = False,
        dataset: str | None = None) -> Result:
    """Parse, compile and run `text` against `db` (anything with ``.connect()`` giving a psycopg 3
    connection context manager, such as `nasdb.schema.Database`).

    ``explain=True`` (or the ``explain`` keyword in the text) returns the SQL and parameters
    without running them; then `db` may be None (no catalog: class names are not checked).
    ``dataset`` limits a query that names no dataset to that one (`_datasets.scoped`). A ranking
    (``pareto``, ``top``) that names no dataset while several are registered raises
    `DatasetNotChosen`, listing them. Runs in a read-only transaction with a statement timeout
    (NASDB_SQL_TIMEOUT_SECONDS; past it, `InvalidRequest`). Raises `QuerySyntaxError` for a bad
    query and lets the database layer's `DatabaseUnavailable` through.
    """
    query = scoped(parse(text), dataset)
    explain = explain or query.explain is not None
    if db is None:
        if not explain:
            raise ValueError("run() needs a database unless explain=True")
        return _explained(compile(query))
    timeout_ms = settings.statement_timeout_ms()
    try:
        with db.connect() as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            catalog = Catalog.load(conn)
            check_one_dataset(query, catalog.datasets)
            compiled = compile(query, catalog)
            if explain:
                return _explained(compiled)
            _check_regexes(conn, text, compiled)
            with conn.cursor(row_factory=dict_row) as cur:
                try:
                    cur.execute(compiled.sql, compiled.params)
                except psycopg.errors.InvalidRegularExpression as e:  # _check_regexes saw all
                    raise QuerySyntaxError(
                        f"query error: the database rejected a regular expression: {_reason(e)}",
                        text=text,
                    ) from e
                rows = [dict(r) for r in cur.fetchall()]
    except psycopg.errors.QueryCanceled as e:  # the catalog and regex checks are timed too
        raise InvalidRequest(
            f"the query ran past the {timeout_ms / 1000:g} s timeout "
            "(NASDB_SQL_TIMEOUT_SECONDS); narrow it with more filters or a limit"
        ) from e
    return Result(
        rows=rows,
        columns=compiled.columns,
        description=compiled.description,
        sql=compiled.sql,
        params=compiled.params,
        kind=compiled.kind,
        query_kind=compiled.kind,
    )


def _check_regexes(conn: Any, text: str, compiled: CompiledQuery) -> None:
    """Raise `QuerySyntaxError` with a caret under the first regular expression PostgreSQL
    rejects (its syntax is not Python's, which the compiler checked: ``(?P<name>...)``,
    ``a{300}`` or ``a++`` pass `re` but not PostgreSQL). One tiny statement per regex."""
    for value in compiled.regexes:
        try:
            conn.execute("SELECT '' ~ %s", (value.text,))
        except psycopg.errors.InvalidRegularExpression as e:
            raise query_error(
                text, value.line, value.column,
                f"invalid regular expression for PostgreSQL: {_reason(e)}",
                length=value.end_column - value.column,
            ) from e


def _reason(e: psycopg.Error) -> str:
    message = e.diag.message_primary or str(e).strip().splitlines()[0]
    return message.removeprefix("invalid regular expression: ")


def _explained(compiled: CompiledQuery) -> Result:
    return Result(
        rows=[],
        columns=compiled.columns,
        description=compiled.description,
        sql=compiled.sql,
        params=compiled.params,
        kind="explain",
        query_kind=compiled.kind,
    )
