"""nasdb.query: the query language.

``run(text, db)`` parses, compiles to parameterised SQL over the public views and runs a query;
``parse`` and ``compile`` expose the two steps; ``format_result`` renders a `Result`.
``pareto_mask`` / ``front_ids`` are the one Pareto rule for callers outside the language.
See docs/query.md for the language.
"""

from __future__ import annotations

from nasdb.query._ast import Query, to_text
from nasdb.query._compiler import DEFAULT_LIMIT, Catalog, CompiledQuery, compile
from nasdb.query._fields import FIELDS
from nasdb.query._format import FORMATS, format_result
from nasdb.query._pareto import front_ids, pareto_mask
from nasdb.query._parser import GRAMMAR_PATH, parse
from nasdb.query._run import Result, run

__all__ = [
    "DEFAULT_LIMIT",
    "FIELDS",
    "FORMATS",
    "GRAMMAR_PATH",
    "Catalog",
    "CompiledQuery",
    "Query",
    "Result",
    "compile",
    "format_result",
    "front_ids",
    "pareto_mask",
    "parse",
    "run",
    "to_text",
]
