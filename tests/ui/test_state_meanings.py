"""The web app's state keeps the words' meanings: the overview draws the front ``pareto`` returns
(ties and duplicates included), one dataset at a time (a selector, at first the most recently
used), ``acc`` is test accuracy, and a class focus colours by the classes' recall."""

from __future__ import annotations

import numpy as np
import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import DIGIT_CLASSES, completed_event, dataset_event, job_started
from nasdb.query import run
from nasdb.schema import Database
from nasdb.ui.app import AppState, StudiesState, TimelineState
from nasdb.ui.app._studies_state import ALL_MODELS
from tests.old_logs import proposed


def add(store: EventStore, dataset: str, mid: str, params: int, acc: float | None,
        recall_of_3: float = 0.5) -> None:
    events = [NewEvent("ArchitectureProposed", proposed(mid, dataset, params, DIGIT_CLASSES))]
    if acc is not None:
        per_class = [acc] * 10
        per_class[3] = recall_of_3
        events += job_started()
        events.append(completed_event(1, acc, DIGIT_CLASSES, per_class, b"\x01" * 8,
                                      latency_ms=0.1, train_seconds=1.0))
    store.append(f"model-{mid}", events)


@pytest.fixture
def two(db: Database) -> Database:
    store = EventStore(db=db)
    store.append("dataset-older", [dataset_event("older")])
    store.append("dataset-newer", [dataset_event("newer")])
    for mid, params in (("o1", 100), ("o2", 200)):  # 0.99 is ordinary on the older dataset
        add(store, "older", mid, params, 0.99)
    add(store, "newer", "n1", 1000, 0.9, recall_of_3=0.2)
    add(store, "newer", "n2", 1000, 0.9, recall_of_3=0.2)   # a duplicate of n1
    add(store, "newer", "n3", 2000, 0.9, recall_of_3=0.7)   # tied on acc, more params
    add(store, "newer", "n4", 500, 0.8, recall_of_3=0.1)
    add(store, "newer", "n5", 3000, 0.95, recall_of_3=0.6)
    add(store, "newer", "n6", 400, None)                    # not trained: no acc
    Projector(db).catch_up()
    return db


def front_of(app: AppState) -> set[str]:
    frame = app.frame()
    return set(frame.loc[frame["pareto"], "id"])


def test_the_overview_draws_the_front_pareto_returns(two: Database) -> None:
    app = AppState(two)
    assert app.dataset == "newer"  # the most recently used dataset
    pareto = {r["id"] for r in run("pareto dataset=newer", two).rows}
    assert front_of(app) == pareto == {"n1", "n2", "n4", "n5"}
    app.class_focus = ["3"]
    pareto3 = {r["id"] for r in run("pareto dataset=newer class=3", two).rows}
    assert front_of(app) == pareto3 == {"n1", "n2", "n3", "n4"}
    colours = app.color_values()  # the class focus colours by the class's recall
    assert colours["n3"] == pytest.approx(0.7) and colours["n4"] == pytest.approx(0.1)


def test_one_dataset_at_a_time_and_acc_is_test_accuracy(two: Database) -> None:
    app = AppState(two)
    models = app.models.set_index("id")
    assert sorted(models.index) == ["n1", "n2", "n3", "n4", "n5", "n6"]
    assert np.isnan(models.loc["n6", "acc"]) and models.loc["n5", "acc"] == 0.95
    assert "val_acc" in models.columns
    app.run_query("top 2 by acc")  # the console ranks the selected dataset
    assert app.query_error == "" and app.highlighted == ["n5", "n1"]
    timeline = TimelineState(app)
    assert timeline.steps == 5
    assert set(timeline.front()["model_id"]) == {"n1", "n2", "n4", "n5"}
    studies = StudiesState(app, study=ALL_MODELS)
    assert set(studies.models()["id"]) == set(models.index)

    app.dataset = "older"
    assert sorted(app.models["id"]) == ["o1", "o2"] and front_of(app) == {"o1"}
    assert app.highlighted == ["o1", "o2"]  # the query ran again, on the older dataset
    assert timeline.steps == 2 and set(studies.models()["id"]) == {"o1", "o2"}
    actions = [e.data for e in EventStore(db=two).read_stream(f"session-{app.session_id}")]
    assert {"action": "dataset", "detail": {"dataset": "older"}} in actions
