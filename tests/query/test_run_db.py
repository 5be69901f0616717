"""`nasdb.query.run` end to end on hand-made rows in the real views of a migrated test database."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from nasdb.query import format_result, run
from nasdb.schema.errors import QuerySyntaxError

from .conftest import insert


@pytest.fixture
def filled(pg: psycopg.Connection[Any], temp_db: Any) -> Any:
    insert(pg, "datasets", [{"id": "cifar10", "name": "cifar10",
                             "classes": ["airplane", "bird", "cat"], "num_classes": 3}])
    insert(pg, "studies", [{"id": "s1", "dataset_id": "cifar10"}])
    rows = [
        ("m1", None, "sampled", 50_000, 0.80, "adam", ["Conv2D", "Activation", "Dense"], [],
         "C32k3-relu-D10"),
        ("m2", "m1", "ablation", 20_000, 0.70, "adam", ["Conv2D", "Dense"], ["baseline"], "C32k3-D10"),
        ("m3", "m1", "variation", 90_000, 0.85, "sgd", ["Conv2D", "BatchNorm", "Dense"], [], "C64k3-BN-D10"),
        ("m4", "m3", "variation", 200_000, 0.95, "sgd", ["Conv2D", "Conv2D", "Dense"], [], "C64k3-C64k3-D10"),
        ("m5", None, "sampled", 10_000, None, "adam", ["Dense"], [], "D10"),
    ]
    insert(pg, "models", [
        {"id": mid, "study_id": "s1", "dataset_id": "cifar10", "parent_id": parent,
         "origin": origin, "params": params, "test_acc": acc, "optimizer": opt,
         "layer_types": layers, "tags": tags, "glyph": glyph,
         "status": "training" if acc is None else "done", "changes": [f"made {mid}"]}
        for mid, parent, origin, params, acc, opt, layers, tags, glyph in rows
    ])
    insert(pg, "class_metrics", [
        {"model_id": mid, "dataset_id": "cifar10", "class_index": index, "class_name": name,
         "accuracy": value, "recall": value}
        for mid, bird, cat in [("m1", 0.9, 0.5), ("m2", 0.95, 0.4), ("m3", 0.6, 0.9),
                               ("m4", 0.7, 0.7)]
        for index, name, value in [(1, "bird", bird), (2, "cat", cat)]
    ])
    insert(pg, "epochs", [{"model_id": "m3", "epoch": epoch, "val_acc": val,
                           "train_loss": 1.0 / epoch}
                          for epoch, val in enumerate([0.5, 0.9, 0.8], 1)])
    return temp_db


def ids(result: Any) -> list[str]:
    return [r["id"] for r in result.rows]


def test_signature_query(filled: Any) -> None:
    result = run("pareto params<100k class=Bird", filled)
    assert result.kind == "pareto"
    assert ids(result) == ["m2"]  # m1 has lower bird accuracy and more params
    assert result.rows[0]["class_accuracy"] == pytest.approx(0.95)
    assert result.description == (
        "Pareto front of bird accuracy vs parameters among models with fewer than 100,000 "
        "parameters"
    )


def test_default_pareto_mean_of_two_classes(filled: Any) -> None:
    assert ids(run("pareto", filled)) == ["m4", "m3", "m1", "m2"]
    # mean(bird, cat): m1 .7 (50k), m2 .675 (20k), m3 .75 (90k), m4 .7 (200k): only m4 is dominated
    assert ids(run("pareto class=bird,cat", filled)) == ["m3", "m1", "m2"]


def test_filters_verbs_and_counts(filled: Any) -> None:
    assert run("count", filled).rows == [{"count": 5}]
    assert run("count acc>80%", filled).rows == [{"count": 2}]
    assert ids(run("top 2 by acc", filled)) == ["m4", "m3"]
    assert ids(run("sort params limit 2", filled)) == ["m5", "m2"]
    assert ids(run("has:BatchNorm or conv>=2 sort id", filled)) == ["m3", "m4"]
    assert ids(run('layers~"^Conv2D Dense$" sort id', filled)) == ["m2"]
    assert ids(run("tag=baseline", filled)) == ["m2"]
    assert ids(run("optimizer in (sgd) not parent=m1 sort id", filled)) == ["m4"]
    assert ids(run("max(val_acc)>0.85 last(loss)<0.4", filled)) == ["m3"]
    assert ids(run("created>1h ago sort id", filled)) == ["m1", "m2", "m3", "m4", "m5"]
    assert ids(run("age>1h", filled)) == []


def test_group_by(filled: Any) -> None:
    rows = run("group by origin", filled).rows
    assert [(r["origin"], r["count"]) for r in rows] == [
        ("sampled", 2), ("variation", 2), ("ablation", 1)
    ]
    assert rows[1]["best_acc"] == pytest.approx(0.95)
    assert rows[1]["mean_acc"] == pytest.approx(0.90)


def test_lineage(filled: Any) -> None:
    rows = run("lineage m3", filled).rows
    assert [(r["id"], r["generation"], r["changes"]) for r in rows] == [
        ("m1", -1, ["made m1"]), ("m3", 0, ["made m3"]), ("m4", 1, ["made m4"])
    ]


def test_explain_runs_nothing_and_works_without_a_database() -> None:
    result = run("explain top 5 by acc", None)
    assert result.kind == "explain"
    assert result.rows == []
    assert result.params == {"p1": 5}
    assert "ORDER BY m.test_acc DESC" in result.sql


def test_unknown_class_uses_the_catalog(filled: Any) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        run("class=brd", filled)
    assert str(info.value) == (
        "query error at column 7: unknown class 'brd' in dataset cifar10; did you mean 'bird'?\n"
        "  class=brd\n"
        "        ^^^\n"
        "classes of dataset cifar10: airplane, bird, cat"
    )


def test_injection_reaches_nothing(filled: Any, pg: psycopg.Connection[Any]) -> None:
    assert run("id=\"m1'; DROP TABLE models; --\"", filled).rows == []
    assert pg.execute("SELECT count(*) FROM models").fetchone() == (5,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'pinned layers~"C(?P<n>32)" sort id',
            "query error at column 15: invalid regular expression for PostgreSQL: quantifier "
            "operand invalid\n"
            '  pinned layers~"C(?P<n>32)" sort id\n'
            "                ^^^^^^^^^^^^",
        ),
        (
            'glyph~"^C" or tag~"a{300}"',
            "query error at column 19: invalid regular expression for PostgreSQL: invalid "
            "repetition count(s)\n"
            '  glyph~"^C" or tag~"a{300}"\n'
            "                    ^^^^^^^^",
        ),
    ],
)
def test_a_regex_python_accepts_but_postgresql_rejects_gets_a_caret(
    filled: Any, text: str, message: str
) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        run(text, filled)
    assert str(info.value) == message
    assert ids(run("sort id limit 1", filled)) == ["m1"]  # the connection is still usable


def test_formats(filled: Any) -> None:
    result = run("top 2 by acc", filled)
    rows = json.loads(format_result(result, "json"))
    assert [r["id"] for r in rows] == ["m4", "m3"]
    assert format_result(result, "csv").splitlines() == [
        "id,glyph,params,acc,status,epochs",
        "m4,C64k3-C64k3-D10,200000,0.95,done,0",  # epochs_trained: NOT NULL default 0
        "m3,C64k3-BN-D10,90000,0.85,done,0",
    ]
    table = format_result(result, "table")
    assert "Top 2 models by accuracy" in table and "200,000" in table and "2 rows" in table
    explained = format_result(run("explain top 2 by acc", None), "table")
    assert explained.startswith("-- Top 2 models by accuracy (highest first)\nSELECT")
    assert explained.endswith("-- parameters:\n  p1 = 2")


def test_pareto_then_sort_limit_and_count(filled: Any) -> None:
    """The front is computed narrow and its display columns joined after: sort, limit and count
    apply to the front's rows."""
    assert ids(run("pareto sort params desc", filled)) == ["m4", "m3", "m1", "m2"]
    assert ids(run("pareto sort params asc limit 2", filled)) == ["m2", "m1"]
    assert run("pareto count", filled).rows == [{"count": 4}]
    result = run("pareto acc epochs sort epochs", filled)  # an objective that is also shown
    assert result.columns == ("id", "glyph", "params", "acc", "epochs", "status")
