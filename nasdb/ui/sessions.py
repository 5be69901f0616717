"""Interaction analysis (HyperTendril): how people steered, read from the event log.

Pure functions over plain inputs: the ``UiAction`` events of the ``session-<id>`` streams (what a
person did in the web app, in order, with their time) and one row per model (params, accuracy,
study). `analyse` turns them into one `SessionReport` per session and a `KindSummary` per kind of
steering; `to_json` and `to_csv` export them. `load` is the one read of the database (the Sessions
view and ``nasdb sessions`` share it).

Definitions (each in one place):

- **Time in a view.** A session starts on the Overview; each ``tab`` action moves it to another
  view. The time between two consecutive actions counts for the view it was spent in, except a gap
  longer than `IDLE_GAP_S`, which counts as away (nobody watches a tab for hours). A session ends at
  its last action.
- **Steering.** An action in `STEERING` and the models it brought about: the children it proposed
  (ablations, variations, handcrafted), the models of the study it launched or drove, the
  recommendation or job it queued or moved.
- **The front** is the Pareto front (max accuracy, min params; `nasdb.query.pareto_mask`, the one
  rule) of the final model space, one per dataset (accuracies of different datasets do not
  compare). Accuracy is the test accuracy, else the best validation accuracy.
- **How much an action moved the front**: the hypervolume its dataset's front loses when the
  action's models are taken out, in (log10 params, accuracy) with the reference point (the
  dataset's largest log10 params, accuracy 0). An action whose models are not on a front moved it
  by 0.
- **Paid off**: at least one of the action's models is on the front.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np

from nasdb.query import pareto_mask

#: A gap between two actions longer than this (seconds) counts as away, not in a view.
IDLE_GAP_S = 15 * 60
#: The view a session opens on.
FIRST_VIEW = "Overview"
#: UiAction kinds that steer the search, and how each names the models it brought about:
#: ``children`` (a list of model ids), ``model`` (one id) or ``study`` (every model of that study).
STEERING: dict[str, tuple[str, str]] = {
    "ablation": ("children", "children"),
    "variation": ("children", "children"),
    "handcrafted": ("children", "children"),
    "refine_study": ("study", "next_study"),
    "run_study": ("study", "study"),
    "recommend_queue": ("model", "model"),
    "queue_moved top": ("model", "model"),
    "queue_moved up": ("model", "model"),
}


@dataclass(frozen=True)
class Action:
    """One UiAction: when, which session, what, in which view it was taken."""

    session: str
    position: int
    at: datetime
    action: str
    view: str
    detail: Mapping[str, Any]
    actor: str | None = None


@dataclass(frozen=True)
class ModelPoint:
    """What the analysis needs of a model."""

    id: str
    params: int
    acc: float | None
    study_id: str | None = None
    dataset_id: str | None = None


@dataclass(frozen=True)
class Steering:
    """One steering action and what came of it."""

    session: str
    position: int
    at: datetime
    kind: str
    models: tuple[str, ...]
    on_front: tuple[str, ...]
    front_gain: float

    @property
    def paid_off(self) -> bool:
        return bool(self.on_front)


@dataclass(frozen=True)
class SessionReport:
    """One session: who, when, the time in each view, its actions in order, its steering."""

    session: str
    actor: str | None
    started: datetime
    ended: datetime
    view_seconds: dict[str, float]
    actions: tuple[Action, ...]
    steering: tuple[Steering, ...]

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()

    def timeline(self) -> list[dict[str, Any]]:
        """The actions as (offset seconds from the start, view, action) rows, in order."""
        return [{"offset_s": round((a.at - self.started).total_seconds(), 3), "view": a.view,
                 "action": a.action} for a in self.actions]


@dataclass(frozen=True)
class KindSummary:
    """Across sessions, one kind of steering: how often, and how often it paid off."""

    kind: str
    actions: int
    sessions: int
    models: int
    on_front: int
    paid_off: int
    front_gain: float

    @property
    def paid_off_share(self) -> float:
        return self.paid_off / self.actions if self.actions else 0.0


@dataclass(frozen=True)
class Analysis:
    sessions: tuple[SessionReport, ...]
    kinds: tuple[KindSummary, ...]
    front: tuple[str, ...] = field(default=())


def actions_from_events(events: Iterable[Any]) -> list[Action]:
    """`Action`s from recorded ``UiAction`` events (anything with ``stream_id``, ``position``,
    ``recorded_at``, ``data`` and ``metadata``), in log order, each with the view it was taken
    in (a ``tab`` action is taken in the view it opens)."""
    out: list[Action] = []
    view: dict[str, str] = {}
    for e in sorted(events, key=lambda e: e.position):
        if not str(e.stream_id).startswith("session-") or e.type != "UiAction":
            continue
        session = str(e.stream_id).removeprefix("session-")
        data = e.data
        action = str(data.get("action", ""))
        detail = dict(data.get("detail") or {})
        if action == "tab" and detail.get("tab"):
            view[session] = str(detail["tab"])
        meta = e.metadata or {}
        out.append(Action(session, int(e.position), e.recorded_at, action,
                          view.get(session, FIRST_VIEW), detail, meta.get("actor")))
    return out


def view_seconds(actions: Sequence[Action]) -> dict[str, float]:
    """Seconds spent in each view by one session's actions (see the module's definition)."""
    out: dict[str, float] = {}
    for a, b in pairwise(actions):
        gap = (b.at - a.at).total_seconds()
        if 0 < gap <= IDLE_GAP_S:
            out[a.view] = out.get(a.view, 0.0) + gap
    return {k: round(v, 3) for k, v in out.items()}


def steered_models(action: Action, models: Sequence[ModelPoint]) -> tuple[str, ...]:
    """The models a steering action brought about (empty for any other action)."""
    how = STEERING.get(action.action)
    if how is None:
        return ()
    kind, key = how
    value = action.detail.get(key)
    if kind == "children":
        return tuple(str(v) for v in value or [])
    if kind == "model":
        return (str(value),) if value else ()
    return tuple(m.id for m in models if value and m.study_id == value)


def hypervolume(log_params: np.ndarray, acc: np.ndarray, reference: float) -> float:
    """The area the front of (log_params, acc) dominates up to (``reference``, 0)."""
    ok = ~np.isnan(acc)
    if not ok.any():
        return 0.0
    x, y = log_params[ok], acc[ok]
    front = _front(x, y)
    order = np.argsort(x[front])
    fx, fy = x[front][order], y[front][order]
    area, below = 0.0, 0.0
    for xi, yi in zip(fx, fy, strict=True):
        if yi > below:
            area += max(reference - xi, 0.0) * (yi - below)
            below = yi
    return float(area)


def _front(log_params: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Max accuracy, min params: the one Pareto rule (`nasdb.query.pareto_mask`)."""
    return pareto_mask(np.column_stack([log_params, acc]), (False, True))


class _Space:
    """One dataset's models: its front and the hypervolume under it."""

    def __init__(self, models: Sequence[ModelPoint]) -> None:
        self.ids = np.array([m.id for m in models], dtype=object)
        params = np.array([max(int(m.params), 1) for m in models], dtype=float)
        self.acc = np.array([np.nan if m.acc is None else float(m.acc) for m in models],
                            dtype=float)
        self.log_params = np.log10(params) if len(params) else params
        self.front = set(self.ids[_front(self.log_params, self.acc)].tolist()) if len(
            self.ids) else set()
        self.reference = float(self.log_params.max()) if len(self.log_params) else 0.0
        self.total = hypervolume(self.log_params, self.acc, self.reference)

    def loss_without(self, models_of: tuple[str, ...]) -> float:
        if not self.front.intersection(models_of):
            return 0.0
        keep = ~np.isin(self.ids, list(models_of))
        return self.total - hypervolume(self.log_params[keep], self.acc[keep], self.reference)


def analyse(actions: Sequence[Action], models: Sequence[ModelPoint]) -> Analysis:
    """Per session and per kind of steering (see the module's definitions)."""
    by_dataset: dict[str | None, list[ModelPoint]] = {}
    for m in models:
        by_dataset.setdefault(m.dataset_id, []).append(m)
    spaces = [_Space(ms) for ms in by_dataset.values()]
    on_front = set().union(*(s.front for s in spaces)) if spaces else set()

    def gain(models_of: tuple[str, ...]) -> float:
        return round(sum(s.loss_without(models_of) for s in spaces), 6)

    by_session: dict[str, list[Action]] = {}
    for a in actions:
        by_session.setdefault(a.session, []).append(a)
    reports = []
    for session, acts in by_session.items():
        steering = []
        for a in acts:
            made = steered_models(a, models)
            if a.action in STEERING:
                steering.append(Steering(session, a.position, a.at, a.action, made,
                                         tuple(m for m in made if m in on_front), gain(made)))
        actor = next((a.actor for a in acts if a.actor), None)
        reports.append(SessionReport(session, actor, acts[0].at, acts[-1].at, view_seconds(acts),
                                     tuple(acts), tuple(steering)))
    reports.sort(key=lambda r: r.started)
    kinds: dict[str, list[Steering]] = {}
    for r in reports:
        for s in r.steering:
            kinds.setdefault(s.kind, []).append(s)
    summaries = [KindSummary(kind, len(ss), len({s.session for s in ss}),
                             sum(len(s.models) for s in ss), sum(len(s.on_front) for s in ss),
                             sum(s.paid_off for s in ss), round(sum(s.front_gain for s in ss), 6))
                 for kind, ss in kinds.items()]
    summaries.sort(key=lambda k: (-k.front_gain, -k.paid_off, k.kind))
    return Analysis(tuple(reports), tuple(summaries), tuple(sorted(on_front)))


# --- export ------------------------------------------------------------------------------------

#: The CSV's columns: one row per action.
CSV_COLUMNS = ("session", "actor", "position", "at", "offset_s", "view", "action", "detail",
               "models", "on_front", "front_gain")


def action_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """One row per action of every session, steering outcomes filled in (the CSV's rows)."""
    rows = []
    for r in analysis.sessions:
        outcome = {s.position: s for s in r.steering}
        for a in r.actions:
            s = outcome.get(a.position)
            rows.append({
                "session": r.session, "actor": a.actor, "position": a.position,
                "at": a.at.isoformat(), "offset_s": round((a.at - r.started).total_seconds(), 3),
                "view": a.view, "action": a.action,
                "detail": json.dumps(dict(a.detail), sort_keys=True, default=str),
                "models": " ".join(s.models) if s else "",
                "on_front": " ".join(s.on_front) if s else "",
                "front_gain": s.front_gain if s else "",
            })
    return rows


def to_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(action_rows(analysis))
    return out.getvalue()


def to_dict(analysis: Analysis) -> dict[str, Any]:
    """Everything, as plain JSON-able data."""

    def steering(s: Steering) -> dict[str, Any]:
        d = asdict(s)
        d["at"] = s.at.isoformat()
        d["paid_off"] = s.paid_off
        return d

    return {
        "front": list(analysis.front),
        "sessions": [{
            "session": r.session, "actor": r.actor, "started": r.started.isoformat(),
            "ended": r.ended.isoformat(), "seconds": round(r.seconds, 3),
            "view_seconds": r.view_seconds,
            "actions": [{"position": a.position, "at": a.at.isoformat(), "view": a.view,
                         "action": a.action, "detail": dict(a.detail)} for a in r.actions],
            "timeline": r.timeline(),
            "steering": [steering(s) for s in r.steering],
        } for r in analysis.sessions],
        "kinds": [{**asdict(k), "paid_off_share": round(k.paid_off_share, 4)}
                  for k in analysis.kinds],
    }


def to_json(analysis: Analysis) -> str:
    return json.dumps(to_dict(analysis), indent=2, default=str)


# --- the one read ------------------------------------------------------------------------------

def load(db: Any, session: str | None = None) -> tuple[list[Action], list[ModelPoint]]:
    """The actions (of one session, or all) and every model, from ``db`` (a `Database`):
    the log's ``UiAction`` events and the public ``models`` view. Reads only."""
    from nasdb.ingest import EventStore
    from nasdb.read import model_scores

    store = EventStore(db=db)
    try:
        events = [e for e in store.read_all(types=["UiAction"])
                  if session is None or e.stream_id == f"session-{session}"]
    finally:
        store.close()
    models = [ModelPoint(m.id, int(m.params or 1),
                         m.test_acc if m.test_acc is not None else m.best_val_acc,
                         m.study_id, m.dataset_id) for m in model_scores(db)]
    return actions_from_events(events), models
