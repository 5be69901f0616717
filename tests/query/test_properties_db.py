"""The SQL the compiler produces runs on the real migrated schema: random but well-formed queries
(every field, operator, unit, verb, aggregate and class focus) are compiled and executed against a
database holding a few models; none may end in a database error."""

from __future__ import annotations

import random
from typing import Any

import psycopg

from nasdb.query import compile, parse
from nasdb.query._fields import AGGREGATES, EPOCH_FIELDS, FIELDS, Kind
from nasdb.schema.errors import QuerySyntaxError

from .conftest import insert

VALUES: dict[Kind, list[str]] = {
    Kind.COUNT: ["0", "3", "100k", "1.5M", "2G"],
    Kind.FRACTION: ["0.5", "90%", "0"],
    Kind.REAL: ["1e-3", "0.5", "-2", "10"],
    Kind.LATENCY: ["5ms", "200us", "1s"],
    Kind.DURATION: ["30s", "2min", "1h"],
    Kind.TIME: ["2h ago", "3d ago", '"2026-01-02"'],
    Kind.AGE: ["2h", "1d"],
    Kind.TEXT: ["m1", "digits", '"a b"', "zzz"],
    Kind.ENUM: [],  # the field's own choices
    Kind.TAGS: ["baseline", '"x y"'],
    Kind.LAYERS: ['"Conv2D.*Dense"', "D10", '"^C"'],
}
OPS = ["<", "<=", ">", ">=", "=", "!=", "~"]


def clause(rng: random.Random) -> str:
    name, field = rng.choice(sorted(FIELDS.items()))
    if field.kind is Kind.FLAG:
        return rng.choice([name, f"not {name}"])
    values = list(field.choices) or VALUES[field.kind]
    if rng.random() < 0.2:
        return f"{name} in ({', '.join(rng.sample(values, min(2, len(values))))})"
    return f"{name}{rng.choice(OPS)}{rng.choice(values)}"


def query_text(rng: random.Random) -> str:
    parts = [clause(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.3:
        parts.append(f"{rng.choice(list(AGGREGATES))}({rng.choice(list(EPOCH_FIELDS))})>0.1")
    if parts and rng.random() < 0.2:
        parts[0] = f"not {parts[0]}"
    if len(parts) >= 2 and rng.random() < 0.3:
        parts[-2:] = [f"({parts[-2]} or {parts[-1]})"]
    if rng.random() < 0.3:
        parts.append(rng.choice(["class=bird", "class=bird,cat", "class=cat metric=recall"]))
    numeric = [n for n, f in FIELDS.items() if f.kind in {Kind.COUNT, Kind.FRACTION, Kind.REAL,
                                                          Kind.LATENCY, Kind.DURATION}]
    verb = rng.choice([
        "", "", "pareto", f"pareto {rng.choice(numeric)} {rng.choice(numeric)}",
        f"pareto min:acc max:{rng.choice(numeric)}", f"top 5 by {rng.choice(numeric)}",
        f"sort {rng.choice(numeric)} desc limit 3", "group by origin", "group by status",
        "count", "pareto count", "lineage m2", "explain",
    ])
    return " ".join(p for p in [verb, *parts] if p)


def fill(pg: psycopg.Connection[Any]) -> None:
    insert(pg, "datasets", [{"id": "digits", "name": "digits", "classes": ["bird", "cat"],
                             "num_classes": 2}])
    insert(pg, "models", [
        {"id": "m1", "dataset_id": "digits", "params": 5000, "test_acc": 0.8, "tags": ["baseline"],
         "layer_types": ["Conv2D", "Dense"], "glyph": "C8k3-D10", "optimizer": "adam",
         "lr": 1e-3, "latency_ms": 1.0, "train_seconds": 20.0, "epochs_trained": 2},
        {"id": "m2", "dataset_id": "digits", "parent_id": "m1", "origin": "ablation",
         "params": 900, "test_acc": 0.6, "layer_types": ["Dense"], "glyph": "D10",
         "status": "done", "pinned": True},
        {"id": "m3", "dataset_id": "digits", "parent_id": "m2", "origin": "variation",
         "params": 70_000, "status": "training"},
    ])
    insert(pg, "class_metrics", [
        {"model_id": m, "dataset_id": "digits", "class_index": i, "class_name": c,
         "accuracy": a, "recall": a, "precision": a, "specificity": a}
        for m, base in (("m1", 0.8), ("m2", 0.6)) for i, (c, a) in
        enumerate((("bird", base), ("cat", base - 0.1)))
    ])
    insert(pg, "epochs", [{"model_id": "m1", "epoch": e, "val_acc": 0.5 + e / 10,
                           "train_acc": 0.6, "train_loss": 1 / e, "val_loss": 1 / e,
                           "lr": 1e-3, "seconds": 10.0} for e in (1, 2)])


def test_compiled_sql_runs_on_the_real_schema(pg: psycopg.Connection[Any]) -> None:
    fill(pg)
    rng = random.Random(0)
    executed, refused, failures = 0, 0, []
    for _ in range(600):
        text = query_text(rng)
        try:
            compiled = compile(parse(text))
        except QuerySyntaxError:
            refused += 1  # a kind mismatch (acc~m1, optimizer<3 ...) is refused with a message
            continue
        pg.execute("savepoint q")
        try:
            pg.execute(compiled.sql, compiled.params).fetchall()  # type: ignore[arg-type]
            executed += 1
        except psycopg.Error as e:
            failures.append(f"{text!r}: {type(e).__name__}: {str(e).splitlines()[0]}")
        finally:
            pg.execute("rollback to savepoint q")
    assert failures == []
    assert executed >= 350, (executed, refused)  # the generator reaches the database
