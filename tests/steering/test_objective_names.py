"""``acc`` is test accuracy and ``val_acc`` validation accuracy in studies too; a study written when
``acc`` meant validation accuracy keeps ranking by it; a study's front is the one Pareto rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.query import pareto_mask
from nasdb.read import get_dataset
from nasdb.search import Architecture, Hyperparameters
from nasdb.search.strategies import StudySpace, StudyView, Trial
from nasdb.steer import load_view
from nasdb.steer._study import pareto_front
from tests.old_logs import append_raw


def trial(i: int, val: float | None, test: float | None, params: int) -> Trial:
    return Trial(model_id=f"m{i}", architecture=Architecture.from_json({"layers": []}),
                 hyperparameters=Hyperparameters(), status="done" if test is not None else
                 "training", params=params, flops=params, best_val_acc=val, test_acc=test)


def view(store: EventStore, trials: list[Trial], objectives: tuple[str, ...]) -> StudyView:
    return StudyView(id="s", dataset=get_dataset(store.db, "digits"), strategy="random",
                     settings={}, space=StudySpace(), objectives=objectives, budget={"models": 9},
                     state="running", created_at=datetime.now(UTC), steps=1, version=1,
                     trials=tuple(trials))


def test_acc_is_test_accuracy_and_val_acc_validation() -> None:
    t = trial(1, 0.8472, 0.8663, 1000)
    assert (t.value("acc"), t.value("val_acc")) == (0.8663, 0.8472)


def test_a_study_created_when_acc_meant_validation_accuracy_still_ranks_by_it(
    store: EventStore,
) -> None:
    append_raw(store.db, "study-old", [("StudyCreated", 1, {
        "study_id": "old", "dataset_id": "digits", "strategy": "random", "settings": {},
        "space": {}, "objectives": ["acc", "params"], "budget": {"models": 2},
        "previous_study_id": None})])
    Projector(store.db).catch_up()
    with store.db.connect() as conn:
        assert conn.execute("select objectives from studies where id = 'old'").fetchone() == (
            ["val_acc", "params"],)
    assert load_view(store, "old").objectives == ("val_acc", "params")


@pytest.mark.parametrize("objectives", [("val_acc", "params"), ("acc", "params", "flops")])
def test_a_studys_front_is_the_one_rule_with_ties_and_duplicates(
    store: EventStore, objectives: tuple[str, ...],
) -> None:
    rng = np.random.default_rng(3)
    trials = [trial(i, float(rng.choice([0.7, 0.8, 0.9])), float(rng.choice([0.6, 0.8])),
                    int(rng.choice([1000, 2000, 4000]))) for i in range(40)]
    trials.append(trial(99, 0.95, None, 10))  # in flight: no test accuracy, not ranked
    v = view(store, trials, objectives)
    values = np.array([[math.nan if (x := t.value(o)) is None else x for o in objectives]
                       for t in trials])
    want = {t.model_id for t, on in zip(trials, pareto_mask(values, [True] + [False] * (
        len(objectives) - 1)), strict=True) if on}
    got = [t.model_id for t in pareto_front(v)]
    assert set(got) == want and len(got) == len(want) and "m99" not in want
    # duplicates of a front point are all on it
    by_point: dict[tuple[float | None, ...], list[str]] = {}
    for t in trials:
        by_point.setdefault(tuple(t.value(o) for o in objectives), []).append(t.model_id)
    assert any(len(ids) > 1 and set(ids) <= want for ids in by_point.values())


def test_promoting_by_fronts_keeps_the_best_model_of_every_size(store: EventStore) -> None:
    # (val acc, params): by accuracy alone the three big models lead; by fronts the front of
    # accuracy and size leads (big and accurate, small and accurate, smallest), then the next front
    sizes = {1: (0.90, 90_000), 2: (0.89, 95_000), 3: (0.88, 99_000), 4: (0.85, 5_000),
             5: (0.80, 4_000), 6: (0.70, 50_000), 7: (0.60, 60_000), 8: (0.84, 6_000)}
    trials = [trial(i, val, val, params) for i, (val, params) in sizes.items()]
    trials.append(trial(9, None, None, 1_000))  # still training: no objective value, last
    v = view(store, trials, ("val_acc", "params"))
    assert [t.model_id for t in v.ranked(trials)][:3] == ["m1", "m2", "m3"]
    fronts = [t.model_id for t in v.ranked_by_fronts(trials)]
    assert fronts[:3] == ["m1", "m4", "m5"]  # the first front, most accurate first
    assert fronts[3:] == ["m2", "m8", "m3", "m6", "m7", "m9"]  # second front, third, fourth
    # one objective: fronts are the primary ranking
    single = view(store, trials, ("val_acc",))
    assert single.ranked_by_fronts(trials) == single.ranked(trials)


def test_asha_refuses_an_unknown_promotion_rule(store: EventStore) -> None:
    from nasdb.schema.errors import InvalidRequest
    from nasdb.steer import create_study

    with pytest.raises(InvalidRequest, match="promote must be one of primary, fronts, got 'size'"):
        create_study(store, "digits", "asha", budget={"models": 2}, settings={"promote": "size"},
                     space=StudySpace(), objectives=("val_acc", "params"))
