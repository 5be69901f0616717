"""The study driver: restart after kill -9, two drivers, pause/resume/stop, refine, bad requests."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_study
from nasdb.schema.errors import ConcurrencyConflict, InvalidRequest, NotFound
from nasdb.search.strategies import PERTURB_FACTORS, get_strategy, perturb
from nasdb.steer import (
    create_study,
    load_view,
    pause_study,
    refine_study,
    resume_study,
    run_study,
    stop_study,
)
from nasdb.steer._study import take_step
from nasdb.trainers.worker import Worker

from .._kill import signal_when
from .test_strategies import TINY, assert_consistent


def _count(db, sql: str, *args: object) -> int:  # type: ignore[no-untyped-def]
    with db.connect() as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_a_driver_killed_with_sigkill_resumes_without_duplicates(store: EventStore) -> None:
    db = store.db
    study_id = create_study(store, "digits", "random", budget={"models": 6},
                            settings={"parallel": 2},
                            space=TINY.refined({"epochs": "3"})[0])
    env = {**os.environ, "NASDB_DATABASE_URL": db.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasdb.ui.cli", "study", "run", study_id, "--lease-seconds", "3",
         "--poll", "0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # killed mid-study, always: two models trained and a third claimed but not finished
        signal_when(db, proc, """
            (select count(*) filter (where type = 'TrainingCompleted') >= 2
                    and count(distinct stream_id) filter (where type = 'JobClaimed')
                        > count(*) filter (where type in ('TrainingCompleted', 'TrainingFailed'))
             from events where stream_id in (
                 select stream_id from events
                 where type = 'ArchitectureProposed' and data->>'study_id' = %s))""",
                    (study_id,))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    Projector(db).catch_up()
    before = load_view(store, study_id)
    assert before.state == "running"
    assert 0 < len(before.trials) < 6
    in_flight = [t.model_id for t in before.in_flight]
    assert in_flight, "the kill should leave models in flight"

    worker = Worker(db, lease_seconds=3)
    # max_seconds only stops a driver that never finishes (a guard, not a speed claim)
    assert run_study(db, study_id, train=lambda: worker.run(max_jobs=1), poll_seconds=0.1,
                     max_seconds=500) == "done"
    Projector(db).catch_up()
    after = load_view(store, study_id)
    assert len(after.trials) == 6  # none lost, none proposed twice
    assert all(t.status == "done" for t in after.trials)
    assert {t.model_id for t in before.trials} <= {t.model_id for t in after.trials}
    assert_consistent(store, study_id)
    # the job the dead driver was training was taken over once its lease expired
    attempts = [e.data["attempt"] for m in in_flight for e in store.read_stream(f"model-{m}")
                if e.type == "JobClaimed"]
    assert max(attempts) == 2


def test_two_drivers_cannot_take_the_same_step(store: EventStore) -> None:
    study_id = create_study(store, "digits", "random", budget={"models": 10}, space=TINY)
    Projector(store.db).catch_up()
    view = load_view(store, study_id)
    strategy = get_strategy("random")
    take_step(store, view, strategy.ask(view, 2))
    with pytest.raises(ConcurrencyConflict):
        take_step(store, view, strategy.ask(view, 2))  # a second driver with the same view
    Projector(store.db).catch_up()
    again = load_view(store, study_id)
    assert len(again.trials) == 2 and again.steps == 1


def test_pause_stops_proposals_and_claims_resume_continues(store: EventStore) -> None:
    db = store.db
    study_id = create_study(store, "digits", "random", budget={"models": 3}, space=TINY)
    pause_study(store, study_id, "looking at it")
    assert get_study(db, study_id).state == "paused"
    assert run_study(db, study_id, wait_when_paused=False) == "paused"
    assert load_view(store, study_id).trials == ()
    # models queued before a pause are not claimed by workers while it lasts
    resume_study(store, study_id)
    view = load_view(store, study_id)
    take_step(store, view, get_strategy("random").ask(view, 2))
    pause_study(store, study_id)
    assert Worker(db, lease_seconds=30).run() == 0
    resume_study(store, study_id)
    worker = Worker(db, lease_seconds=30)
    assert run_study(db, study_id, train=lambda: worker.run(max_jobs=1), poll_seconds=0.05) == \
        "done"
    assert len(load_view(store, study_id).trials) == 3
    with pytest.raises(InvalidRequest) as e:
        resume_study(store, study_id)
    assert str(e.value) == f"study {study_id} is done; it cannot be resumed"


def test_stop_ends_the_driver(store: EventStore) -> None:
    study_id = create_study(store, "digits", "random", budget={"models": 3}, space=TINY)
    stop_study(store, study_id, "enough")
    assert run_study(store.db, study_id) == "stopped"
    with pytest.raises(InvalidRequest) as e:
        pause_study(store, study_id)
    assert str(e.value) == f"study {study_id} is stopped; it cannot be paused"


def test_refine_links_the_next_study(store: EventStore) -> None:
    study_id = create_study(store, "digits", "tpe", budget={"models": 5}, space=TINY,
                            name="first")
    new_id, changes = refine_study(store, study_id, {"lr": "1e-3..1e-2"}, ["dropout"],
                                   name="second")
    assert new_id == "second"
    assert changes == ["lr: 0.0001,0.01 -> 0.001,0.01", "dropped dropout"]
    old, new = get_study(store.db, "first"), get_study(store.db, "second")
    assert old.state == "stopped" and old.next_study_id == "second"
    assert new.previous_study_id == "first" and new.strategy == "tpe"
    view = load_view(store, "second")
    assert view.space.hyperparameters.lr_range == (1e-3, 1e-2)
    assert view.space.dropped == ("Dropout",)
    assert "dropout" not in view.space.optuna_distributions()
    refined = [e.data for e in store.read_stream("study-first") if e.type == "SearchSpaceRefined"]
    assert refined[0]["next_study_id"] == "second"
    assert refined[0]["space"]["dropped"] == ["Dropout"]


@pytest.mark.parametrize("scale", [1e-5, 3.7e-3, 1e-1, 1.0, 42.0])
def test_pbt_perturbation_is_multiplicative_at_every_scale(scale: float) -> None:
    rng = random.Random(0)
    ratios = {round(perturb(scale, rng) / scale, 12) for _ in range(200)}
    assert ratios == set(PERTURB_FACTORS)
    for _ in range(50):
        new = perturb(scale, rng)
        assert new == scale * 0.8 or new == scale * 1.2


def test_pbt_explore_moves_lr_by_the_same_factor_small_or_large(store: EventStore) -> None:
    from dataclasses import replace

    from nasdb.search import Hyperparameters
    from nasdb.search.strategies import explore

    study_id = create_study(store, "digits", "pbt", budget={"models": 4}, space=TINY)
    Projector(store.db).catch_up()
    view = load_view(store, study_id)
    for lr in (1e-5, 1e-1):
        hp = replace(Hyperparameters(), lr=lr, weight_decay=1e-4)
        seen = set()
        for seed in range(40):
            new, changes = explore(hp, view, random.Random(seed), resample_probability=0.0)
            seen.add(round(new.lr / lr, 12))
            assert round(new.weight_decay / 1e-4, 12) in {0.8, 1.2}
            assert changes[0].startswith(f"lr: {lr:.4g} -> ")
        assert seen == {0.8, 1.2}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategy": "randm"},
     "unknown strategy 'randm' (did you mean 'random'?); choose one of random, evolution, "
     "hyperband, asha, pbt, tpe, nsga2, bohb, guided"),
    ({"budget": {"models": 0}},
     "a budget of 0 models is not possible: the budget must be a positive integer "
     "(--budget-models N)"),
    ({"budget": {"epochs": -3}},
     "a budget of -3 epochs is not possible: the budget must be a positive integer "
     "(--budget-epochs N)"),
    ({"budget": {}},
     "a study needs a budget: give --budget-models N, --budget-epochs N or --budget-seconds N"),
    ({"settings": {"populaton": 3}, "strategy": "evolution"},
     "unknown setting 'populaton' for strategy evolution; it takes changes, parallel, "
     "population, sample, seed"),
    ({"settings": {"eta": 1}, "strategy": "hyperband"}, "eta must be at least 2, got 1"),
    ({"objectives": ("accuracy",)},
     "unknown objective 'accuracy'; use val_acc, acc, params, flops, latency or acc:CLASS (one "
     "class's test accuracy, its recall)"),
    ({"objectives": ("acc:eleven",)},
     "objective 'acc:eleven': dataset digits has no class 'eleven'; its classes: 0, 1, 2, 3, 4, "
     "5, 6, 7, 8, 9"),
    ({"name": "Bad Name"},
     "study name 'Bad Name' is invalid: use lower-case letters, digits, '-' or '_' (at most 63 "
     "characters, starting with a letter or digit)"),
])
def test_bad_study_requests(store: EventStore, kwargs: dict, message: str) -> None:
    args = {"strategy": "random", "budget": {"models": 3}, **kwargs}
    strategy = args.pop("strategy")
    with pytest.raises(InvalidRequest) as e:
        create_study(store, "digits", strategy, **args)
    assert str(e.value) == message
    assert store.read_all(types=["StudyCreated"]) == []


def test_unknown_dataset_and_study(store: EventStore) -> None:
    with pytest.raises(NotFound) as e:
        create_study(store, "digit", "random", budget={"models": 1})
    assert str(e.value).startswith("dataset 'digit' is not registered (did you mean 'digits'?)")
    with pytest.raises(NotFound) as e2:
        get_study(store.db, "nope")
    assert str(e2.value) == ("no study 'nope'; studies: none yet. Create one with: nasdb study "
                             "create --dataset NAME --strategy random --budget-models 10")


def test_a_taken_study_name_is_refused(store: EventStore) -> None:
    create_study(store, "digits", "random", budget={"models": 1}, name="mine")
    with pytest.raises(InvalidRequest) as e:
        create_study(store, "digits", "random", budget={"models": 1}, name="mine")
    assert str(e.value) == "study 'mine' already exists; pick another --name"


def test_study_run_with_worker_processes_trains_the_budget(store: EventStore) -> None:
    db = store.db
    study_id = create_study(store, "digits", "random", budget={"models": 4},
                            settings={"parallel": 2}, space=TINY.refined({"epochs": "1"})[0])
    env = {**os.environ, "NASDB_DATABASE_URL": db.url}
    out = subprocess.run(
        [sys.executable, "-m", "nasdb.ui.cli", "study", "run", study_id, "--workers", "2",
         "--poll", "0.2"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    Projector(db).catch_up()
    view = load_view(store, study_id)
    assert len(view.trials) == 4 and all(t.status == "done" for t in view.trials)
    assert view.state == "done"
    workers = _count(db, "select count(distinct worker) from jobs where study_id = %s", study_id)
    assert workers >= 1
    assert _count(db, "select count(*) from workers where state = 'running'") == 0
