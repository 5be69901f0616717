"""Every strategy drives a real study to its budget with real (tiny) training on digits."""

from __future__ import annotations

from typing import Any

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.search.strategies import StudySpace
from nasdb.steer import create_study, load_view, run_study, study_status
from nasdb.trainers.worker import Worker

TINY = StudySpace().refined({"epochs": "1", "max_params": "30000", "max_layers": "5",
                             "batch_size": "64,128", "filters": "8,16", "units": "16,32",
                             "max_blocks": "2"})[0]


def drive(store: EventStore, strategy: str, budget: dict[str, int],
          settings: dict[str, Any] | None = None, objectives: tuple[str, ...] = ("val_acc", "params"),
          space: StudySpace = TINY) -> tuple[str, Any]:
    study_id = create_study(store, "digits", strategy, budget=budget, settings=settings or {},
                            space=space, objectives=objectives)
    Projector(store.db).catch_up()
    worker = Worker(store.db, lease_seconds=30)
    # max_seconds only stops a driver that never finishes, before the suite's 600 s timeout would
    # (how long a study takes depends on the machine's load, so it is no part of what is tested)
    state = run_study(store.db, study_id, train=lambda: worker.run(max_jobs=1), poll_seconds=0.05,
                      max_seconds=500)
    assert state == "done"
    Projector(store.db).catch_up()
    return study_id, load_view(store, study_id)


def assert_consistent(store: EventStore, study_id: str) -> None:
    """Steps are 1..n, every model of the study was proposed by exactly one step."""
    events = store.read_stream(f"study-{study_id}")
    steps = [e.data for e in events if e.type == "SearchStepTaken"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    ids = [m for s in steps for m in s["model_ids"]]
    assert len(ids) == len(set(ids))
    view = load_view(store, study_id)
    assert sorted(ids) == sorted(t.model_id for t in view.trials)
    assert events[-1].type == "StudyCompleted"


def test_random_search_uses_exactly_its_model_budget(store: EventStore) -> None:
    study_id, view = drive(store, "random", {"models": 4})
    assert len(view.trials) == 4
    assert all(t.status == "done" and t.origin == "sampled" for t in view.trials)
    assert_consistent(store, study_id)
    status = study_status(store.db, study_id)
    assert status["state"] == "done"
    assert status["budget"]["models"] == {"used": 4.0, "limit": 4}
    assert status["models_by_status"] == {"done": 4}
    best = max(view.trials, key=lambda t: t.best_val_acc or 0)
    assert status["best"]["model_id"] == best.model_id


def test_regularised_evolution_mutates_tournament_winners_by_one_change(
    store: EventStore,
) -> None:
    from nasdb.search import replay

    study_id, view = drive(store, "evolution", {"models": 6},
                           {"population": 3, "sample": 2, "parallel": 1})
    assert_consistent(store, study_id)
    initial = [t for t in view.trials if t.proposal["role"] == "initial"]
    children = [t for t in view.trials if t.proposal["role"] == "child"]
    assert len(initial) == 3 and len(children) == 3
    by_id = {t.model_id: t for t in view.trials}
    for child in children:
        assert child.origin == "mutation"
        parent = by_id[child.parent_id]
        contenders = [by_id[m] for m in child.proposal["tournament"]]
        assert parent.model_id in child.proposal["tournament"]
        assert parent.best_val_acc == max(c.best_val_acc for c in contenders)
        changes = list(by_id[child.model_id].proposal.get("changes", [])) or None
        assert changes is None  # the change list lives in the model row, not in the proposal
    with store.db.connect() as conn:
        for child in children:
            (changes,) = conn.execute("select changes from models where id = %s",
                                      (child.model_id,)).fetchone()
            assert len(changes) == 1
            assert replay(by_id[child.parent_id].architecture, changes) == child.architecture


def test_bracket_plans_are_hyperbands() -> None:
    from nasdb.search.strategies import bracket_plan

    assert bracket_plan(9, 3, 2) == [(9, 1), (3, 3), (1, 9)]
    assert bracket_plan(9, 3, 1) == [(5, 3), (1, 9)]
    assert bracket_plan(9, 3, 0) == [(3, 9)]
    assert bracket_plan(3, 3, 1) == [(3, 1), (1, 3)]


def test_hyperband_promotes_the_best_of_each_rung_from_its_checkpoint(store: EventStore) -> None:
    # R=3, eta=3: bracket 1 = 3 configs x 1 epoch, the best resumed to 3 epochs; bracket 0 = 2 x 3.
    study_id, view = drive(store, "hyperband", {"epochs": 11}, {"R": 3, "eta": 3, "parallel": 3})
    assert_consistent(store, study_id)
    rung0 = [t for t in view.trials if t.proposal["bracket"] == 1 and t.proposal["rung"] == 0]
    rung1 = [t for t in view.trials if t.proposal["bracket"] == 1 and t.proposal["rung"] == 1]
    bracket0 = [t for t in view.trials if t.proposal["bracket"] == 0]
    assert len(rung0) == 3 and len(rung1) == 1 and len(bracket0) == 2
    best = max(rung0, key=lambda t: (t.best_val_acc, -t.number))
    (promoted,) = rung1
    assert promoted.parent_id == best.model_id
    assert promoted.architecture == best.architecture
    assert promoted.hyperparameters.epochs == 2  # 3 epochs in all, 1 of them already trained
    requested = [e.data for e in store.read_stream(f"model-{promoted.model_id}")
                 if e.type == "TrainingRequested"]
    assert requested[0]["resume_from"] == best.checkpoint is not None
    assert all(t.hyperparameters.epochs == 3 for t in bracket0)
    assert sum(t.epochs_trained for t in view.trials) <= 11


def test_successive_halving_runs_one_bracket(store: EventStore) -> None:
    _, view = drive(store, "hyperband", {"models": 4},
                    {"R": 3, "eta": 3, "bracket": 1, "resume": False})
    assert [t.proposal["rung"] for t in view.trials] == [0, 0, 0, 1]
    assert view.trials[-1].hyperparameters.epochs == 3  # from scratch without resume


def test_asha_promotes_asynchronously(store: EventStore) -> None:
    study_id, view = drive(store, "asha", {"models": 7}, {"R": 3, "eta": 3, "parallel": 1})
    assert_consistent(store, study_id)
    rung1 = [t for t in view.trials if t.proposal["rung"] == 1]
    assert rung1, "ASHA never promoted"
    by_id = {t.model_id: t for t in view.trials}
    for t in rung1:
        parent = by_id[t.parent_id]
        # the parent was in the top third of the rung-0 models finished before t was proposed
        earlier = [x for x in view.trials if x.proposal["rung"] == 0 and x.number < t.number]
        ranked = sorted(earlier, key=lambda x: -(x.best_val_acc or 0))
        assert parent in ranked[: max(1, len(ranked) // 3)]
    assert len({t.parent_id for t in rung1}) == len(rung1)


def test_asha_promoting_by_fronts_promotes_from_the_first_fronts(store: EventStore) -> None:
    study_id, view = drive(store, "asha", {"models": 7},
                           {"R": 3, "eta": 3, "parallel": 1, "promote": "fronts"})
    assert_consistent(store, study_id)
    rung1 = [t for t in view.trials if t.proposal["rung"] == 1]
    assert rung1, "ASHA never promoted"
    by_id = {t.model_id: t for t in view.trials}
    for t in rung1:
        # one job at a time: the rung-0 models proposed before t had all finished when it was
        earlier = [x for x in view.trials if x.proposal["rung"] == 0 and x.number < t.number]
        assert by_id[t.parent_id] in view.ranked_by_fronts(earlier)[: max(1, len(earlier) // 3)]
    assert len({t.parent_id for t in rung1}) == len(rung1)


def test_asha_split_params_runs_two_competitions(store: EventStore) -> None:
    split = 2000  # about 4 in 10 of TINY's digits models have at most 2,000 parameters
    study_id, view = drive(store, "asha", {"models": 10},
                           {"R": 3, "eta": 3, "parallel": 1, "split_params": split})
    assert_consistent(store, study_id)

    def small(t: Any) -> bool:
        return t.params <= split

    bottom = [t for t in view.trials if t.proposal["rung"] == 0]
    capped = [t for t in bottom if "params_max" in t.proposal]
    assert capped, "no configuration was drawn for the small competition"
    assert all(t.proposal["params_max"] == split and small(t) for t in capped)
    # each new configuration goes to the competition with fewer: the small one never trails
    for t in bottom:
        before = [x for x in bottom if x.number < t.number]
        assert sum(map(small, before)) >= sum(not small(x) for x in before) - 1
    rung1 = [t for t in view.trials if t.proposal["rung"] == 1]
    assert rung1, "ASHA never promoted"
    by_id = {t.model_id: t for t in view.trials}
    for t in rung1:
        parent = by_id[t.parent_id]
        # top third of the parent's own competition, among the rung-0 models proposed before t
        rivals = [x for x in bottom if x.number < t.number and small(x) == small(parent)]
        assert parent in view.ranked(rivals)[: len(rivals) // 3]


def test_asha_draws_freely_when_nothing_fits_under_the_split(store: EventStore) -> None:
    # no model has 15 parameters or fewer: the 10-class head alone has at least 20
    study_id, view = drive(store, "asha", {"models": 3},
                           {"R": 3, "eta": 3, "parallel": 1, "split_params": 15})
    assert_consistent(store, study_id)
    assert len(view.trials) == 3
    assert all("params_max" not in t.proposal and t.params > 15 for t in view.trials)


def test_asha_refuses_a_negative_split() -> None:
    from nasdb.schema.errors import InvalidRequest
    from nasdb.search.strategies import get_strategy

    with pytest.raises(InvalidRequest, match="split_params must be 0 \\(off\\) or a parameter "
                                            "count, got -1"):
        get_strategy("asha", {"split_params": -1})


def test_pbt_exploits_and_explores_with_lineage(store: EventStore) -> None:
    study_id, view = drive(store, "pbt", {"models": 9},
                           {"population": 3, "generations": 3, "quantile": 0.34,
                            "resample_probability": 0.0, "parallel": 3})
    assert_consistent(store, study_id)
    gens: dict[int, dict[int, Any]] = {}
    for t in view.trials:
        gens.setdefault(t.proposal["generation"], {})[t.proposal["member"]] = t
    assert sorted(gens) == [0, 1, 2] and all(len(g) == 3 for g in gens.values())
    exploits = 0
    for g in (1, 2):
        previous = sorted(gens[g - 1].values(), key=lambda t: -(t.best_val_acc or 0))
        for member, t in gens[g].items():
            requested = next(e.data for e in store.read_stream(f"model-{t.model_id}")
                             if e.type == "TrainingRequested")
            donor = next(p for p in previous if p.model_id == t.parent_id)
            assert requested["resume_from"] == donor.checkpoint
            if "exploited" in t.proposal:
                exploits += 1
                assert donor is previous[0]
                assert gens[g - 1][member] is previous[-1]
                ratio = t.hyperparameters.lr / donor.hyperparameters.lr
                assert ratio == pytest.approx(0.8, rel=1e-12) or ratio == pytest.approx(
                    1.2, rel=1e-12)
            else:
                assert donor is gens[g - 1][member]
                assert t.hyperparameters == donor.hyperparameters
    assert exploits == 2  # one bottom member per generation


def test_tpe_rebuilds_optuna_from_the_log(store: EventStore) -> None:
    from nasdb.search.strategies import get_strategy

    study_id, view = drive(store, "tpe", {"models": 6}, {"startup": 3, "parallel": 1})
    assert_consistent(store, study_id)
    assert all("params" in t.proposal for t in view.trials)
    for t in view.trials:  # the params describe exactly the model trained
        arch, hp = view.space.build_from_params(t.proposal["params"], view.dataset)
        assert arch == t.architecture and hp.lr == t.hyperparameters.lr
    strategy = get_strategy("tpe", dict(view.settings))
    first = strategy.ask(view, 2)
    again = strategy.ask(load_view(store, study_id), 2)
    assert [s.info["params"] for s in first] == [s.info["params"] for s in again]


def test_nsga2_records_generations_and_finds_a_front(store: EventStore) -> None:
    study_id, view = drive(store, "nsga2", {"models": 8}, {"population_size": 4, "parallel": 4})
    assert_consistent(store, study_id)
    generations = [t.proposal["optuna_system_attrs"].get("NSGAIISampler:generation")
                   for t in view.trials]
    # Optuna's NSGA-II counts only COMPLETE trials towards a generation, so with models in
    # flight the first generation is larger than population_size; the sampler's generation
    # attribute survives the rebuild from the log (else every trial would be generation 0).
    assert generations[:4] == [0, 0, 0, 0]
    assert generations == sorted(generations) and generations[-1] == 1
    status = study_status(store.db, study_id)
    assert status["pareto"]


def test_bohb_switches_to_tpe_once_a_budget_has_evidence(store: EventStore) -> None:
    study_id, view = drive(store, "bohb", {"epochs": 22},
                           {"R": 3, "eta": 3, "min_points": 3, "random_fraction": 0.0,
                            "parallel": 3})
    assert_consistent(store, study_id)
    flags = [t.proposal.get("model_based") for t in view.trials if t.proposal["rung"] == 0]
    assert flags[:3] == [False, False, False]
    assert True in flags[3:]
