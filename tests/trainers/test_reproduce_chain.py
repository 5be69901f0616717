"""`nasdb reproduce` of a model that resumed from another's checkpoint (PBT's exploit) replays the
whole chain of checkpoints from its events, on real digits, and says what it replayed."""

from __future__ import annotations

import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, propose
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.reproduce import reproduce
from nasdb.trainers.worker import Worker
from tests.cli.test_query_cli import nasdb

TINY = {"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3},
                   {"type": "Activation", "fn": "relu"}]}


def member(store: EventStore, lr: float, resume_from: str | None, parent: str | None) -> str:
    """One PBT member's interval: proposed, queued (resuming from ``resume_from``), trained."""
    hp = Hyperparameters.from_json({"epochs": 2, "early_stop_patience": 0, "seed": 5, "lr": lr})
    [mid] = propose(store, get_dataset(store.db, "digits"),
                    [Proposal(Architecture.from_json(TINY), hp, "mutation", parent)], queue=False)
    store.append(f"model-{mid}", [NewEvent("TrainingRequested",
                                           {"priority": 0, "resume_from": resume_from})])
    Projector(store.db).catch_up()
    assert Worker(store.db).run(max_jobs=1) == 1
    return mid


def checkpoint(store: EventStore, model_id: str) -> str:
    [done] = [e for e in store.read_stream(f"model-{model_id}") if e.type == "TrainingCompleted"]
    return str(done.data["checkpoint"])


@pytest.fixture
def chain(db: Database) -> tuple[EventStore, list[str]]:
    store = EventStore(db=db)
    register_dataset(store, "digits")
    Projector(db).catch_up()
    first = member(store, 3e-3, None, None)
    second = member(store, 2.4e-3, checkpoint(store, first), first)  # exploited first, perturbed
    third = member(store, 3.6e-3, checkpoint(store, second), second)
    return store, [first, second, third]


def test_reproduce_replays_the_resume_from_chain(chain: tuple[EventStore, list[str]]) -> None:
    store, ids = chain
    report = reproduce(store, ids[-1])
    assert report.same_predictions and report.difference == pytest.approx(0.0, abs=1e-9)
    assert [(r.model_id, r.epochs, r.resumed_from) for r in report.replayed] == [
        (ids[0], 2, None), (ids[1], 2, ids[0]), (ids[2], 2, ids[1])]
    assert report.epochs == 6  # every epoch behind the weights, not the last interval's alone
    out = nasdb(store.db.url, "reproduce", ids[-1])
    assert out.returncode == 0, out.stderr
    assert f"replayed {ids[0]} (2 epochs) -> {ids[1]} (2 epochs) -> {ids[2]} (2 epochs)" \
        in out.stdout
    assert "predictions identical" in out.stdout
