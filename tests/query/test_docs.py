"""docs/query.md documents every keyword, terminal and field the language accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nasdb.query import FIELDS, GRAMMAR_PATH
from nasdb.query._fields import AGGREGATES, CLASS_METRICS, EPOCH_FIELDS, LAYER_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "query.md").read_text(encoding="utf-8")
FENCED = re.findall(r"```\n(.*?)```", DOC, flags=re.S)
CODE = set(re.findall(r"`([^`\n]+)`", re.sub(r"```\n.*?```", "", DOC, flags=re.S))) | set(FENCED)
CODE_WORDS = {w.lower() for c in CODE for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*:?", c)}


def grammar_keywords() -> list[str]:
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    return sorted({w.lower() for w in re.findall(r'"([a-z]+)"i', grammar)} | {"has:"})


@pytest.mark.parametrize("keyword", grammar_keywords())
def test_keyword_is_documented(keyword: str) -> None:
    assert keyword in CODE_WORDS, f"grammar keyword {keyword!r} is not in docs/query.md"


@pytest.mark.parametrize(
    "name",
    [*FIELDS, *LAYER_TYPES, *AGGREGATES, *EPOCH_FIELDS, *CLASS_METRICS, "class", "metric"],
)
def test_name_is_documented_with_an_example(name: str) -> None:
    assert name.lower() in CODE_WORDS, f"{name!r} is not in docs/query.md"


def test_every_operator_and_unit_is_documented() -> None:
    for token in ["<", "<=", ">", ">=", "=", "!=", "~", "==", "k", "M", "G", "%", "us", "ms",
                  "min", "h", "d", "w", "1e-3", "max:", "min:"]:
        assert token in DOC, token


def test_grammar_terminals_are_covered() -> None:
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    terminals = set(re.findall(r"^([A-Z_]+)(?:\.\d)?:", grammar, flags=re.M))
    described = {"FIELD", "AGG", "DIRECTION", "OP", "NAME", "QUANTITY", "STRING", "_LPAR",
                 "_RPAR", "HAS", "ASC", "DESC", "NOT", "_OR", "_AND", "IN", "AGO", "PARETO",
                 "TOP", "BY", "SORT", "LIMIT", "COUNT", "GROUP", "LINEAGE", "EXPLAIN"}
    assert terminals == described, "a new terminal: document it in docs/query.md and list it here"
