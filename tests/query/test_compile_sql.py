# ruff: noqa: E501
"""Exact SQL, parameters and descriptions for representative queries (the compiler's contract)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from nasdb.query import Catalog, compile, parse

CATALOG = Catalog(
    classes={
        "cifar10": (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        )
    },
    studies=("fmnist-1",),
    datasets=("cifar10",),
)

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "pareto params<100k class=bird",
        "WITH candidates AS NOT MATERIALIZED (\n  SELECT m.id, cf.accuracy AS class_accuracy, m.params, -(cf.accuracy) AS o1, m.params AS o2\n  FROM models AS m\n  LEFT JOIN class_metrics AS cf ON cf.model_id = m.id AND cf.class_name = %(p1)s\n  WHERE m.params < %(p2)s\n    AND cf.accuracy IS NOT NULL\n    AND m.params IS NOT NULL\n), anchors AS (\n  SELECT * FROM candidates ORDER BY params ASC LIMIT 1000\n), pruned AS (\n  SELECT * FROM anchors\n  UNION ALL\n  SELECT * FROM candidates AS c\n  WHERE c.class_accuracy >= (SELECT max(a.class_accuracy) FROM anchors AS a)\n    AND c.class_accuracy <= 'NaN'::float8\n    AND NOT EXISTS (SELECT 1 FROM anchors AS a WHERE a.id = c.id)\n), front AS (\n  SELECT c.id, c.class_accuracy, c.params, c.o1, c.o2 FROM pruned AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o1 AS k, min(o2) AS best FROM pruned GROUP BY o1) AS g) AS s\n    ON c.o1 = s.k\n  WHERE c.o2 = s.best AND (s.before IS NULL OR c.o2 < s.before)\n)\nSELECT f.id, m.glyph, f.params, f.class_accuracy, m.status, m.epochs_trained AS epochs\nFROM front AS f\nJOIN models AS m ON m.id = f.id\nORDER BY f.o1, f.o2, f.id",
        {"p1": "bird", "p2": 100000},
        "Pareto front of bird accuracy vs parameters among models with fewer than 100,000 parameters",
    ),
    (
        "params<100k flops<=5M acc>=90%",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.params < %(p1)s\n  AND m.flops <= %(p2)s\n  AND m.test_acc >= %(p3)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p4)s",
        {"p1": 100000, "p2": 5000000, "p3": 0.9, "p4": 1000},
        "Models with fewer than 100,000 parameters and at most 5,000,000 FLOPs and accuracy at least 90%, newest first (at most 1,000)",
    ),
    (
        "top 10 by acc",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.test_acc IS NOT NULL\nORDER BY m.test_acc DESC, m.id\nLIMIT %(p1)s",
        {"p1": 10},
        "Top 10 models by accuracy (highest first)",
    ),
    (
        "sort params asc limit 20",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.params IS NOT NULL\nORDER BY m.params ASC, m.id\nLIMIT %(p1)s",
        {"p1": 20},
        "All models sorted by parameters (lowest first; models without one left out) (at most 20)",
    ),
    (
        "count status in (training, queued)",
        "SELECT count(*) AS count\nFROM models AS m\nWHERE m.status = ANY(%(p1)s)",
        {"p1": ["training", "queued"]},
        "Number of models with status training or queued",
    ),
    (
        "group by origin",
        "SELECT m.origin AS origin, count(*) AS count, max(m.test_acc) AS best_acc, avg(m.test_acc) AS mean_acc\nFROM models AS m\nGROUP BY 1\nORDER BY count(*) DESC, 1",
        {},
        "All models grouped by origin: count, best and mean accuracy",
    ),
    (
        "lineage m12",
        "WITH RECURSIVE ancestors AS (\n  SELECT m.id, m.parent_id, 0 AS generation FROM models AS m WHERE m.id = %(p1)s\n  UNION\n  SELECT p.id, p.parent_id, a.generation - 1 FROM models AS p JOIN ancestors AS a ON p.id = a.parent_id\n), descendants AS (\n  SELECT m.id, 0 AS generation FROM models AS m WHERE m.id = %(p1)s\n  UNION\n  SELECT c.id, d.generation + 1 FROM models AS c JOIN descendants AS d ON c.parent_id = d.id\n), tree AS (\n  SELECT id, generation FROM ancestors UNION SELECT id, generation FROM descendants\n)\nSELECT m.id, m.parent_id AS parent, t.generation AS generation, m.origin, m.changes, m.glyph, m.params, m.test_acc AS acc, m.status\nFROM tree AS t\nJOIN models AS m ON m.id = t.id\nORDER BY t.generation, m.id",
        {"p1": "m12"},
        "Lineage of m12: its ancestors and descendants with the change that made each",
    ),
    (
        "created>2h ago",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.created_at > now() - %(p1)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p2)s",
        {"p1": timedelta(seconds=7200), "p2": 1000},
        "Models created in the last 2 hours, newest first (at most 1,000)",
    ),
    (
        "age>1d",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.created_at < now() - %(p1)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p2)s",
        {"p1": timedelta(days=1), "p2": 1000},
        "Models older than 1 day, newest first (at most 1,000)",
    ),
    (
        'layers~"Conv2D.*Dense" has:BatchNorm conv>=3',
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE (m.glyph ~ %(p1)s OR array_to_string(m.layer_types, ' ') ~ %(p1)s)\n  AND m.layer_types && %(p2)s::text[]\n  AND cardinality(array_positions(m.layer_types, 'Conv2D')) >= %(p3)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p4)s",
        {"p1": "Conv2D.*Dense", "p2": ["BatchNorm"], "p3": 3, "p4": 1000},
        "Models with layers matching /Conv2D.*Dense/ and a BatchNorm layer and at least 3 Conv2D layers, newest first (at most 1,000)",
    ),
    (
        "max(val_acc)>0.9 last(loss)<0.3",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE (SELECT max(e.val_acc) FROM epochs AS e WHERE e.model_id = m.id) > %(p1)s\n  AND (SELECT e.train_loss FROM epochs AS e WHERE e.model_id = m.id AND e.train_loss IS NOT NULL ORDER BY e.epoch DESC LIMIT 1) < %(p2)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p3)s",
        {"p1": 0.9, "p2": 0.3, "p3": 1000},
        "Models with highest validation accuracy above 0.9 and last training loss below 0.3, newest first (at most 1,000)",
    ),
    (
        "not pinned tag=baseline optimizer!=adam",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE (m.pinned) IS NOT TRUE\n  AND %(p1)s = ANY(m.tags)\n  AND m.optimizer IS DISTINCT FROM %(p2)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p3)s",
        {"p1": "baseline", "p2": "adam", "p3": 1000},
        "Models that are not pinned and with tag baseline and optimizer other than adam, newest first (at most 1,000)",
    ),
    (
        "latency<2ms lr<1e-3 batch_size=128",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE m.latency_ms < %(p1)s\n  AND m.lr < %(p2)s\n  AND m.batch_size = %(p3)s\nORDER BY m.created_at DESC, m.id\nLIMIT %(p4)s",
        {"p1": 2.0, "p2": 0.001, "p3": 128, "p4": 1000},
        "Models with latency below 2 ms and learning rate below 1e-3 and batch size equal to 128, newest first (at most 1,000)",
    ),
    (
        "origin=ablation or (depth<8 and epochs>=5)",
        "SELECT m.id, m.glyph, m.params, m.test_acc AS acc, m.best_val_acc AS val_acc, m.status, m.epochs_trained AS epochs\nFROM models AS m\nWHERE (m.origin = %(p1)s OR (m.depth < %(p2)s AND m.epochs_trained >= %(p3)s))\nORDER BY m.created_at DESC, m.id\nLIMIT %(p4)s",
        {"p1": "ablation", "p2": 8, "p3": 5, "p4": 1000},
        "Models (with origin ablation or (with fewer than 8 layers (depth) and with at least 5 epochs trained)), newest first (at most 1,000)",
    ),
    (
        "class=bird,cat metric=recall top 3 by acc",
        "SELECT m.id, m.glyph, m.params, cf.value AS class_recall, m.status, m.epochs_trained AS epochs\nFROM models AS m\nLEFT JOIN (SELECT cm.model_id, avg(cm.recall) AS value FROM class_metrics AS cm WHERE lower(cm.class_name) = ANY(%(p1)s) GROUP BY cm.model_id HAVING count(DISTINCT lower(cm.class_name)) = %(p2)s) AS cf ON cf.model_id = m.id\nWHERE cf.value IS NOT NULL\nORDER BY cf.value DESC, m.id\nLIMIT %(p3)s",
        {"p1": ["bird", "cat"], "p2": 2, "p3": 3},
        "Top 3 models by mean bird and cat recall (highest first)",
    ),
    (
        "pareto acc latency flops",
        "WITH candidates AS (\n  SELECT m.id, m.test_acc AS acc, m.latency_ms AS latency, m.flops, -(m.test_acc) AS o1, m.latency_ms AS o2, m.flops AS o3\n  FROM models AS m\n  WHERE m.test_acc IS NOT NULL\n    AND m.latency_ms IS NOT NULL\n    AND m.flops IS NOT NULL\n), pivots AS (\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o1 AS k, min(o2) AS best FROM candidates GROUP BY o1) AS g) AS s\n    ON c.o1 = s.k\n  WHERE c.o2 = s.best AND (s.before IS NULL OR c.o2 < s.before)\n  UNION\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o2 AS k, min(o3) AS best FROM candidates GROUP BY o2) AS g) AS s\n    ON c.o2 = s.k\n  WHERE c.o3 = s.best AND (s.before IS NULL OR c.o3 < s.before)\n  UNION\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o3 AS k, min(o1) AS best FROM candidates GROUP BY o3) AS g) AS s\n    ON c.o3 = s.k\n  WHERE c.o1 = s.best AND (s.before IS NULL OR c.o1 < s.before)\n), survivors AS (\n  SELECT c.* FROM candidates AS c\n  WHERE NOT EXISTS (SELECT 1 FROM pivots AS q WHERE q.o1 <= c.o1 AND q.o2 <= c.o2 AND q.o3 <= c.o3 AND (q.o1 < c.o1 OR q.o2 < c.o2 OR q.o3 < c.o3))\n), front AS (\n  SELECT p.* FROM survivors AS p\n  WHERE NOT EXISTS (SELECT 1 FROM survivors AS q WHERE q.o1 <= p.o1 AND q.o2 <= p.o2 AND q.o3 <= p.o3 AND (q.o1 < p.o1 OR q.o2 < p.o2 OR q.o3 < p.o3))\n)\nSELECT f.id, m.glyph, m.params, f.acc, f.latency, f.flops, m.status, m.epochs_trained AS epochs\nFROM front AS f\nJOIN models AS m ON m.id = f.id\nORDER BY f.o1, f.o2, f.o3, f.id",
        {},
        "Pareto front of accuracy, latency and FLOPs",
    ),
    (
        "pareto class=cat params flops limit 5",
        "WITH candidates AS (\n  SELECT m.id, cf.accuracy AS class_accuracy, m.params, m.flops, -(cf.accuracy) AS o1, m.params AS o2, m.flops AS o3\n  FROM models AS m\n  LEFT JOIN class_metrics AS cf ON cf.model_id = m.id AND cf.class_name = %(p1)s\n  WHERE cf.accuracy IS NOT NULL\n    AND m.params IS NOT NULL\n    AND m.flops IS NOT NULL\n), pivots AS (\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o1 AS k, min(o2) AS best FROM candidates GROUP BY o1) AS g) AS s\n    ON c.o1 = s.k\n  WHERE c.o2 = s.best AND (s.before IS NULL OR c.o2 < s.before)\n  UNION\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o2 AS k, min(o3) AS best FROM candidates GROUP BY o2) AS g) AS s\n    ON c.o2 = s.k\n  WHERE c.o3 = s.best AND (s.before IS NULL OR c.o3 < s.before)\n  UNION\n  SELECT c.o1, c.o2, c.o3 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o3 AS k, min(o1) AS best FROM candidates GROUP BY o3) AS g) AS s\n    ON c.o3 = s.k\n  WHERE c.o1 = s.best AND (s.before IS NULL OR c.o1 < s.before)\n), survivors AS (\n  SELECT c.* FROM candidates AS c\n  WHERE NOT EXISTS (SELECT 1 FROM pivots AS q WHERE q.o1 <= c.o1 AND q.o2 <= c.o2 AND q.o3 <= c.o3 AND (q.o1 < c.o1 OR q.o2 < c.o2 OR q.o3 < c.o3))\n), front AS (\n  SELECT p.* FROM survivors AS p\n  WHERE NOT EXISTS (SELECT 1 FROM survivors AS q WHERE q.o1 <= p.o1 AND q.o2 <= p.o2 AND q.o3 <= p.o3 AND (q.o1 < p.o1 OR q.o2 < p.o2 OR q.o3 < p.o3))\n)\nSELECT f.id, m.glyph, f.params, f.class_accuracy, f.flops, m.status, m.epochs_trained AS epochs\nFROM front AS f\nJOIN models AS m ON m.id = f.id\nORDER BY f.o1, f.o2, f.o3, f.id\nLIMIT %(p2)s",
        {"p1": "cat", "p2": 5},
        "Pareto front of cat accuracy, parameters and FLOPs (at most 5)",
    ),
    (
        "explain pareto max:acc min:latency",
        "WITH candidates AS NOT MATERIALIZED (\n  SELECT m.id, m.test_acc AS acc, m.latency_ms AS latency, -(m.test_acc) AS o1, m.latency_ms AS o2\n  FROM models AS m\n  WHERE m.test_acc IS NOT NULL\n    AND m.latency_ms IS NOT NULL\n), anchors AS (\n  SELECT * FROM candidates ORDER BY latency ASC LIMIT 1000\n), pruned AS (\n  SELECT * FROM anchors\n  UNION ALL\n  SELECT * FROM candidates AS c\n  WHERE c.acc >= (SELECT max(a.acc) FROM anchors AS a)\n    AND c.acc <= 'NaN'::float8\n    AND NOT EXISTS (SELECT 1 FROM anchors AS a WHERE a.id = c.id)\n), front AS (\n  SELECT c.id, c.acc, c.latency, c.o1, c.o2 FROM pruned AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o1 AS k, min(o2) AS best FROM pruned GROUP BY o1) AS g) AS s\n    ON c.o1 = s.k\n  WHERE c.o2 = s.best AND (s.before IS NULL OR c.o2 < s.before)\n)\nSELECT f.id, m.glyph, m.params, f.acc, f.latency, m.status, m.epochs_trained AS epochs\nFROM front AS f\nJOIN models AS m ON m.id = f.id\nORDER BY f.o1, f.o2, f.id",
        {},
        "Pareto front of accuracy vs latency",
    ),
    (
        "pareto acc conv",
        "WITH candidates AS (\n  SELECT m.id, m.test_acc AS acc, cardinality(array_positions(m.layer_types, 'Conv2D')) AS conv, -(m.test_acc) AS o1, cardinality(array_positions(m.layer_types, 'Conv2D')) AS o2\n  FROM models AS m\n  WHERE m.test_acc IS NOT NULL\n    AND cardinality(array_positions(m.layer_types, 'Conv2D')) IS NOT NULL\n), front AS (\n  SELECT c.id, c.acc, c.conv, c.o1, c.o2 FROM candidates AS c\n  JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before\n        FROM (SELECT o1 AS k, min(o2) AS best FROM candidates GROUP BY o1) AS g) AS s\n    ON c.o1 = s.k\n  WHERE c.o2 = s.best AND (s.before IS NULL OR c.o2 < s.before)\n)\nSELECT f.id, m.glyph, m.params, f.acc, f.conv, m.status, m.epochs_trained AS epochs\nFROM front AS f\nJOIN models AS m ON m.id = f.id\nORDER BY f.o1, f.o2, f.id",
        {},
        "Pareto front of accuracy vs Conv2D layers",
    ),
]


@pytest.mark.parametrize(("text", "sql", "params", "description"), CASES, ids=[c[0] for c in CASES])
def test_exact_sql(text: str, sql: str, params: dict[str, Any], description: str) -> None:
    compiled = compile(parse(text), CATALOG)
    assert compiled.sql == sql
    assert compiled.params == params
    assert compiled.description == description


def test_columns_of_the_signature_query() -> None:
    compiled = compile(parse("pareto params<100k class=bird"), CATALOG)
    assert compiled.columns == ("id", "glyph", "params", "class_accuracy", "status", "epochs")
    assert compiled.kind == "pareto"


def test_class_names_match_case_insensitively_and_take_the_catalog_spelling() -> None:
    compiled = compile(parse("pareto class=BIRD"), CATALOG)
    assert compiled.params["p1"] == "bird"
    assert "cf.class_name = %(p1)s" in compiled.sql  # exact: the (class_name, ...) index applies
    assert compiled.description.startswith("Pareto front of bird accuracy vs parameters")


def test_without_a_catalog_any_class_is_accepted() -> None:
    compiled = compile(parse("class=Ankle top 1 by acc"))
    assert compiled.params["p1"] == "ankle"
    assert "lower(cf.class_name) = %(p1)s" in compiled.sql
