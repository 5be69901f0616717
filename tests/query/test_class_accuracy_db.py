"""Per-class accuracy is the class's recall everywhere the query language reads it, including for
logs written before that was so (their one-vs-rest numbers are lifted at read time)."""

from __future__ import annotations

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.ingest.synthetic import dataset_event
from nasdb.query import run
from nasdb.schema import Database
from nasdb.schema.events import current_version
from tests.old_logs import append_raw, proposed, v1_epoch_completed, v1_training_completed

CLASSES = ["0", "1", "2", "3"]


def confusion(recall_of_3: float, *, never_predicts_3: bool = False) -> list[list[int]]:
    """Four classes of 20 test images; classes 0-2 right 18 of 20 times; class 3 as asked."""
    rows = [[18 if j == i else (2 if j == (i + 1) % 3 else 0) for j in range(4)] for i in range(3)]
    right = 0 if never_predicts_3 else round(20 * recall_of_3)
    rows.append([20 - right, 0, 0, right])
    return rows


def old_model(db: Database, model_id: str, params: int, cm: list[list[int]]) -> None:
    """A finished model exactly as an old nasdb recorded it (v1 payloads)."""
    append_raw(db, f"model-{model_id}", [
        ("ArchitectureProposed", current_version("ArchitectureProposed"),
         proposed(model_id, "four", params, CLASSES)),
        ("TrainingRequested", 1, {"priority": 0}),
        ("JobClaimed", 1, {"worker": "old", "attempt": 1, "lease_seconds": 60.0}),
        ("EpochCompleted", 1, v1_epoch_completed({c: 0.9 for c in CLASSES})),
        ("TrainingCompleted", 1, v1_training_completed(cm, CLASSES)),
    ])


@pytest.fixture
def four(db: Database) -> Database:
    EventStore(db=db).append("dataset-four", [dataset_event("four", CLASSES)])
    # a: never predicts 3 (one-vs-rest 0.80 on 3: it scores for doing nothing), 1,000 params
    # b: right on 3 16 times in 20, 2,000 params;  c: 10 in 20, 500 params
    old_model(db, "a", 1000, confusion(0, never_predicts_3=True))
    old_model(db, "b", 2000, confusion(0.8))
    old_model(db, "c", 500, confusion(0.5))
    Projector(db).catch_up()
    return db


def test_class_accuracy_is_the_share_of_the_class_classified_correctly(four: Database) -> None:
    with four.connect() as conn:
        got = dict(conn.execute("select model_id, accuracy from class_metrics "
                                "where class_name = '3'").fetchall())
    assert got == pytest.approx({"a": 0.0, "b": 0.8, "c": 0.5})


def test_a_model_that_never_predicts_a_class_is_not_on_its_front(four: Database) -> None:
    # One-vs-rest accuracy would put a (0.80 on class 3 for never saying 3) on the front and
    # leave b (better on 3) off it.
    result = run("pareto class=3", four)
    assert [r["id"] for r in result.rows] == ["b", "c"]
    assert [r["class_accuracy"] for r in result.rows] == pytest.approx([0.8, 0.5])
    assert [r["id"] for r in run("top 1 by acc class=3", four).rows] == ["b"]


def test_one_vs_rest_accuracy_keeps_its_own_name_in_the_log(four: Database) -> None:
    store = EventStore(db=four)
    [done] = [e for e in store.read_stream("model-a") if e.type == "TrainingCompleted"]
    assert done.data["class_accuracy"][3] == 0.0
    assert done.data["class_ovr_accuracy"][3] == pytest.approx(60 / 80)
    [epoch] = [e for e in store.read_stream("model-a") if e.type == "EpochCompleted"]
    # an old epoch recorded only one-vs-rest numbers: kept under their name, recall unknown
    assert epoch.data["class_ovr_acc"] == {c: 0.9 for c in CLASSES}
    assert epoch.data["class_acc"] == {}
    payload = epoch.payload  # the typed payload agrees with the data (upcasting is idempotent)
    assert payload.model_dump()["class_ovr_acc"] == {c: 0.9 for c in CLASSES}


def test_replay_gives_the_same_class_accuracy(four: Database) -> None:
    with four.connect() as conn:
        before = conn.execute("select * from class_metrics order by model_id, class_index"
                              ).fetchall()
    Projector(four).replay()
    with four.connect() as conn:
        after = conn.execute("select * from class_metrics order by model_id, class_index"
                             ).fetchall()
    assert after == before and len(after) == 12


def test_every_reader_of_a_class_accuracy_sees_the_recall(four: Database) -> None:
    from nasdb.read.frames import class_accuracy
    from nasdb.recommend._advice import _class_metrics
    from nasdb.ui.app import ClassesState

    # the Recommend class focus, the overview's class colouring, the bump chart's default metric
    assert {m: v["3"]["accuracy"] for m, v in _class_metrics(four, ["a", "b", "c"]).items()} \
        == pytest.approx({"a": 0.0, "b": 0.8, "c": 0.5})
    assert class_accuracy(four, ["3"]).to_dict() == pytest.approx({"a": 0.0, "b": 0.8, "c": 0.5})
    assert ClassesState.param["metric"].default == "accuracy"
