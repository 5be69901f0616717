"""Result -> text: a rich table, JSON (an array of row objects) or CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from nasdb.query._run import Result

__all__ = ["FORMATS", "format_result"]

FORMATS = ("table", "json", "csv")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{float(value):.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def format_result(result: Result, fmt: str = "table", *, width: int = 120) -> str:
    """Render `result` as ``table`` (for people), ``json`` or ``csv`` (for programs).

    For an explained query the table shows the SQL and parameters; json gives
    ``{"sql", "params", "description"}``; csv is not meaningful and raises ValueError.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if result.kind == "explain":
        if fmt == "json":
            return json.dumps(
                {"description": result.description, "sql": result.sql, "params": result.params},
                default=_json_default,
                indent=2,
            )
        if fmt == "csv":
            raise ValueError("explain has no rows; use --format table or json")
        params = "\n".join(f"  {k} = {v!r}" for k, v in result.params.items())
        return f"-- {result.description}\n{result.sql}\n-- parameters:\n{params}".rstrip()
    if fmt == "json":
        return json.dumps(result.rows, default=_json_default, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow(
                [";".join(map(str, v)) if isinstance(v, list) else _csv(v)
                 for v in (row.get(c) for c in result.columns)]
            )
        return out.getvalue()
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for c in result.columns:
        table.add_column(c, justify="left" if c in {"id", "glyph", "status", "origin"} else "right")
    for row in result.rows:
        table.add_row(*(_cell(row.get(c)) for c in result.columns))
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(result.description, soft_wrap=True, markup=False, highlight=False)
    console.print(table)
    console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}")
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().rstrip("\n")


def _csv(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return float(value)
    return value
