"""Building the one `QuerySyntaxError` every bad query gets: message, query line, caret."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from nasdb.schema.errors import QuerySyntaxError

__all__ = ["query_error", "suggestion"]


def query_error(
    text: str,
    line: int,
    column: int,
    message: str,
    *,
    length: int = 1,
    extra: Iterable[str] = (),
) -> QuerySyntaxError:
    """A `QuerySyntaxError` pointing at `line`:`column` (1-based) with `length` carets.

    The message reads::

        query error at column 8: expected a number after '<'
          params<<100k
                 ^

    followed by one line per `extra` entry (suggestions, lists of valid names).
    """
    lines = text.split("\n") or [""]
    line = min(max(line, 1), len(lines))
    source = lines[line - 1].replace("\t", " ")
    column = max(column, 1)
    where = f"column {column}" if len(lines) == 1 else f"line {line}, column {column}"
    length = max(1, min(length, len(source) - column + 1))
    caret = " " * (column - 1) + "^" * length
    parts = [f"query error at {where}: {message}", f"  {source}".rstrip(), f"  {caret}"]
    parts.extend(extra)
    return QuerySyntaxError("\n".join(parts), text=text, column=column)


def suggestion(word: str, candidates: Sequence[str]) -> str:
    """``"; did you mean 'params'?"`` for the closest candidates, or ``""`` when none is close."""
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = [f"'{lowered[c]}'" for c in close]
    if len(quoted) == 1:
        return f"; did you mean {quoted[0]}?"
    return f"; did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"
