"""Studies: create, drive, pause / resume / stop, refine — every decision an event.

The driver is restartable by construction. A strategy is a pure function of the study's log (its
trials and their proposal dicts), and each step appends, in ONE transaction, a SearchStepTaken to
the study's stream (with the stream's expected version) plus the proposed models' streams. So:

- a driver killed at any point has either appended a whole step or nothing of it;
- a restarted driver reads the log, sees the models in flight and waits for them instead of
  proposing them again;
- two drivers of the same study cannot both take step n: the second append fails with
  `ConcurrencyConflict`, and that driver re-reads the log and asks again.

Budget: ``models`` (models proposed), ``epochs`` (epochs trained by finished models plus epochs
planned for models in flight) and ``seconds`` (wall time since the study was created). A step
never proposes past a budget; when the budget is used (or the strategy has nothing more to
propose) and nothing is in flight, the driver appends StudyCompleted.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from nasdb.ingest import EventStore, NewEvent, new_model_ids, new_study_id, wait_projected
from nasdb.read import class_metrics, get_dataset, get_study, study_trials
from nasdb.schema.db import Database
from nasdb.schema.errors import ConcurrencyConflict, InvalidRequest
from nasdb.schema.events import (
    SearchSpaceRefined,
    SearchStepTaken,
    StudyCompleted,
    StudyCreated,
    StudyPaused,
    StudyResumed,
    StudyStopped,
    TrainingRequested,
)
from nasdb.schema.resilience import retrying
from nasdb.search import Architecture, DatasetInfo, Hyperparameters
from nasdb.search.strategies import (
    Ranker,
    StudySpace,
    StudyView,
    Suggestion,
    Trial,
    get_strategy,
    objective_direction,
)

from ._actions import Proposal, _proposed_event

_T = TypeVar("_T")

BUDGET_KEYS = ("models", "epochs", "seconds")

#: The parameter bounds `study_status` reports the best model under.
PARAM_BOUNDS: tuple[int, ...] = (10_000, 100_000, 1_000_000)
#: What ``nasdb study create`` runs without ``--strategy``: ASHA over epochs (rungs of r, 3r and
#: 9r epochs, the top third of each rung promoted by Pareto fronts of the study's objectives, so
#: small models climb beside large ones; each rung trained from scratch so every model's schedule
#: is a whole OneCycle) in the modern space; chosen by measurement (README, "Studies"). Models of
#: at most 10k parameters (the smallest of `PARAM_BOUNDS`) compete on their own and are drawn as
#: often as larger ones (`split_params`). The bottom rung r is the fewest epochs giving
#: `MIN_RUNG_STEPS` optimizer steps (`default_settings`). New configurations are seeded by the
#: accuracy predictor when one is fitted: the best predicted of 8 random draws (`candidates`).
DEFAULT_STRATEGY = "asha"
DEFAULT_SETTINGS: dict[str, Any] = {"R": 9, "eta": 3, "min_epochs": 1, "resume": False,
                                    "candidates": 8, "promote": "fronts",
                                    "split_params": PARAM_BOUNDS[0]}
MIN_RUNG_STEPS = 150
#: The budget of a default study when none is given: one hour of wall time.
DEFAULT_BUDGET: dict[str, int] = {"seconds": 3600}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


# --- reading --------------------------------------------------------------------------------


def _trials(db: Database, study_id: str, objectives: Sequence[str]) -> list[Trial]:
    per_class: dict[str, dict[str, float]] = {}
    if any(o.startswith("acc:") for o in objectives):
        for c in class_metrics(db, study_id=study_id):
            if c.accuracy is not None:
                per_class.setdefault(c.model_id, {})[c.class_name] = c.accuracy
    trials = []
    for row in study_trials(db, study_id):
        m = row.model
        trials.append(Trial(
            model_id=m.id, architecture=Architecture.from_json(m.architecture),
            hyperparameters=Hyperparameters.from_json(m.hyperparameters), status=m.status,
            params=m.params, flops=m.flops, origin=m.origin, parent_id=m.parent_id,
            proposal=row.proposal, epochs_planned=m.epochs_planned or 0,
            epochs_trained=m.epochs_trained or 0, best_val_acc=m.best_val_acc,
            test_acc=m.test_acc, latency_ms=m.latency_ms, train_seconds=m.train_seconds,
            class_acc=per_class.get(m.id, {}), checkpoint=row.checkpoint,
        ))
    return sorted(trials, key=lambda t: t.number)


def load_view(store: EventStore, study_id: str, rank: Ranker | None = None) -> StudyView:
    """The study as its strategy sees it, handed ``rank`` (for the guided strategy). Read models
    must be caught up by the caller."""
    row = get_study(store.db, study_id)
    events = store.read_stream(f"study-{study_id}")
    created = next(e for e in events if e.type == "StudyCreated").data
    first_step = next((e for e in events if e.type == "SearchStepTaken"), None)
    objectives = tuple(row.objectives)
    return StudyView(
        id=study_id,
        dataset=get_dataset(store.db, row.dataset_id),
        strategy=row.strategy,
        settings=row.settings,
        space=StudySpace.from_dict(created["space"]),
        objectives=objectives,
        budget=row.budget,
        state=row.state,
        created_at=row.created_at,
        steps=sum(1 for e in events if e.type == "SearchStepTaken"),
        started_at=first_step.recorded_at if first_step else None,
        version=events[-1].version if events else 0,
        trials=tuple(_trials(store.db, study_id, objectives)),
        rank=rank,
    )


# --- the budget -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Used and limit per budget kind (only the kinds the study has)."""

    limits: Mapping[str, int]
    used: Mapping[str, float]

    @property
    def exhausted(self) -> bool:
        return any(self.used[k] >= self.limits[k] for k in self.limits)

    def fraction(self) -> float:
        return max((self.used[k] / self.limits[k] for k in self.limits), default=0.0)

    def left(self, key: str) -> float:
        return self.limits[key] - self.used[key] if key in self.limits else float("inf")


def budget_of(view: StudyView, now: datetime | None = None) -> Budget:
    now = now or datetime.now(UTC)
    used = {
        "models": float(len(view.trials)),
        "epochs": float(sum(t.epochs_charged for t in view.trials)),
        "seconds": max(0.0, (now - view.started_at).total_seconds()) if view.started_at else 0.0,
    }
    limits = {k: int(v) for k, v in view.budget.items() if k in BUDGET_KEYS}
    return Budget(limits, {k: used[k] for k in limits})


def _fit(suggestions: Sequence[Suggestion], budget: Budget) -> list[Suggestion]:
    """The prefix of ``suggestions`` that fits the models and epochs left."""
    out: list[Suggestion] = []
    models, epochs = budget.left("models"), budget.left("epochs")
    for s in suggestions:
        if models < 1 or s.epochs > epochs:
            break
        out.append(s)
        models -= 1
        epochs -= s.epochs
    return out


# --- creating -------------------------------------------------------------------------------


def check_budget(budget: Mapping[str, Any]) -> dict[str, int]:
    """A budget dict with positive integers; `InvalidRequest` otherwise."""
    out: dict[str, int] = {}
    for key, value in budget.items():
        if key not in BUDGET_KEYS:
            raise InvalidRequest(f"unknown budget {key!r}; use {', '.join(BUDGET_KEYS)}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(
                f"a budget of {value!r} {key} is not possible: the budget must be a positive "
                f"integer (--budget-{key} N)"
            )
        out[key] = value
    if not out:
        raise InvalidRequest(
            "a study needs a budget: give --budget-models N, --budget-epochs N or "
            "--budget-seconds N"
        )
    return out


def default_settings(dataset: DatasetInfo, space: StudySpace) -> dict[str, Any]:
    """`DEFAULT_SETTINGS` with the rungs scaled so that the bottom one trains at least
    `MIN_RUNG_STEPS` steps with the space's batch size on this dataset."""
    hp = space.for_dataset(space.base(), dataset)
    steps = max(1, math.ceil(max(dataset.train_size, 1) / hp.batch_size))
    r = max(1, math.ceil(MIN_RUNG_STEPS / steps))
    eta = int(DEFAULT_SETTINGS["eta"])
    return {**DEFAULT_SETTINGS, "min_epochs": r, "R": r * eta * eta}


def create_study(
    store: EventStore,
    dataset_id: str,
    strategy: str | None = None,
    *,
    budget: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    space: StudySpace | None = None,
    objectives: Sequence[str] = ("val_acc", "params"),
    name: str | None = None,
    previous_study_id: str | None = None,
    extra_events: Sequence[tuple[str, Sequence[NewEvent], int | None]] = (),
    metadata: dict[str, Any] | None = None,
) -> str:
    """Validate everything and append StudyCreated (with ``metadata``, e.g. the web session
    that asked); return the study id.

    Without ``strategy`` the default search runs (`DEFAULT_STRATEGY` with `DEFAULT_SETTINGS`
    under the given settings), without ``budget`` it gets `DEFAULT_BUDGET`, and without
    ``space`` the modern space (`StudySpace.modern()`).

    Raises `NotFound` (dataset), `InvalidRequest` (unknown strategy or setting, bad objective,
    budget of 0, a name that is taken or malformed).
    """
    dataset = get_dataset(store.db, dataset_id)
    space = space or StudySpace.modern()
    if strategy is None:
        strategy = DEFAULT_STRATEGY
        settings = {**default_settings(dataset, space), **(settings or {})}
    if budget is None:
        budget = DEFAULT_BUDGET
    resolved = get_strategy(strategy, dict(settings or {})).settings
    objectives = list(dict.fromkeys(objectives))
    if not objectives:
        raise InvalidRequest("a study needs at least one objective (--objective val_acc)")
    for o in objectives:
        objective_direction(o)
        if o.startswith("acc:") and o[4:] not in dataset.classes:
            raise InvalidRequest(
                f"objective {o!r}: dataset {dataset.id} has no class {o[4:]!r}; its classes: "
                f"{', '.join(dataset.classes)}"
            )
    checked = check_budget(budget)
    if name is not None and not _SLUG.match(name):
        raise InvalidRequest(
            f"study name {name!r} is invalid: use lower-case letters, digits, '-' or '_' (at most "
            "63 characters, starting with a letter or digit)"
        )
    study_id = name or new_study_id(store.db)
    created = NewEvent.of(StudyCreated(
        study_id=study_id, dataset_id=dataset.id, strategy=strategy, settings=resolved,
        space=space.to_dict(), objectives=list(objectives), budget=checked,
        previous_study_id=previous_study_id,
    ), metadata=metadata)
    try:
        store.append_batch([*extra_events, (f"study-{study_id}", [created], 0)])
    except ConcurrencyConflict as e:
        if e.stream_id != f"study-{study_id}":
            raise
        raise InvalidRequest(f"study {study_id!r} already exists; pick another --name") from e
    return study_id


# --- state changes --------------------------------------------------------------------------


def _transition(store: EventStore, study_id: str, event: StudyPaused | StudyResumed | StudyStopped,
                allowed: Sequence[str], verb: str) -> None:
    wait_projected(store.db)
    row = get_study(store.db, study_id)
    if row.state not in allowed:
        raise InvalidRequest(f"study {study_id} is {row.state}; it cannot be {verb}")
    store.append(f"study-{study_id}", [NewEvent.of(event)])
    wait_projected(store.db)


def pause_study(store: EventStore, study_id: str, reason: str = "") -> None:
    """Workers stop claiming the study's jobs and its driver stops proposing until resumed."""
    _transition(store, study_id, StudyPaused(reason=reason), ("running",), "paused")


def resume_study(store: EventStore, study_id: str) -> None:
    _transition(store, study_id, StudyResumed(), ("paused",), "resumed")


def stop_study(store: EventStore, study_id: str, reason: str = "") -> None:
    """For good: the driver ends and workers never claim the study's jobs again."""
    _transition(store, study_id, StudyStopped(reason=reason), ("running", "paused"), "stopped")


def refine_study(
    store: EventStore, study_id: str, assignments: Mapping[str, str], drop: Sequence[str] = (),
    *, name: str | None = None, budget: Mapping[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:
    """HyperTendril's loop: append SearchSpaceRefined to the study and create the next study
    (same dataset, strategy, settings, objectives; budget unless given) with the refined space,
    linked by ``previous_study_id``; a running or paused study is stopped. One transaction.
    Returns the new study's id and the changes in words."""
    wait_projected(store.db)
    row = get_study(store.db, study_id)
    events = store.read_stream(f"study-{study_id}")
    created = next(e for e in events if e.type == "StudyCreated").data
    space, changes = StudySpace.from_dict(created["space"]).refined(dict(assignments),
                                                                    tuple(drop))
    if not changes:
        raise InvalidRequest("nothing to refine: give --set KEY=VALUE or --drop NAME")
    new_id = name or new_study_id(store.db)
    tail = [NewEvent.of(SearchSpaceRefined(space=space.to_dict(), changes=changes,
                                           next_study_id=new_id), metadata=metadata)]
    if row.state in ("running", "paused"):
        tail.append(NewEvent.of(StudyStopped(reason=f"refined into {new_id}"), metadata=metadata))
    create_study(
        store, row.dataset_id, row.strategy, budget=budget or row.budget,
        settings=row.settings, space=space, objectives=row.objectives, name=new_id,
        previous_study_id=study_id,
        extra_events=[(f"study-{study_id}", tail, events[-1].version)], metadata=metadata,
    )
    wait_projected(store.db)
    return new_id, changes


# --- driving --------------------------------------------------------------------------------


@dataclass
class StepResult:
    step: int
    model_ids: list[str]
    suggestions: list[Suggestion] = field(default_factory=list)


def take_step(store: EventStore, view: StudyView, suggestions: Sequence[Suggestion],
              note: str = "") -> StepResult:
    """Append step ``view.steps + 1`` with its proposals atomically (study stream at
    ``view.version``). Raises `ConcurrencyConflict` when the study moved on meanwhile."""
    ids = new_model_ids(store.db, len(suggestions))
    step = view.steps + 1
    items: list[tuple[str, Sequence[NewEvent], int | None]] = [(
        f"study-{view.id}",
        [NewEvent.of(SearchStepTaken(
            step=step, model_ids=ids, note=note,
            state={"trials": len(view.trials), "in_flight": len(view.in_flight)},
        ))],
        view.version,
    )]
    for model_id, s in zip(ids, suggestions, strict=True):
        predicted = s.info.get("predicted_acc")
        proposal = Proposal(s.architecture, s.hyperparameters, s.origin, s.parent_id, s.changes,
                            predicted_acc=float(predicted) if predicted is not None else None,
                            extra={**s.info, "step": step})
        items.append((f"model-{model_id}", [
            _proposed_event(model_id, view.dataset, proposal, view.id, None),
            NewEvent.of(TrainingRequested(priority=0, resume_from=s.resume_from),
                        idempotency_key="requested-1"),
        ], 0))
    store.append_batch(items)
    return StepResult(step, ids, list(suggestions))


def _describe(s: Suggestion) -> str:
    keys = ("iteration", "bracket", "rung", "generation", "member", "role")
    info = ", ".join(f"{k} {s.info[k]}" for k in keys if k in s.info)
    return f"{s.epochs} epochs" + (f", {info}" if info else "")


def best_trial(view: StudyView) -> Trial | None:
    done = [t for t in view.done if view.score(t) > float("-inf")]
    return view.ranked(done)[0] if done else None


def run_study(
    db: Database,
    study_id: str,
    *,
    train: Callable[[], int] | None = None,
    parallel: int | None = None,
    poll_seconds: float = 0.5,
    on_progress: Callable[[str], None] | None = None,
    wait_when_paused: bool = True,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    rank: Ranker | None = None,
    store: EventStore | None = None,
) -> str:
    """Drive the study until its budget is used (StudyCompleted), it is stopped, or (without
    ``wait_when_paused``) it is paused; return its final state.

    ``train`` trains one queued job in this process (e.g. a `Worker`'s ``run(max_jobs=1)``) and
    returns how many it trained; without it the driver waits for workers elsewhere.
    ``parallel`` overrides the strategy's ``parallel`` setting (models in flight at once).
    ``rank`` is the ranking function handed to the strategy (the guided strategy needs one:
    `nasdb.recommend.predictor_ranker`). ``max_seconds`` or setting ``stop`` ends the driving
    early ("running": the study goes on when a driver runs it again). ``store`` appends the
    driver's events (the web app passes the launching session's, so its user is their actor).
    Safe to run after a crash and concurrently with another driver (module docstring).
    """
    store = store or EventStore(db=db)
    say = on_progress or (lambda message: None)
    started = time.monotonic()
    paused_said = False
    stop = stop or threading.Event()

    def ride_out(action: Callable[[], _T]) -> _T:  # a database restart is waited out, said once
        return retrying(action, what=f"driving study {study_id}", log=say)

    while True:
        if stop.is_set() or (max_seconds is not None and time.monotonic() - started > max_seconds):
            return "running"
        view = ride_out(partial(_read, db, store, study_id, rank))
        if view.state in ("stopped", "done"):
            say(f"study {study_id} is {view.state}")
            return view.state
        if view.state == "paused":
            if not paused_said:
                say(f"study {study_id} is paused; waiting for nasdb study resume {study_id}")
                paused_said = True
            if not wait_when_paused:
                return "paused"
            stop.wait(poll_seconds)
            continue
        paused_said = False
        strategy = get_strategy(view.strategy, dict(view.settings))
        budget = budget_of(view)
        if "seconds" in budget.limits and budget.used["seconds"] >= budget.limits["seconds"]:
            _cancel_queued(store, view)
        slots = max(parallel or strategy.parallel, 1) - len(view.in_flight)
        if slots > 0 and not budget.exhausted and not strategy.exhausted(view):
            suggestions = _fit(strategy.ask(view, slots), budget)
            if suggestions:
                try:
                    result = ride_out(partial(take_step, store, view, suggestions))
                except ConcurrencyConflict:
                    continue  # another driver took this step: read the log again
                for model_id, s in zip(result.model_ids, suggestions, strict=True):
                    parent = f" from {s.parent_id}" if s.parent_id else ""
                    say(f"step {result.step}: proposed {model_id}{parent} ({_describe(s)})")
                continue
        if not view.in_flight:
            reason = "budget used" if budget.exhausted else "the strategy has nothing more to try"
            try:
                ride_out(partial(store.append, f"study-{study_id}",
                                 [NewEvent.of(StudyCompleted(reason=reason))], view.version))
            except ConcurrencyConflict:
                continue
            wait_projected(db)
            say(_summary(view, budget, reason))
            return "done"
        trained = train() if train is not None else 0
        if trained:
            view = ride_out(partial(_read, db, store, study_id, rank))
            say(_progress(view, budget_of(view)))
        else:
            stop.wait(poll_seconds)


def _read(db: Database, store: EventStore, study_id: str, rank: Ranker | None) -> StudyView:
    wait_projected(db)
    return load_view(store, study_id, rank)


def _cancel_queued(store: EventStore, view: StudyView) -> None:
    from ._actions import cancel

    for t in view.trials:
        if t.status == "queued":
            with contextlib.suppress(InvalidRequest, ConcurrencyConflict):
                cancel(store, t.model_id, "the study's time budget is used")


def _progress(view: StudyView, budget: Budget) -> str:
    best = best_trial(view)
    used = ", ".join(f"{k} {budget.used[k]:.0f}/{budget.limits[k]}" for k in budget.limits)
    best_text = (f"best {best.model_id} {view.primary}={best.value(view.primary):.4g}"
                 if best else "no model trained yet")
    return f"{len(view.done)} trained, {len(view.in_flight)} in flight | budget {used} | {best_text}"


def _summary(view: StudyView, budget: Budget, reason: str) -> str:
    return f"study {view.id} completed ({reason}): {_progress(view, budget)}"


def best_under(view: StudyView, bounds: Sequence[int] = PARAM_BOUNDS) -> list[dict[str, Any]]:
    """For each parameter bound, the found model (reference classifiers excluded) with the best
    validation accuracy among those with at most that many parameters: its id, params,
    ``val_acc`` and ``acc`` (test accuracy); None where no model fits yet."""
    found = [t for t in view.done if t.origin != "reference" and t.best_val_acc is not None]
    out: list[dict[str, Any]] = []
    for bound in bounds:
        fits = [t for t in found if t.params <= bound]
        best = max(fits, key=lambda t: (t.best_val_acc or 0.0, -t.number), default=None)
        out.append({"params_max": bound, "model_id": best.model_id if best else None,
                    "params": best.params if best else None,
                    "val_acc": best.best_val_acc if best else None,
                    "acc": best.test_acc if best else None,
                    "glyph": best.architecture.glyph(view.dataset.num_classes) if best else None})
    return out


def study_status(db: Database, study_id: str,
                 bounds: Sequence[int] = PARAM_BOUNDS) -> dict[str, Any]:
    """What ``nasdb study status`` shows: state, budget used, best so far (overall and under
    each of ``bounds`` parameters), models by status."""
    wait_projected(db)
    view = load_view(EventStore(db=db), study_id)
    budget = budget_of(view)
    by_status: dict[str, int] = {}
    for t in view.trials:
        by_status[t.status] = by_status.get(t.status, 0) + 1
    best = best_trial(view)
    row = get_study(db, study_id)
    return {
        "id": view.id,
        "dataset": view.dataset.id,
        "strategy": view.strategy,
        "state": view.state,
        "objectives": list(view.objectives),
        "settings": dict(view.settings),
        "budget": {k: {"used": budget.used[k], "limit": budget.limits[k]} for k in budget.limits},
        "budget_used_fraction": round(budget.fraction(), 4),
        "steps": view.steps,
        "models": len(view.trials),
        "models_by_status": by_status,
        "best": None if best is None else {
            "model_id": best.model_id,
            **{o: best.value(o) for o in view.objectives},
            "val_acc": best.best_val_acc,
            "acc": best.test_acc,
        },
        "best_under": best_under(view, bounds),
        "pareto": [t.model_id for t in pareto_front(view)],
        "previous_study_id": row.previous_study_id,
        "next_study_id": row.next_study_id,
    }


def pareto_front(view: StudyView) -> list[Trial]:
    """Done trials on the Pareto front of the study's objectives (the first of
    `StudyView.fronts`); with one objective, the best trial."""
    if len(view.objectives) < 2:
        best = best_trial(view)
        return [best] if best is not None else []
    fronts = view.fronts(view.done)
    return fronts[0] if fronts else []
