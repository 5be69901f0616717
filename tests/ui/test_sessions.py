"""Interaction analysis (`nasdb.ui.sessions`, ``nasdb sessions``): exact figures on a hand-built
log, then the command on a real database where a session's ablation put a model on the front."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import DIGIT_CLASSES, completed_event
from nasdb.schema import Database
from nasdb.ui import sessions as s
from nasdb.ui.app import AppState, GenerateState
from tests.cli.test_basics import nasdb

from ._fixtures import fill, trained_model

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _a(session: str, position: int, seconds: float, action: str, view: str,
       **detail: object) -> s.Action:
    return s.Action(session, position, T0 + timedelta(seconds=seconds), action, view, detail,
                    "ada" if session == "A" else "bob")


MODELS = [
    s.ModelPoint("p1", 1_000, 0.5), s.ModelPoint("p2", 100_000, 0.9),
    s.ModelPoint("c1", 500, 0.6), s.ModelPoint("c2", 200_000, 0.85),
    s.ModelPoint("c3", 150_000, 0.4), s.ModelPoint("x1", 50_000, 0.95, "s2"),
    s.ModelPoint("q1", 40_000, None),
]
ACTIONS = [
    _a("A", 1, 0, "session_started", "Overview"),
    _a("A", 2, 10, "tab", "Generate", tab="Generate"),
    _a("A", 3, 20, "ablation", "Generate", parent="p2", children=["c1", "c2"]),
    _a("A", 4, 50, "tab", "Studies", tab="Studies"),
    _a("A", 5, 60, "refine_study", "Studies", study="s1", next_study="s2"),
    _a("A", 6, 80, "select", "Studies", model="x1"),
    _a("B", 7, 100, "session_started", "Overview"),
    _a("B", 8, 130, "variation", "Overview", parent="p1", children=["c3"]),
    _a("B", 9, 130 + 2 * 3600, "select", "Overview", model="c3"),  # after a long time away
]


def test_time_per_view_actions_in_order_and_what_moved_the_front() -> None:
    result = s.analyse(ACTIONS, MODELS)
    a, b = result.sessions
    assert a.session == "A" and a.actor == "ada" and a.seconds == 80
    assert a.view_seconds == {"Overview": 10, "Generate": 40, "Studies": 30}
    assert [x.action for x in a.actions] == ["session_started", "tab", "ablation", "tab",
                                              "refine_study", "select"]
    assert result.front == ("c1", "x1")
    ablation, refine = a.steering
    assert ablation.models == ("c1", "c2") and ablation.on_front == ("c1",)
    assert refine.models == ("x1",) and refine.on_front == ("x1",)
    # hypervolume in (log10 params, accuracy) up to (log10 200k, 0), by hand
    r = math.log10(200_000)
    full = (r - math.log10(500)) * 0.6 + (r - math.log10(50_000)) * 0.35
    without_c1 = (r - 3) * 0.5 + (r - math.log10(50_000)) * 0.45
    without_x1 = (r - math.log10(500)) * 0.6 + (r - 5) * 0.3
    assert ablation.front_gain == pytest.approx(full - without_c1, abs=1e-6)
    assert refine.front_gain == pytest.approx(full - without_x1, abs=1e-6)
    # session B: the two-hour gap counts as away; its variation's child is not on the front
    assert b.view_seconds == {"Overview": 30}
    [variation] = b.steering
    assert variation.on_front == () and variation.front_gain == 0 and not variation.paid_off
    assert [row["offset_s"] for row in b.timeline()] == [0, 30, 30 + 7200]
    kinds = {k.kind: k for k in result.kinds}
    assert [k.kind for k in result.kinds] == ["ablation", "refine_study", "variation"]
    assert (kinds["ablation"].paid_off, kinds["ablation"].models) == (1, 2)
    assert kinds["variation"].paid_off_share == 0.0


def test_exports_csv_and_json() -> None:
    result = s.analyse(ACTIONS, MODELS)
    rows = list(csv.DictReader(io.StringIO(s.to_csv(result))))
    assert len(rows) == len(ACTIONS) and tuple(rows[0]) == s.CSV_COLUMNS
    ablation = next(r for r in rows if r["action"] == "ablation")
    assert ablation["models"] == "c1 c2" and ablation["on_front"] == "c1"
    assert float(ablation["front_gain"]) > 0 and ablation["view"] == "Generate"
    data = json.loads(s.to_json(result))
    assert [x["session"] for x in data["sessions"]] == ["A", "B"]
    assert data["sessions"][0]["view_seconds"]["Generate"] == 40
    assert data["kinds"][0]["kind"] == "ablation" and data["kinds"][0]["paid_off_share"] == 1.0


def test_nasdb_sessions_reads_the_web_apps_log(db: Database) -> None:
    store = EventStore(db=db)
    fill(db, 20)
    parent = trained_model(db, store)
    app = AppState(db, store=store)
    app.record("session_started")
    app.select(parent)
    app.record("tab", tab="Generate")
    children = GenerateState(app).run_ablations()
    assert len(children) >= 2
    # the first child trains to the best accuracy of all: it is on the front
    labels = bytes(range(10)) * 3
    store.append(f"model-{children[0]}", [
        NewEvent("JobClaimed", {"worker": "t", "attempt": 1, "lease_seconds": 60.0}),
        completed_event(1, 0.9999, DIGIT_CLASSES, [0.99] * 10, labels, latency_ms=0.1,
                        train_seconds=1.0)])
    Projector(db).catch_up()

    out = nasdb(db.url, "sessions", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    [session] = [x for x in data["sessions"] if x["session"] == app.session_id]
    done = [a["action"] for a in session["actions"]]
    order = [done.index(a) for a in ("session_started", "select", "tab", "ablation")]
    assert order == sorted(order)  # the actions in the order they were taken
    [steer] = session["steering"]
    assert steer["kind"] == "ablation" and children[0] in steer["on_front"]
    assert steer["front_gain"] > 0 and children[0] in data["front"]
    assert "Generate" in session["view_seconds"] or session["seconds"] < 1

    table = nasdb(db.url, "sessions")
    assert table.returncode == 0 and app.session_id in table.stdout and "ablation" in table.stdout
    one = nasdb(db.url, "sessions", app.session_id)
    assert one.returncode == 0 and "actions in order" in one.stdout
    rows = list(csv.DictReader(io.StringIO(nasdb(db.url, "sessions", "--format", "csv").stdout)))
    assert any(r["action"] == "ablation" and children[0] in r["on_front"] for r in rows)
    missing = nasdb(db.url, "sessions", "u000000000000")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no session") and "Traceback" not in missing.stderr
