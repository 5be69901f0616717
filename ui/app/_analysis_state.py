"""State of the analysis views (inspection, class comparison, timeline, studies); no widgets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import param

from nasdb.ingest import NewEvent, new_study_id
from nasdb.schema.errors import NasdbError

from . import _data
from ._state import AppState


def moving_average(values: pd.Series, window: int) -> pd.Series:
    """Trailing moving average (the first points average what exists so far)."""
    return values.rolling(window=max(1, window), min_periods=1).mean()


class InspectState(param.Parameterized):
    """What the inspection tab shows for the selected model."""

    smooth = param.Boolean(default=False, doc="show learning curves as moving averages")
    window = param.Integer(default=3, bounds=(2, 20))
    metric: Any = param.Selector(default="accuracy", objects=["accuracy", "precision", "recall",
                                                         "specificity"])

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app

    def confusion(self, model_id: str | None) -> tuple[list[str], np.ndarray] | None:
        if not model_id:
            return None
        done = _data.completed(self.app.db, model_id)
        if not done or not done.get("confusion_matrix"):
            return None
        matrix = np.asarray(done["confusion_matrix"], dtype=float)
        names = list(done.get("class_names") or [str(i) for i in range(len(matrix))])
        return names, matrix

    def curves(self, model_id: str | None) -> pd.DataFrame:
        if not model_id:
            return pd.DataFrame()
        df = _data.epochs(self.app.db, [model_id])
        if df.empty or not self.smooth:
            return df
        for col in ("train_loss", "val_loss", "train_acc", "val_acc"):
            df[col] = moving_average(df[col].astype(float), self.window)
        return df

    def class_bars(self, model_id: str | None) -> pd.DataFrame:
        if not model_id:
            return pd.DataFrame()
        return _data.class_metrics(self.app.db, [model_id])


class ClassesState(param.Parameterized):
    """AutoCl's bump chart: ranks of models per class under a metric; one model in bold."""

    metric: Any = param.Selector(default="accuracy", objects=["accuracy", "precision", "recall",
                                                         "specificity"])
    which: Any = param.Selector(default="pinned + top", objects=["pinned + top", "top", "pinned",
                                                            "query result"])
    top = param.Integer(default=8, bounds=(2, 30))
    bold = param.String(default=None, allow_None=True)

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app

    def model_ids(self) -> list[str]:
        models = self.app.models
        if models is None or models.empty:
            return []
        trained = models[models["acc"].notna()].sort_values("acc", ascending=False)
        top = trained["id"].head(self.top).tolist()
        pinned = trained.loc[trained["pinned"], "id"].tolist()[: self.top]
        if self.which == "top":
            return top
        if self.which == "pinned":
            return pinned
        if self.which == "query result":
            return [m for m in self.app.highlighted if m in set(trained["id"])][: self.top]
        return list(dict.fromkeys([*pinned, *top]))[: max(self.top, len(pinned))]

    def ranks(self) -> pd.DataFrame:
        """model_id, class_name, class_index, value, rank (1 = best in that class)."""
        ids = self.model_ids()
        if not ids:
            return pd.DataFrame(columns=["model_id", "class_name", "class_index", "value", "rank"])
        df = _data.class_metrics(self.app.db, ids)
        if df.empty:
            return pd.DataFrame(columns=["model_id", "class_name", "class_index", "value", "rank"])
        df = df[["model_id", "class_name", "class_index", self.metric]].rename(
            columns={self.metric: "value"})
        df["value"] = df["value"].astype(float)
        df["rank"] = df.groupby("class_name")["value"].rank(ascending=False, method="first")
        return df.sort_values(["class_index", "rank"]).reset_index(drop=True)


class TimelineState(param.Parameterized):
    """The NAS dashboard's replay: the search up to step `step`, and a summary of it."""

    step = param.Integer(default=0, bounds=(0, None))
    steps = param.Integer(default=0, doc="how many completed trainings the log holds")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self._events = pd.DataFrame()
        self.reload()
        app.param.watch(lambda e: self.reload(), ["revision"])

    def reload(self) -> None:
        events = _data.timeline(self.app.db)
        self._events = events
        n = int((events["type"] == "TrainingCompleted").sum()) if len(events) else 0
        at_end = self.step >= self.steps
        self.param.step.bounds = (0, max(n, 0))
        self.steps = n
        if at_end:
            self.step = n

    def completions(self) -> pd.DataFrame:
        """One row per TrainingCompleted: iteration, model, accuracy, best so far, params, origin,
        parent, changes (from the model's proposal)."""
        ev = self._events
        if ev.empty:
            return pd.DataFrame(columns=["iteration", "model_id", "acc", "best", "params",
                                         "origin", "parent_id", "changes", "recorded_at"])
        proposed = ev[ev["type"] == "ArchitectureProposed"].copy()
        proposed["model_id"] = proposed["stream_id"].str.removeprefix("model-")
        proposed = proposed.drop_duplicates("model_id").set_index("model_id")
        done = ev[ev["type"] == "TrainingCompleted"].copy()
        done["model_id"] = done["stream_id"].str.removeprefix("model-")
        done["acc"] = done["test_acc"].astype(float)
        done["iteration"] = np.arange(1, len(done) + 1)
        done["best"] = done["acc"].cummax()
        for col in ("params", "origin", "parent_id", "changes"):
            done[col] = done["model_id"].map(proposed[col]) if len(proposed) else None
        return done[["iteration", "model_id", "acc", "best", "params", "origin", "parent_id",
                     "changes", "recorded_at"]].reset_index(drop=True)

    def summary(self, step: int | None = None) -> dict[str, Any]:
        """Best model so far, how much it beat the previous best, and the change that helped
        most (the largest accuracy gain of a child over its parent)."""
        step = self.step if step is None else step
        done = self.completions().head(step)
        out: dict[str, Any] = {"step": step, "models": len(done), "best_model": None,
                               "best_acc": None, "best_delta": None, "best_change": None,
                               "best_change_gain": None}
        if done.empty:
            return out
        best_row = done.iloc[int(done["acc"].to_numpy().argmax())]
        out["best_model"], out["best_acc"] = best_row["model_id"], float(best_row["acc"])
        earlier = done[done["iteration"] < best_row["iteration"]]
        out["best_delta"] = float(best_row["acc"] - earlier["acc"].max()) if len(earlier) else None
        acc = dict(zip(done["model_id"], done["acc"], strict=True))
        gains = []
        for _, r in done.iterrows():
            parent = r["parent_id"]
            if isinstance(parent, str) and parent in acc:
                changes = r["changes"] if isinstance(r["changes"], list) else []
                gains.append((float(r["acc"] - acc[parent]), r["model_id"], "; ".join(changes)))
        if gains:
            gain, model, change = max(gains)
            out["best_change"] = f"{model}: {change or '(no change text)'}"
            out["best_change_gain"] = gain
        return out


class StudiesState(param.Parameterized):
    """HyperTendril's views over one study (or over every model when there are no studies)."""

    study: Any = param.Selector(default="(all models)", objects=["(all models)"])
    hyperparameter: Any = param.Selector(default=None, objects=[], allow_None=True)
    tradeoff: Any = param.Selector(default="params", objects=["params", "latency_ms"])
    brush = param.Dict(default={}, doc="hyperparameter -> (low, high): the brushed ranges")
    show_importance = param.Boolean(default=False, doc="compute fANOVA importance (slow)")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self._importance: dict[tuple[str, int], pd.Series] = {}
        self.reload()
        app.param.watch(lambda e: self.reload(), ["revision"])

    def reload(self) -> None:
        studies = _data.studies(self.app.db)
        self._studies = studies
        options = ["(all models)", *studies["id"].tolist()] if len(studies) else ["(all models)"]
        self.param.study.objects = options
        if self.study not in options:
            self.study = options[0]
        names = self.hyperparameter_names()
        self.param.hyperparameter.objects = names
        if self.hyperparameter not in names:
            self.hyperparameter = names[0] if names else None

    def models(self) -> pd.DataFrame:
        """The study's models with one column per numeric hyperparameter (`hp_<name>`)."""
        df = _data.study_models(self.app.db, None if self.study == "(all models)" else self.study)
        if df.empty:
            return df
        hp = pd.json_normalize(df["hyperparameters"].tolist())
        hp.columns = [f"hp_{c}" for c in hp.columns]
        df = pd.concat([df.drop(columns=["hyperparameters"]), hp], axis=1)
        df["iteration"] = np.arange(1, len(df) + 1)
        df["acc"] = df["acc"].astype(float)
        df["log_params"] = np.log10(df["params"].astype(float).clip(lower=1))
        return df

    def hyperparameter_names(self) -> list[str]:
        df = self.models()
        names = []
        for col in df.columns:
            if not col.startswith("hp_"):
                continue
            values = df[col].dropna()
            if len(values) and values.nunique() > 1:
                names.append(col.removeprefix("hp_"))
        return names

    def brushed(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """The models inside every brushed range (what the other study views show)."""
        df = self.models() if df is None else df
        for name, (low, high) in self.brush.items():
            col = f"hp_{name}" if f"hp_{name}" in df else name
            if col in df:
                values = pd.to_numeric(df[col], errors="coerce")
                df = df[(values >= low) & (values <= high)]
        return df

    def best_so_far(self) -> pd.DataFrame:
        df = self.models()
        if df.empty:
            return df
        done = df.dropna(subset=["acc"]).sort_values("finished_at")
        done["best"] = done["acc"].cummax()
        done["n"] = np.arange(1, len(done) + 1)
        return done

    def importance(self) -> pd.Series:
        """Hyperparameter importance from Optuna's fANOVA evaluator over the finished models
        (numeric and categorical hyperparameters that vary); empty when it cannot be computed."""
        df = self.models().dropna(subset=["acc"])
        key = (self.study, len(df))
        if key not in self._importance:
            self._importance[key] = self._compute_importance(df)
        return self._importance[key]

    def _compute_importance(self, df: pd.DataFrame) -> pd.Series:
        names = self.hyperparameter_names()
        if len(df) < 8 or not names:
            return pd.Series(dtype=float)
        try:
            import optuna
            from optuna.distributions import CategoricalDistribution, FloatDistribution
            from optuna.importance import FanovaImportanceEvaluator, get_param_importances
            from optuna.trial import create_trial

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            dists: dict[str, Any] = {}
            for name in names:
                values = df[f"hp_{name}"].dropna()
                if pd.api.types.is_numeric_dtype(values) and values.nunique() > 1:
                    low, high = float(values.min()), float(values.max())
                    dists[name] = FloatDistribution(low, high, log=low > 0 and high / low > 50)
                else:
                    dists[name] = CategoricalDistribution(sorted({str(v) for v in values}))
            study = optuna.create_study(direction="maximize")
            for _, row in df.iterrows():
                params = {}
                for name, dist in dists.items():
                    v = row[f"hp_{name}"]
                    if v is None or (isinstance(v, float) and math.isnan(v)):
                        break
                    params[name] = float(v) if isinstance(dist, FloatDistribution) else str(v)
                else:
                    study.add_trial(create_trial(params=params, distributions=dists,
                                                 value=float(row["acc"])))
            evaluator = FanovaImportanceEvaluator(n_trees=16, max_depth=8, seed=0)
            result = get_param_importances(study, evaluator=evaluator)
        except (ImportError, ValueError, RuntimeError):
            return pd.Series(dtype=float)
        return pd.Series(result, dtype=float).sort_values(ascending=False)

    def pairwise(self) -> pd.DataFrame | None:
        """Pairwise importance when the study's strategy recorded one (settings.pairwise)."""
        if self.study == "(all models)" or self._studies.empty:
            return None
        row = self._studies[self._studies["id"] == self.study]
        if row.empty:
            return None
        settings = row["settings"].iloc[0] or {}
        pairs = settings.get("pairwise_importance") if isinstance(settings, dict) else None
        if not pairs:
            return None
        return pd.DataFrame(pairs)

    def launch_refined(self, space: dict[str, Any], note: str = "") -> str:
        """Refine the study's search space and start the next study from it (two events)."""
        if self.study == "(all models)":
            raise NasdbError("pick a study first: only a study has a search space to refine")
        row = self._studies[self._studies["id"] == self.study].iloc[0]
        next_id = new_study_id(self.app.db)
        store = self.app.store
        meta = self.app.metadata
        store.append(f"study-{self.study}", [NewEvent("SearchSpaceRefined", {
            "space": space, "changes": [note] if note else [], "next_study_id": next_id},
            metadata=meta)])
        store.append(f"study-{next_id}", [NewEvent("StudyCreated", {
            "study_id": next_id, "dataset_id": row["dataset_id"], "strategy": row["strategy"],
            "settings": row["settings"] or {}, "space": space,
            "objectives": list(row["objectives"] or ["acc", "params"]),
            "budget": row["budget"] or {}, "previous_study_id": self.study}, metadata=meta)],
            expected_version=0)
        self.app.record("refine_study", study=self.study, next_study=next_id)
        self.app.refresh()
        return next_id
