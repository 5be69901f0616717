"""The append function's set-based catalogue check (revision 0016) refuses exactly what the
event-by-event check of 0015 refuses, and a refused batch names the same event and field."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore, NewEvent
from nasdb.ingest.synthetic import search_log
from nasdb.schema import Database
from nasdb.schema.catalogue_sql import field_rules
from tests.security.conftest import log_digest

SAMPLES: dict[str, Any] = {"string": "x", "integer": 1, "number": 0.5, "boolean": True,
                           "array": [], "object": {}, "null": None}
# every JSON type, and the numbers "integer" must tell apart
VALUES: list[Any] = [*SAMPLES.values(), 3.0, -2.5, 10**20, 1e-7, "1", [1], {"a": 1}, False]


def shapes() -> list[dict[str, Any]]:
    """Events of every type in the catalogue, valid and broken in every way one field can be."""
    by_kind: dict[tuple[str, int], list[Any]] = {}
    for rule in field_rules():
        by_kind.setdefault((rule.type, rule.schema_version), []).append(rule)
    out: list[dict[str, Any]] = []
    for (kind, version), rules in sorted(by_kind.items()):
        valid = {r.field: SAMPLES[(r.json_types or ("string",))[0]] for r in rules}
        variants: list[Any] = [valid, {}, [], "x", None, [valid],
                               {**valid, "undeclared": 1},
                               {r.field: v for r, v in zip(rules, valid.values(), strict=True)
                                if r.required}]
        for r in rules:
            variants.append({k: v for k, v in valid.items() if k != r.field})
            variants += [{**valid, r.field: value} for value in VALUES]
        for data in variants:
            out.append({"type": kind, "schema_version": version, "data": data})
        out.append({"type": kind, "schema_version": version + 99, "data": valid})
        if version > 1:  # an older version the code no longer describes: any object
            out += [{"type": kind, "schema_version": version - 1, "data": {"any": 1}},
                    {"type": kind, "schema_version": version - 1, "data": [1]}]
    out += [{"type": "Exploded", "schema_version": 1, "data": {}},
            {"type": "Pinned", "schema_version": 1, "data": {"extra": 1}},
            {"type": None, "schema_version": 1, "data": {}},
            {"type": "Tagged", "schema_version": "1", "data": {"tag": "a"}},
            {"type": "Tagged", "schema_version": 1}]
    return out


def test_the_set_based_check_agrees_with_the_event_by_event_one(db: Database) -> None:
    events = shapes()
    assert len(events) > 1000
    with psycopg.connect(db.url) as conn:
        rows = conn.execute(
            "select t.ord, nasdb_catalogue_ok(jsonb_build_array(t.e)), "
            "       nasdb_catalogue_problem(jsonb_build_array(t.e)) "
            "  from jsonb_array_elements(%s) with ordinality as t(e, ord) order by t.ord",
            (Jsonb(events),),
        ).fetchall()
    disagree = [(events[i - 1], ok, problem) for i, ok, problem in rows
                if ok != (problem is None)]
    assert disagree == []
    refused = sum(1 for _, ok, _ in rows if not ok)
    assert 0 < refused < len(rows)  # both kinds were tried


def test_a_refused_batch_names_its_first_bad_event_and_appends_nothing(
        db: Database, app_url: str) -> None:
    EventStore(db=db).append_batch([(s, evs, None) for s, evs in search_log(20, seed=3)])
    before = log_digest(db.url)
    good = [{"type": "Tagged", "schema_version": 1, "data": {"tag": f"t{i}"}} for i in range(50)]
    batch = [*good, {"type": "Tagged", "schema_version": 1, "data": {"tag": 5}}, *good,
             {"type": "Tagged", "schema_version": 1, "data": {}}]
    payload = [{**e, "s": 1, "event_id": str(uuid.uuid4()), "metadata": {}} for e in batch]
    with psycopg.connect(app_url, autocommit=True) as conn, pytest.raises(
            psycopg.errors.CheckViolation,
            match=r"invalid event: event 51 \(Tagged v1\): field tag: must be string"):
        conn.execute("select * from nasdb_append_many(array['model-m1'], array[null::int], %s)",
                     (Jsonb(payload),))
    assert log_digest(db.url) == before


def test_the_store_still_validates_an_event_built_from_a_dict(db: Database) -> None:
    """Only `NewEvent.of` events skip the second validation: their payload was validated when it
    was built. A dict is validated on append, bounds included."""
    from nasdb.schema.errors import InvalidEvent

    store = EventStore(db=db)
    with pytest.raises(InvalidEvent, match="priority"):
        store.append("model-m1", NewEvent("PriorityChanged", {"priority": 10**11}))
    assert store.read_stream("model-m1") == []
