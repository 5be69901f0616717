"""`nasdb study refine`, `stop`, `list` and a time budget, as a person types them (in-process,
real database, real training)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from nasdb.ingest import EventStore

from .conftest import Result


def test_refine_stop_and_list(store: EventStore, nasdb: Callable[..., Result]) -> None:
    created = nasdb("study", "create", "--dataset", "digits", "--strategy", "random",
                    "--budget-models", "2", "--epochs", "1", "--name", "first")
    assert created.code == 0, created.err

    refined = nasdb("study", "refine", "first", "--set", "lr=1e-4..1e-2", "--drop", "dropout",
                    "--name", "second", "--budget-models", "1")
    assert refined.code == 0, refined.err
    lines = refined.out.splitlines()
    assert lines[-1] == "second" and len(lines) >= 3
    assert all(line.startswith("  ") for line in lines[:-1])  # the changes, in words
    assert any("lr" in line for line in lines[:-1])
    assert any("dropout" in line.lower() for line in lines[:-1])

    first_events = [e.type for e in store.read_stream("study-first")]
    assert first_events[-2:] == ["SearchSpaceRefined", "StudyStopped"]  # a running study stops
    [second] = [e for e in store.read_stream("study-second") if e.type == "StudyCreated"]
    assert second.data["previous_study_id"] == "first"
    assert second.data["budget"] == {"models": 1}

    listed = json.loads(nasdb("study", "list", "--format", "json").out)
    assert [(s["id"], s["strategy"], s["state"], s["previous_study_id"]) for s in listed] == [
        ("first", "random", "stopped", None), ("second", "random", "running", "first")]
    status = json.loads(nasdb("study", "status", "first", "--format", "json").out)[0]
    assert status["next_study_id"] == "second"

    stopped = nasdb("study", "stop", "second", "--reason", "enough")
    assert (stopped.code, stopped.out.strip()) == (0, "stopped second")
    assert store.read_stream("study-second")[-1].data == {"reason": "enough"}
    listed = json.loads(nasdb("study", "list", "--format", "json").out)
    assert [s["state"] for s in listed] == ["stopped", "stopped"]
    # A stopped study proposes nothing more when driven.
    before = store.last_position()
    ran = nasdb("study", "run", "second")
    assert ran.code == 0, ran.err
    assert ran.out.strip().endswith("study second: stopped")
    assert [e.type for e in store.read_all(after=before)] == []
    table = nasdb("study", "list")
    assert table.code == 0 and "first" in table.out and "second" in table.out


def test_a_time_budget_stops_the_study(store: EventStore, nasdb: Callable[..., Result]) -> None:
    created = nasdb("study", "create", "--dataset", "digits", "--strategy", "random",
                    "--budget-seconds", "3", "--epochs", "1", "--max-params", "20000",
                    "--name", "timed")
    assert created.code == 0, created.err
    time.sleep(1)  # the clock starts at the first step, not at creation
    before = json.loads(nasdb("study", "status", "timed", "--format", "json").out)[0]
    assert before["budget"]["seconds"]["used"] == 0
    started = time.monotonic()
    ran = nasdb("study", "run", "timed")
    elapsed = time.monotonic() - started
    assert ran.code == 0, ran.err
    assert ran.out.strip().endswith("study timed: done")
    status = json.loads(nasdb("study", "status", "timed", "--format", "json").out)[0]
    assert status["state"] == "done"
    assert list(status["budget"]) == ["seconds"] and status["budget"]["seconds"]["limit"] == 3
    assert status["budget"]["seconds"]["used"] >= 3  # it ran until the time was up, not before
    assert status["models"] >= 1
    assert elapsed >= 3
