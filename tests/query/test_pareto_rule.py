"""One Pareto rule: the database's front (``pareto``) and the in-memory one (`pareto_mask`) are the
same rule, checked against the rule written literally, on random data full of ties, duplicates
and missing values, on a real PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasdb.query import compile, pareto_mask, parse

ACC = st.one_of(st.none(), st.sampled_from([0.5, 0.6, 0.7, 0.9]))
PARAMS = st.one_of(st.none(), st.sampled_from([1000, 2000, 5000]))
LATENCY = st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0]))
ROWS = st.lists(st.tuples(ACC, PARAMS, LATENCY), max_size=30)
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# query -> (columns of a row (acc, params, latency), maximise each)
QUERIES = {
    "pareto": ((0, 1), (True, False)),
    "pareto params acc": ((1, 0), (False, True)),
    "pareto acc params latency": ((0, 1, 2), (True, False, False)),
}


def rule(points: dict[str, tuple[float, ...]], maximise: tuple[bool, ...]) -> set[str]:
    """The definition, literally: no other model at least as good on all, better on one."""

    def better_eq(q: float, p: float, up: bool) -> bool:
        return q >= p if up else q <= p

    def dominates(q: tuple[float, ...], p: tuple[float, ...]) -> bool:
        return (all(better_eq(a, b, m) for a, b, m in zip(q, p, maximise, strict=True))
                and q != p)

    return {i for i, p in points.items() if not any(dominates(q, p) for q in points.values())}


@pytest.mark.parametrize("text", QUERIES)
@SETTINGS
@given(rows=ROWS)
def test_database_and_memory_fronts_are_the_one_rule(
    pg: psycopg.Connection[Any], text: str, rows: list[tuple[Any, ...]]
) -> None:
    pg.execute("DELETE FROM models")
    with pg.cursor() as cur:
        cur.executemany("INSERT INTO models (id, test_acc, params, latency_ms) "
                        "VALUES (%s, %s, %s, %s)", [(f"m{i}", *r) for i, r in enumerate(rows)])
    c = compile(parse(text))
    in_db = {r[0] for r in pg.execute(c.sql, c.params).fetchall()}
    cols, maximise = QUERIES[text]
    values = np.array([[math.nan if r[j] is None else r[j] for j in cols] for r in rows],
                      dtype=float).reshape(len(rows), len(cols))
    in_memory = {f"m{i}" for i in np.flatnonzero(pareto_mask(values, maximise))}
    points = {f"m{i}": tuple(float(r[j]) for j in cols) for i, r in enumerate(rows)
              if all(r[j] is not None for j in cols)}
    assert in_db == in_memory == rule(points, maximise)


def test_duplicates_of_a_front_point_are_all_on_it_and_ties_off_it() -> None:
    values = np.array([[0.9, 1000], [0.9, 1000], [0.9, 2000], [0.8, 1000], [math.nan, 10]])
    assert pareto_mask(values, (True, False)).tolist() == [True, True, False, False, False]
    with pytest.raises(ValueError, match="n x 2"):
        pareto_mask(np.zeros((3, 3)), (True, False))
