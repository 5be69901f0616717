"""State of the Studies view (HyperTendril): one study's models with a column per hyperparameter,
the brush over them, hyperparameter importance, and refining the search space into the next
study. No widgets."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import param

from nasdb.read import frames
from nasdb.schema.errors import NasdbError
from nasdb.steer import refine_study
from nasdb.steer._importance import study_importance

from . import _brush
from ._state import AppState

#: The study selector's entry for every model of the selected dataset (`AppState.dataset`),
#: whatever study (or none) proposed it.
ALL_MODELS = "(all models)"
#: Hyperparameters a brush can turn into a refinement (``nasdb study refine --set``): lr takes a
#: range, the others the list of values left inside the brush.
REFINABLE = {"lr": "range", "batch_size": "list", "weight_decay": "list", "epochs": "list"}
_MAX_LIST = 12
#: The pairwise heatmap covers the pairs of this many most important hyperparameters (each pair is
#: one more fANOVA fit: 3 keeps the whole report to a few seconds).
PAIRS_OF = 3


def _number(value: float) -> str:
    return f"{value:.6g}"


class StudiesState(param.Parameterized):
    """HyperTendril's views over one study (or over every model).

    Construction reads only the list of studies. The study's models are read the first time a
    view asks (`models`) and then once per (study, `AppState.revision`): every view of one
    refresh shares one frame. The hyperparameter selector's choices are filled from that frame,
    so they are empty until something asks for it.
    """

    study: Any = param.Selector(default=ALL_MODELS, objects=[ALL_MODELS],
                                doc="the newest study at first (every model when there is none)")
    hyperparameter: Any = param.Selector(default=None, objects=[], allow_None=True,
                                         doc="the exploration history's hyperparameter")
    tradeoff: Any = param.Selector(default="params", objects=["params", "latency_ms"])
    brush = param.Dict(default={}, doc="hyperparameter -> (low, high): the brushed ranges")
    show_importance = param.Boolean(default=False,
                                    doc="compute hyperparameter importance (takes seconds)")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self._frames: dict[str, tuple[pd.DataFrame, list[str]]] = {}
        self._frames_revision = app.revision
        self._importance: dict[tuple[str, int], dict[str, Any]] = {}
        self._importance_lock = threading.Lock()
        self.studies = pd.DataFrame()
        self.reload()
        if "study" not in params and len(self.studies):
            self.study = self.studies["id"].iloc[-1]
        app.param.watch(lambda e: self.reload(), ["revision"])

    def reload(self) -> None:
        """Re-read the list of studies (one small query); models are re-read when next asked."""
        self.studies = frames.studies(self.app.db)
        ids = self.studies["id"].tolist() if len(self.studies) else []
        self.param.study.objects = [ALL_MODELS, *ids]
        if self.study not in self.param.study.objects:
            self.study = ALL_MODELS

    @param.depends("study", watch=True)
    def _clear_brush(self) -> None:
        self.brush = {}  # brushed ranges belong to the study they were drawn on

    @param.depends("brush", watch=True)
    def _brush_changed(self) -> None:
        """The study's brush is one of the app's selections: the overview shows it and the
        console can run it (`AppState.set_brush`)."""
        self.app.set_brush("study", self.brush_clauses())

    def brush_clauses(self) -> str:
        """The brush in the query language ('' when nothing is brushed): the study, then a range
        per brushed hyperparameter the language has a field for (lr, batch_size, weight_decay;
        log10 params as params), the models inside the range by id for the others."""
        if not self.brush:
            return ""
        parts = [f"study={self.study}"] if self.study != ALL_MODELS else []
        df = self.models()
        for name, (low, high) in self.brush.items():
            field = _brush.HYPERPARAMETER_FIELDS.get(name)
            if field:
                parts.append(_brush.range_clause(field, float(low), float(high),
                                                 whole=name == "batch_size"))
            elif name == "log_params":
                parts.append(_brush.range_clause("params", 10 ** float(low), 10 ** float(high),
                                                 whole=True))
            else:
                inside = _in_range(df, name, float(low), float(high))
                parts.append(_brush.ids_clause(inside["id"]))
        return _brush.join(parts)

    # --- the study's models ---------------------------------------------------------------------

    def models(self) -> pd.DataFrame:
        """The study's models in creation order: `iteration` (1, 2, ...), `acc`, `log_params`,
        `rung` (the Hyperband rung of a promotion, else NaN) and one `hp_<name>` column per
        hyperparameter. The frame is shared until the next refresh: do not modify it in place."""
        return self._load()[0]

    def hyperparameter_names(self) -> list[str]:
        """The hyperparameters that vary across the study's models."""
        return list(self._load()[1])

    def _load(self) -> tuple[pd.DataFrame, list[str]]:
        if self._frames_revision != self.app.revision:
            self._frames.clear()
            self._frames_revision = self.app.revision
        study = self.study
        if study not in self._frames:
            trials = frames.study_trials(self.app.db, None if study == ALL_MODELS else study)
            if study == ALL_MODELS and len(trials):  # rankings never mix datasets
                trials = trials[trials["dataset_id"] == self.app.dataset].reset_index(drop=True)
            df = _frame(trials)
            names = [c.removeprefix("hp_") for c in df.columns
                     if c.startswith("hp_") and df[c].nunique(dropna=True) > 1]
            self._frames[study] = (df, names)
            # A copy: the selector appends a value outside its choices to the list it holds.
            self.param.hyperparameter.objects = list(names)
            if self.hyperparameter not in names:
                self.hyperparameter = names[0] if names else None
        return self._frames[study]

    def brushed(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The models inside every brushed range (what the other study views show)."""
        df = self.models() if df is None else df
        for name, (low, high) in self.brush.items():
            df = _in_range(df, name, low, high)
        if "overview" in self.app.brushes and self.app.brushed is not None:
            df = df[df["id"].isin(self.app.brushed)]  # the overview's selection filters too
        return df

    def best_so_far(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The finished models of ``df`` (default: the brushed ones) in iteration order, with
        `best`: the best acc (test accuracy) up to each."""
        done = (self.brushed() if df is None else df).dropna(subset=["acc"])
        done = done.sort_values("iteration")
        return done.assign(best=done["acc"].cummax())

    # --- importance -----------------------------------------------------------------------------

    def importance_key(self) -> tuple[str, int] | None:
        """What the importance depends on: the study and how many of its models have finished
        (None for every model: importance is a property of one study's search space)."""
        if self.study == ALL_MODELS:
            return None
        return self.study, int(self.models()["acc"].notna().sum())

    def importance(self, key: tuple[str, int] | None = None) -> dict[str, Any]:
        """`nasdb.search`'s importance report for ``key`` (default: `importance_key()`): single
        fANOVA / PED-ANOVA importances, the pairs of the `PAIRS_OF` most important, marginal
        curves. Computed once per key (only each study's latest is kept); takes seconds. Safe to
        call from another thread with an explicit ``key``. Raises `NasdbError` for every model
        or a study with too few finished models."""
        key = key or self.importance_key()
        if key is None:
            raise NasdbError("pick a study: importance is computed over one study's search")
        with self._importance_lock:
            cached = self._importance.get(key)
        if cached is None:
            cached = study_importance(self.app.db, key[0], pairs_of=PAIRS_OF)
            with self._importance_lock:
                self._importance = {k: v for k, v in self._importance.items() if k[0] != key[0]}
                self._importance[key] = cached
        return cached

    # --- refining the space ---------------------------------------------------------------------

    def space(self) -> dict[str, Any] | None:
        """The selected study's search space (None for every model)."""
        row = self.study_row()
        return None if row is None else dict(row["space"] or {})

    def study_row(self) -> pd.Series | None:
        if self.study == ALL_MODELS or not len(self.studies):
            return None
        rows = self.studies[self.studies["id"] == self.study]
        return rows.iloc[0] if len(rows) else None

    def brush_refinements(self) -> dict[str, str]:
        """The brushed ranges as ``--set KEY=VALUE`` refinements of the hyperparameters that can
        be refined (`REFINABLE`): lr as LOW..HIGH, the others as the values inside the brush."""
        inside = self.brushed()
        out: dict[str, str] = {}
        for name, (low, high) in self.brush.items():
            kind = REFINABLE.get(name)
            if kind == "range":
                out[name] = f"{_number(float(low))}..{_number(float(high))}"
            elif kind == "list" and f"hp_{name}" in inside:
                values = sorted(pd.to_numeric(inside[f"hp_{name}"], errors="coerce").dropna()
                                .unique())
                if 0 < len(values) <= _MAX_LIST:
                    out[name] = ",".join(_number(float(v)) for v in values)
        return out

    def launch_refined(self, refinements: dict[str, str]) -> tuple[str, list[str]]:
        """Refine the study's search space (``--set KEY=VALUE`` refinements), create the next
        study from it and start driving it: `nasdb.search.refine_study` (one transaction that
        appends SearchSpaceRefined, StudyStopped if the study was running, and the next
        StudyCreated), then the server's `StudyDrivers` runs the new study, queueing its models
        for the workers. Returns the new study's id and the changes in words; raises
        `NasdbError` (no study picked, an unknown key, a bad value)."""
        if self.study_row() is None:
            raise NasdbError("pick a study first: only a study has a search space to refine")
        next_id, changes = refine_study(self.app.store, self.study, refinements,
                                        metadata=self.app.metadata)
        self.app.record("refine_study", study=self.study, next_study=next_id, changes=changes)
        self.app.drivers.start(next_id, self.app.store)
        self.app.refresh()
        return next_id, changes

    def driven(self) -> bool:
        """Whether a driver of this server is running the selected study."""
        return self.study in self.app.drivers.driving()

    def drive(self) -> None:
        """Run the selected study's driver in this server (`StudyDrivers`): for a study created
        or left running without one (``nasdb study create``, a stopped server). Raises
        `NasdbError` when there is nothing to drive."""
        row = self.study_row()
        if row is None:
            raise NasdbError("pick a study first")
        if row["state"] != "running":
            hint = f" (resume it with `nasdb study resume {self.study}`)" if (
                row["state"] == "paused") else ""
            raise NasdbError(f"study {self.study} is {row['state']}: nothing to run{hint}")
        if not self.app.drivers.start(self.study, self.app.store):
            raise NasdbError(f"study {self.study} is already driven by this server")
        self.app.record("run_study", study=self.study)

    def live_workers(self, within_s: float = 60.0) -> int:
        """Workers seen in the last ``within_s`` seconds and not stopped."""
        return frames.live_workers(self.app.db, within_s)


def _in_range(df: pd.DataFrame, name: str, low: float, high: float) -> pd.DataFrame:
    """The rows whose hyperparameter (or column) ``name`` lies in [low, high]."""
    col = f"hp_{name}" if f"hp_{name}" in df else name
    if col not in df:
        return df
    values = pd.to_numeric(df[col], errors="coerce")
    return df[(values >= low) & (values <= high)]


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    """`frames.study_trials` rows -> the frame `StudiesState.models` promises."""
    if df.empty:
        return df.assign(iteration=pd.Series(dtype=int), log_params=pd.Series(dtype=float))
    hp = pd.DataFrame.from_records([h if isinstance(h, dict) else {}
                                    for h in df["hyperparameters"]], index=df.index)
    hp.columns = [f"hp_{c}" for c in hp.columns]
    df = pd.concat([df.drop(columns=["hyperparameters"]), hp], axis=1)
    df["iteration"] = np.arange(1, len(df) + 1)
    df["acc"] = pd.to_numeric(df["acc"], errors="coerce").astype(float)
    df["val_acc"] = pd.to_numeric(df["val_acc"], errors="coerce").astype(float)
    df["latency_ms"] = pd.to_numeric(df["latency_ms"], errors="coerce").astype(float)
    df["rung"] = pd.to_numeric(df["rung"], errors="coerce").astype(float)
    df["log_params"] = np.log10(pd.to_numeric(df["params"], errors="coerce")
                                .astype(float).clip(lower=1))
    return df
