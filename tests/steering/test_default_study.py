"""The default search: `nasdb study create --dataset D` with no strategy, run for real on digits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import torch

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_study
from nasdb.schema.errors import NotFound
from nasdb.search import BLOCK_TYPES, Architecture, DatasetInfo, count_params
from nasdb.search.strategies import Ranked, Ranking, StudySpace, Suggestion, get_strategy
from nasdb.steer import (
    DEFAULT_STRATEGY,
    create_study,
    load_view,
    run_study,
    study_status,
)
from nasdb.trainers.worker import Worker

from .conftest import Result


def test_create_without_strategy_picks_the_default_search(
        store: EventStore, nasdb: Callable[..., Result]) -> None:
    made = nasdb("study", "create", "--dataset", "digits", "--name", "plain")
    assert made.code == 0, made.err
    row = get_study(store.db, "plain")
    assert row.strategy == DEFAULT_STRATEGY == "asha"
    # digits: 1294 training images, batch 64 -> 21 steps an epoch -> rungs of 8, 24, 72 epochs,
    # each rung's top third by Pareto fronts
    assert {k: row.settings[k] for k in
            ("min_epochs", "R", "eta", "resume", "candidates", "promote", "split_params")} == {
        "min_epochs": 8, "R": 72, "eta": 3, "resume": False, "candidates": 8,
        "promote": "fronts", "split_params": 10_000}
    assert row.budget == {"seconds": 3600}
    # a setting the user gives wins over the default's
    made = nasdb("study", "create", "--dataset", "digits", "--set", "promote=primary",
                 "--name", "by-accuracy")
    assert made.code == 0, made.err
    assert get_study(store.db, "by-accuracy").settings["promote"] == "primary"
    space = load_view(store, "plain").space
    assert space.architecture.is_modern and space.hyperparameters.base.schedule == "onecycle"
    remap = nasdb("study", "create", "--dataset", "digits", "--strategy", "random",
                  "--space", "remap", "--budget-models", "2", "--name", "seeds")
    assert remap.code == 0, remap.err
    assert not load_view(store, "seeds").space.architecture.is_modern
    bad = nasdb("study", "create", "--dataset", "digits", "--space", "modrn")
    assert bad.code == 2
    assert bad.err == ("error: unknown space 'modrn'; choose one of modern, remap, extended, or "
                       "give the space as a JSON object\n")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Digits-sized models train fastest on one thread, above all on a shared, busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.usefixtures("one_thread")
def test_a_default_study_on_digits_reaches_097_within_a_small_budget(
        store: EventStore, nasdb: Callable[..., Result]) -> None:
    # six configurations at 8 epochs, every other one drawn for the competition of models of at
    # most 10k parameters; once three models of one competition are done its best is promoted to
    # 24 epochs
    study_id = create_study(store, "digits", budget={"epochs": 72}, name="small")
    worker = Worker(store.db, lease_seconds=120)
    started = time.monotonic()
    assert run_study(store.db, study_id, train=lambda: worker.run(max_jobs=1)) == "done"
    print(f"default study on digits: {time.monotonic() - started:.1f}s")
    status = study_status(store.db, study_id)
    view = load_view(store, study_id)
    assert status["models_by_status"] == {"done": 7}
    assert [t.proposal.get("params_max") for t in view.trials if t.proposal["rung"] == 0] \
        == [None, 10_000] * 3
    rungs = {int(t.proposal["rung"]) for t in view.trials}
    assert rungs >= {0, 1}  # hopeless configurations stopped after the bottom rung
    best = max(view.done, key=lambda t: t.best_val_acc or 0.0)
    assert best.test_acc is not None and best.test_acc >= 0.97
    assert set(best.architecture.layer_types) & set(BLOCK_TYPES)
    # the recipe's augmentation follows the run's length (and never flips digits)
    assert best.hyperparameters.augment == "auto"
    # status: the best model so far under each parameter bound, acc = test accuracy
    under = {row["params_max"]: row for row in status["best_under"]}
    assert set(under) == {10_000, 100_000, 1_000_000}
    assert under[1_000_000]["model_id"] == best.model_id
    assert under[1_000_000]["acc"] == best.test_acc
    assert under[1_000_000]["val_acc"] == best.best_val_acc
    small = [t for t in view.done if t.params <= 10_000]
    if small:
        assert under[10_000]["val_acc"] == max(t.best_val_acc or 0.0 for t in small)
    shown = nasdb("study", "status", study_id, "--bounds", "10k,100k")
    assert shown.code == 0 and "best so far under each parameter bound" in shown.out
    as_json = json.loads(nasdb("study", "status", study_id, "--format", "json").out)
    assert as_json[0]["best_under"][1]["model_id"] == under[100_000]["model_id"]
    assert Architecture.from_json(best.architecture.to_json()) == best.architecture


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("strategy", "settings"), [
    ("tpe", {"startup": 1}), ("nsga2", {"population_size": 2}),
    ("bohb", {"R": 1, "min_points": 1}), ("random", {}),
])
def test_every_sampler_covers_the_modern_space(store: EventStore, strategy: str,
                                               settings: dict) -> None:
    space, _ = StudySpace.modern().refined({"epochs": "1", "max_params": "20000"})
    study_id = create_study(store, "digits", strategy, budget={"models": 3}, space=space,
                            settings=settings)
    worker = Worker(store.db, lease_seconds=120)
    assert run_study(store.db, study_id, train=lambda: worker.run(max_jobs=1)) == "done"
    view = load_view(store, study_id)
    assert len(view.trials) == 3
    for t in view.trials:
        assert t.architecture.layer_types[0] == "ConvBlock"
        assert "GlobalAvgPool" in t.architecture.layer_types
        assert t.params <= 20_000
        assert t.hyperparameters.schedule == "onecycle" and t.hyperparameters.augment == "auto"
    if strategy != "random":
        assert all("params" in t.proposal for t in view.trials)


def test_new_configurations_are_seeded_by_the_predictor_when_one_is_fitted(
        store: EventStore) -> None:
    study_id = create_study(store, "digits", budget={"models": 10}, name="seeded")
    Projector(store.db).catch_up()
    calls: list[int] = []

    def biggest(info: DatasetInfo, candidates: Sequence[Suggestion], ratio: float) -> Ranking:
        calls.append(len(candidates))
        assert ratio == 1 / len(candidates)
        sizes = [count_params(c.architecture, info.input_shape, info.num_classes)
                 for c in candidates]
        best = sizes.index(max(sizes))
        return Ranking([Ranked(best, 0.9, 0.8, 0.95, 1.0)], "r1")

    view = load_view(store, study_id, rank=biggest)
    strategy = get_strategy(view.strategy, dict(view.settings))
    [seeded] = strategy.ask(view, 1)
    assert calls == [8]
    assert seeded.info["predicted_acc"] == 0.9 and seeded.info["recommender_id"] == "r1"
    unseeded = strategy.ask(load_view(store, study_id), 1)[0]  # no predictor: one random draw
    assert "predicted_acc" not in unseeded.info
    size = count_params(seeded.architecture, (1, 8, 8), 10)
    assert size >= count_params(unseeded.architecture, (1, 8, 8), 10)

    def unfitted(info: DatasetInfo, candidates: Sequence[Suggestion], ratio: float) -> Ranking:
        raise NotFound("no accuracy predictor has been fitted; run: nasdb recommend fit")

    fallback = strategy.ask(load_view(store, study_id, rank=unfitted), 1)[0]
    assert fallback == unseeded
