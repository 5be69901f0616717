"""Pareto exactness against a brute-force reference, on a real PostgreSQL (random data with ties
and missing metrics)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasdb.query import _compiler, compile, parse

from .conftest import insert

pytestmark = pytest.mark.usefixtures("pg")

# Small value sets make exact ties (and duplicate points) common.
ACC = st.one_of(st.none(), st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9]))
PARAMS = st.sampled_from([1000, 2000, 3000, 5000, 8000])  # models.params is NOT NULL
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
    insert(pg, "models", [{"id": f"m{i}", "test_acc": acc, "params": params, "latency_ms": lat,
                           "flops": flops} for i, (acc, params, lat, flops) in enumerate(rows)])


def ids(pg: psycopg.Connection[Any], text: str) -> list[str]:
    c = compile(parse(text))
    return [r[0] for r in pg.execute(c.sql, c.params).fetchall()]


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=[1, 3, 1000], ids=lambda n: f"anchors={n}")
def anchors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Two-objective fronts are pruned with the candidates best on the second objective; with
    few anchors the pruning really removes rows on these small tables (any number is exact)."""
    monkeypatch.setattr(_compiler, "_ANCHORS", request.param)
    return int(request.param)


# query -> its objectives to minimise, from a row (acc, params, latency, flops); None if missing
TWO_OBJECTIVES: dict[str, Callable[[tuple[Any, ...]], tuple[float, ...] | None]] = {
    "pareto": lambda r: None if r[0] is None or r[1] is None else (-r[0], r[1]),
    "pareto params acc": lambda r: None if r[0] is None or r[1] is None else (r[1], -r[0]),
    "pareto min:acc max:params": lambda r: None if r[0] is None or r[1] is None else (r[0], -r[1]),
    "pareto latency max:flops": lambda r: None if r[2] is None else (r[2], -r[3]),
}


@pytest.mark.parametrize("text", TWO_OBJECTIVES)
@SETTINGS
@given(rows=ROWS)
def test_two_objective_front_is_exact(
    pg: psycopg.Connection[Any], anchors: int, text: str, rows: list[Any]
) -> None:
    load(pg, rows)
    got = ids(pg, text)
    key = TWO_OBJECTIVES[text]
    points = {f"m{i}": p for i, r in enumerate(rows) if (p := key(r)) is not None}
    assert len(got) == len(set(got))
    assert set(got) == brute_front(points)
    assert got == sorted(got, key=lambda i: (*points[i], i))


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


# A model's bird accuracy: a value, NULL, or no bird row at all (still training).
BIRD = st.one_of(st.none(), st.just("no row"), st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9]))
CLASS_ROWS = st.lists(st.tuples(BIRD, PARAMS, ACC), max_size=40)


def cat_accuracy(i: int) -> float:
    return 1.0 - (i % 5) / 10


def focus_value(focus: str, i: int, bird: Any) -> float | None:
    """What ``class=<focus>`` makes the accuracy objective for model i (None: no value)."""
    if bird == "no row":
        return None
    if focus == "bird":
        return bird  # type: ignore[no-any-return]
    return cat_accuracy(i) if bird is None else (bird + cat_accuracy(i)) / 2  # avg skips NULL


@pytest.mark.parametrize("focus", ["bird", "bird,cat"])  # one class (pruned) and a mean
@SETTINGS
@given(rows=CLASS_ROWS)
def test_class_focus_front_is_exact(
    pg: psycopg.Connection[Any], anchors: int, focus: str, rows: list[Any]
) -> None:
    """The front is computed from (id, class accuracy, params) and the display columns joined
    afterwards: same ids, the right class accuracy on each row, nothing duplicated."""
    load(pg, [(acc, params, None, 10) for _, params, acc in rows])
    pg.execute("DELETE FROM class_metrics")
    insert(pg, "class_metrics",
           [{"model_id": f"m{i}", "class_index": 0, "class_name": "cat",
             "accuracy": cat_accuracy(i)} for i in range(len(rows))]
           + [{"model_id": f"m{i}", "class_index": 1, "class_name": "bird", "accuracy": bird}
              for i, (bird, _, _) in enumerate(rows) if bird != "no row"])
    c = compile(parse(f"pareto class={focus} params<6000"))
    got = pg.execute(c.sql, c.params).fetchall()
    points = {f"m{i}": (-v, p) for i, (b, p, _) in enumerate(rows)
              if (v := focus_value(focus, i, b)) is not None and p is not None and p < 6000}
    assert sorted(r[0] for r in got) == sorted(brute_front(points))
    assert all(r[3] == -points[r[0]][0] and r[2] == points[r[0]][1] for r in got)
    assert [(r[3], r[2]) for r in got] == sorted(((r[3], r[2]) for r in got),
                                                  key=lambda t: (-t[0], t[1]))
    c = compile(parse(f"pareto class={focus} params<6000 count"))
    assert pg.execute(c.sql, c.params).fetchone() == (len(got),)


def test_duplicates_of_a_front_point_are_all_kept(pg: psycopg.Connection[Any]) -> None:
    load(pg, [(0.9, 1000, None, 1), (0.9, 1000, None, 1), (0.9, 2000, None, 1),
              (0.8, 1000, None, 1), (0.95, 5000, None, 1), (None, 10, None, 1)])
    assert ids(pg, "pareto") == ["m4", "m0", "m1"]


def test_models_without_the_metric_are_counted_but_not_on_the_front(
    pg: psycopg.Connection[Any],
) -> None:
    load(pg, [(None, 1000, None, 1), (0.9, 2000, None, 1), (None, 3000, None, 1)])
    assert ids(pg, "pareto") == ["m1"]
    c = compile(parse("count"))
    assert pg.execute(c.sql, c.params).fetchone() == (3,)
    c = compile(parse("pareto count"))
    assert pg.execute(c.sql, c.params).fetchone() == (1,)
    assert ids(pg, "sort acc") == ["m1"]
