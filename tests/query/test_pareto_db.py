"""Pareto exactness against a brute-force reference, on a real PostgreSQL (random data with ties
and missing metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasdb.query import compile, parse

pytestmark = pytest.mark.usefixtures("pg")

# Small value sets make exact ties (and duplicate points) common.
ACC = st.one_of(st.none(), st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9]))
PARAMS = st.one_of(st.none(), st.sampled_from([1000, 2000, 3000, 5000, 8000]))
LATENCY = st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0]))
FLOPS = st.sampled_from([10, 20, 30])
ROWS = st.lists(st.tuples(ACC, PARAMS, LATENCY, FLOPS), max_size=40)


def brute_front(points: Mapping[str, tuple[float, ...]]) -> set[str]:
    """Ids whose point (all to minimise) no other point dominates."""

    def dominates(q: tuple[float, ...], p: tuple[float, ...]) -> bool:
        return all(a <= b for a, b in zip(q, p, strict=True)) and q != p

    return {i for i, p in points.items() if not any(dominates(q, p) for q in points.values())}


def load(pg: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    pg.execute("DELETE FROM models")
    with pg.cursor() as cur:
        cur.executemany(
            "INSERT INTO models (id, test_acc, params, latency_ms, flops) VALUES (%s, %s, %s, %s, %s)",
            [(f"m{i}", *r) for i, r in enumerate(rows)],
        )


def ids(pg: psycopg.Connection[Any], text: str) -> list[str]:
    c = compile(parse(text))
    return [r[0] for r in pg.execute(c.sql, c.params).fetchall()]


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=ROWS)
def test_two_objective_front_is_exact(pg: psycopg.Connection[Any], rows: list[Any]) -> None:
    load(pg, rows)
    got = ids(pg, "pareto")
    points = {f"m{i}": (-a, p) for i, (a, p, _, _) in enumerate(rows) if a is not None and p is not None}
    assert len(got) == len(set(got))
    assert set(got) == brute_front(points)


@SETTINGS
@given(rows=ROWS)
def test_three_objective_front_is_exact(pg: psycopg.Connection[Any], rows: list[Any]) -> None:
    load(pg, rows)
    got = ids(pg, "pareto acc params latency")
    points = {
        f"m{i}": (-a, p, lat)
        for i, (a, p, lat, _) in enumerate(rows)
        if a is not None and p is not None and lat is not None
    }
    assert len(got) == len(set(got))
    assert set(got) == brute_front(points)


@SETTINGS
@given(rows=ROWS)
def test_four_objectives_with_overridden_direction(pg: psycopg.Connection[Any], rows: list[Any]) -> None:
    load(pg, rows)
    got = ids(pg, "pareto acc params latency max:flops")
    points = {
        f"m{i}": (-a, p, lat, -f)
        for i, (a, p, lat, f) in enumerate(rows)
        if a is not None and p is not None and lat is not None
    }
    assert set(got) == brute_front(points)


def test_duplicates_of_a_front_point_are_all_kept(pg: psycopg.Connection[Any]) -> None:
    load(pg, [(0.9, 1000, None, 1), (0.9, 1000, None, 1), (0.9, 2000, None, 1),
              (0.8, 1000, None, 1), (0.95, 5000, None, 1), (None, 10, None, 1)])
    assert ids(pg, "pareto") == ["m4", "m0", "m1"]


def test_models_without_the_metric_are_counted_but_not_on_the_front(
    pg: psycopg.Connection[Any],
) -> None:
    load(pg, [(None, 1000, None, 1), (0.9, 2000, None, 1), (None, None, None, 1)])
    assert ids(pg, "pareto") == ["m1"]
    c = compile(parse("count"))
    assert pg.execute(c.sql, c.params).fetchone() == (3,)
    c = compile(parse("pareto count"))
    assert pg.execute(c.sql, c.params).fetchone() == (1,)
    assert ids(pg, "sort acc") == ["m1"]
