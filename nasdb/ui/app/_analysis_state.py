"""State of the analysis views (inspection, class comparison, timeline); no widgets.

The Studies view's state is `StudiesState` in `_studies_state`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import param

from nasdb.query import pareto_mask
from nasdb.read import frames

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

    def generalisation(self, limit: int = 3000) -> pd.DataFrame:
        """The NAS dashboard's validation-vs-test scatter: one row per model with both accuracies
        (id, val_acc, test_acc, gap = test - validation, size = the circle's size, from the test
        accuracy); at most ``limit`` (a fixed sample beyond, the selected model always in)."""
        models = self.app.models
        cols = ["id", "val_acc", "test_acc", "gap", "size"]
        if models is None or models.empty:
            return pd.DataFrame(columns=cols)
        both = models[models["test_acc"].notna() & models["best_val_acc"].notna()]
        if len(both) > limit:
            keep = both.sample(limit, random_state=0)
            chosen = both[both["id"] == self.app.selected]
            both = pd.concat([keep, chosen]).drop_duplicates("id")
        out = pd.DataFrame({"id": both["id"], "val_acc": both["best_val_acc"].astype(float),
                            "test_acc": both["test_acc"].astype(float)})
        out["gap"] = (out["test_acc"] - out["val_acc"]).round(4)
        out["size"] = 4 + 16 * out["test_acc"].clip(0, 1)
        return out.reset_index(drop=True)

    def nearest_generalisation(self, x: float, y: float) -> str | None:
        """The model nearest (val_acc, test_acc) = (x, y) in the scatter."""
        df = self.generalisation()
        if df.empty:
            return None
        d = (df["val_acc"] - x) ** 2 + (df["test_acc"] - y) ** 2
        return str(df["id"].iloc[int(d.to_numpy().argmin())])

    def confusion(self, model_id: str | None) -> tuple[list[str], np.ndarray] | None:
        if not model_id:
            return None
        done = frames.completed(self.app.db, model_id)
        if not done or not done.get("confusion_matrix"):
            return None
        matrix = np.asarray(done["confusion_matrix"], dtype=float)
        names = list(done.get("class_names") or [str(i) for i in range(len(matrix))])
        return names, matrix

    def curves(self, model_id: str | None) -> pd.DataFrame:
        if not model_id:
            return pd.DataFrame()
        df = frames.epochs(self.app.db, [model_id])
        if df.empty or not self.smooth:
            return df
        for col in ("train_loss", "val_loss", "train_acc", "val_acc"):
            df[col] = moving_average(df[col].astype(float), self.window)
        return df

    def class_bars(self, model_id: str | None) -> pd.DataFrame:
        if not model_id:
            return pd.DataFrame()
        return frames.class_metrics(self.app.db, [model_id])


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
        df = frames.class_metrics(self.app.db, ids)
        if df.empty:
            return pd.DataFrame(columns=["model_id", "class_name", "class_index", "value", "rank"])
        df = df[["model_id", "class_name", "class_index", self.metric]].rename(
            columns={self.metric: "value"})
        df["value"] = df["value"].astype(float)
        df["rank"] = df.groupby("class_name")["value"].rank(ascending=False, method="first")
        return df.sort_values(["class_index", "rank"]).reset_index(drop=True)


class TimelineState(param.Parameterized):
    """The NAS dashboard's replay of the selected dataset's search (`AppState.dataset`: rankings
    never mix datasets) up to step `step`, and a summary of it. ``acc`` is test accuracy."""

    step = param.Integer(default=0, bounds=(0, None))
    steps = param.Integer(default=0, doc="how many completed trainings of the dataset the log "
                          "holds")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self._events = pd.DataFrame()
        self.reload()
        app.param.watch(lambda e: self.reload(), ["revision"])

    def reload(self) -> None:
        self._events = frames.timeline(self.app.db)
        n = len(self.completions())
        at_end = self.step >= self.steps
        self.param.step.bounds = (0, max(n, 0))
        self.steps = n
        if at_end:
            self.step = n

    def completions(self) -> pd.DataFrame:
        """One row per TrainingCompleted of a model of the selected dataset: iteration, model,
        acc (test accuracy), best so far, params, origin, parent, changes (from the model's
        proposal)."""
        ev = self._events
        columns = ["iteration", "model_id", "acc", "best", "params", "origin", "parent_id",
                   "changes", "recorded_at"]
        if ev.empty:
            return pd.DataFrame(columns=columns)
        proposed = ev[ev["type"] == "ArchitectureProposed"].copy()
        proposed["model_id"] = proposed["stream_id"].str.removeprefix("model-")
        proposed = proposed.drop_duplicates("model_id").set_index("model_id")
        done = ev[ev["type"] == "TrainingCompleted"].copy()
        done["model_id"] = done["stream_id"].str.removeprefix("model-")
        if len(proposed):
            done = done[done["model_id"].map(proposed["dataset_id"]) == self.app.dataset].copy()
        else:
            done = done.iloc[0:0]
        done["acc"] = done["test_acc"].astype(float)
        done["iteration"] = np.arange(1, len(done) + 1)
        done["best"] = done["acc"].cummax()
        for col in ("params", "origin", "parent_id", "changes"):
            done[col] = done["model_id"].map(proposed[col]) if len(proposed) else None
        return done[columns].reset_index(drop=True)

    def front(self, step: int | None = None) -> pd.DataFrame:
        """The completions up to ``step`` on the Pareto front of acc vs params then (the one
        rule: `nasdb.query.pareto_mask`), by params."""
        step = self.step if step is None else step
        done = self.completions().head(step)
        if done.empty:
            return done
        values = np.column_stack([done["acc"].to_numpy(dtype=float),
                                  pd.to_numeric(done["params"]).to_numpy(dtype=float)])
        return done[pareto_mask(values, (True, False))].sort_values(["params", "model_id"])

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
