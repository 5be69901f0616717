"""`nasdb.query.run` on real data: synthetic events through the store and the projector, answers
checked against plain Python over the views."""

from __future__ import annotations

from typing import Any

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.query import run
from nasdb.schema import Database
from nasdb.schema.errors import QuerySyntaxError


@pytest.fixture
def searched(db: Database) -> Database:
    store = EventStore(db=db)
    store.append_batch([(stream, events, None) for stream, events in search_log(80, seed=7)])
    store.close()
    Projector(db).catch_up()
    return db


def rows(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    with db.connect(dict_rows=True) as conn:
        return list(conn.execute(sql, args).fetchall())


def ids(result: Any) -> list[str]:
    return [r["id"] for r in result.rows]


def front(points: dict[str, tuple[float, float]]) -> set[str]:
    """Brute force: ids whose (to-minimise) point no other point dominates."""
    return {
        i for i, p in points.items()
        if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points.values())
    }


def test_counts_filters_and_top(searched: Database) -> None:
    models = rows(searched, "select * from models")
    assert len(models) == 80
    assert run("count", searched).rows == [{"count": 80}]
    assert run("count status=done", searched).rows == [
        {"count": sum(m["status"] == "done" for m in models)}
    ]
    assert run("count params<1M", searched).rows == [
        {"count": sum(m["params"] < 1_000_000 for m in models)}
    ]
    done = sorted((m for m in models if m["test_acc"] is not None),
                  key=lambda m: (-m["test_acc"], m["id"]))
    assert ids(run("top 5 by acc", searched)) == [m["id"] for m in done[:5]]
    assert set(ids(run("pinned", searched))) == {m["id"] for m in models if m["pinned"]}
    assert set(ids(run("tag=keep", searched))) == {m["id"] for m in models if "keep" in m["tags"]}
    assert set(ids(run("has:BatchNorm", searched))) == {
        m["id"] for m in models if "BatchNorm" in m["layer_types"]
    }
    groups = {r["origin"]: r["count"] for r in run("group by origin", searched).rows}
    assert groups == {o: sum(m["origin"] == o for m in models) for o in groups}
    assert sum(groups.values()) == 80


def test_pareto_with_a_class_focus_matches_brute_force(searched: Database) -> None:
    cm = rows(searched, "select model_id, accuracy from class_metrics where class_name = '3'")
    params = {m["id"]: m["params"] for m in rows(searched, "select id, params from models")}
    points = {r["model_id"]: (-r["accuracy"], params[r["model_id"]]) for r in cm
              if params[r["model_id"]] < 1_000_000}
    result = run("pareto params<1M class=3", searched)
    assert set(ids(result)) == front(points)
    assert result.columns == ("id", "glyph", "params", "class_accuracy", "status", "epochs")
    assert result.description == (
        "Pareto front of 3 accuracy vs parameters among models with fewer than 1,000,000 "
        "parameters"
    )


def test_epoch_aggregate_and_lineage(searched: Database) -> None:
    best = rows(searched, "select model_id, max(val_acc) as best from epochs group by model_id")
    want = {r["model_id"] for r in best if r["best"] > 0.6}
    assert set(ids(run("max(val_acc)>0.6", searched))) == want
    child = rows(searched, "select id, parent_id from models where parent_id is not null "
                 "order by id limit 1")[0]
    lineage = run(f"lineage {child['id']}", searched).rows
    generations = {r["id"]: r["generation"] for r in lineage}
    assert generations[child["id"]] == 0 and generations[child["parent_id"]] == -1
    assert next(r for r in lineage if r["id"] == child["id"])["changes"] == ["synthetic"]


def test_class_names_come_from_the_dataset(searched: Database) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        run("class=33", searched)
    assert str(info.value) == (
        "query error at column 7: unknown class '33' in dataset synthetic; did you mean '3'?\n"
        "  class=33\n"
        "        ^^\n"
        "classes of dataset synthetic: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    with pytest.raises(QuerySyntaxError) as info:
        run("dataset=synthtic", searched)
    assert "did you mean 'synthetic'?" in str(info.value)


def test_injection_strings_change_nothing(searched: Database) -> None:
    for text in ["id=\"m1'; DROP VIEW models; --\"", "tag='x\\' OR 1=1 --'",
                 "glyph~\"'\\\\); DELETE FROM rm_models; --\""]:
        assert run(text, searched).rows == []
    assert run("count", searched).rows == [{"count": 80}]
