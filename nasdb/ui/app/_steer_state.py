"""State of the steering views (generate, queue): what the person set up, and the actions that
turn it into events through `nasdb.search`. No widgets."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import param

from nasdb import read, search, steer
from nasdb.read import frames
from nasdb.schema.errors import InvalidArchitecture, InvalidRequest, NasdbError
from nasdb.schema.vocabulary import Origin
from nasdb.search import CHANGE_KINDS, Architecture, Hyperparameters
from nasdb.steer import Proposal

from ._state import AppState


class GenerateState(param.Parameterized):
    """Ablations, variations and handcrafted children of the selected model."""

    mode: Any = param.Selector(default="ablations", objects=["ablations", "variations", "handcraft"])
    ablate = param.List(default=[], doc="parent layer indices to ablate (empty = all)")
    count = param.Integer(default=5, bounds=(1, 20), doc="variations: how many children")
    changes = param.Integer(default=3, bounds=(1, 5), doc="variations: changes per child")
    kinds = param.Dict(default={}, doc="variations: parent index -> allowed change kinds")
    editor = param.String(default="", doc="handcraft: one layer per line, like Dense(units=64)")
    message = param.String(default="")
    last_children = param.List(default=[])

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        app.param.watch(self._parent_changed, ["selected"])
        self._parent_changed()

    # --- the parent ------------------------------------------------------------------------

    def parent(self) -> dict[str, Any] | None:
        return self.app.model(self.app.selected)

    def parent_arch(self) -> Architecture | None:
        row = self.parent()
        if row is None:
            return None
        try:
            return Architecture.from_json(row["architecture"])
        except NasdbError:
            return None

    def _parent_changed(self, *_: Any) -> None:
        arch = self.parent_arch()
        with param.parameterized.batch_call_watchers(self):
            self.ablate = []
            self.kinds = {}
            self.editor = "\n".join(str(layer) for layer in arch.layers) if arch else ""
            self.message = ""

    def layer_labels(self) -> list[str]:
        arch = self.parent_arch()
        return [f"{i}: {layer.code()}" for i, layer in enumerate(arch.layers)] if arch else []

    # --- actions ---------------------------------------------------------------------------

    def _propose(self, children: list[tuple[Architecture, list[str]]], origin: Origin) -> list[str]:
        row = self.parent()
        assert row is not None
        dataset = read.get_dataset(self.app.db, row["dataset_id"])
        hp = Hyperparameters.from_json(row["hyperparameters"])
        proposals = [Proposal(arch, hp, origin, parent_id=row["id"], changes=tuple(changes))
                     for arch, changes in children]
        ids = steer.propose(self.app.store, dataset, proposals, study_id=row["study_id"],
                             metadata=self.app.metadata)
        self.last_children = ids
        self.app.record(origin, parent=row["id"], children=ids)
        self.app.refresh()
        return ids

    def _context(self) -> tuple[dict[str, Any], Architecture, Any]:
        row = self.parent()
        arch = self.parent_arch()
        if row is None or arch is None:
            raise InvalidRequest("select a model first (click it in the overview)")
        return row, arch, read.get_dataset(self.app.db, row["dataset_id"])

    def run_ablations(self) -> list[str]:
        """Queue one child per ablated layer; skipped layers are named in `message`."""
        try:
            _, arch, ds = self._context()
            children, skipped = search.ablations(arch, ds.input_shape, ds.num_classes,
                                                 self.ablate or None)
            if not children:
                raise InvalidRequest("no valid ablation: " + "; ".join(r for _, r in skipped))
            ids = self._propose([(c, [text]) for c, text in children], "ablation")
        except NasdbError as e:
            self.message = f"⚠ {e}"
            return []
        extra = f"; skipped {len(skipped)}: " + "; ".join(f"layer {i}: {r}" for i, r in skipped) \
            if skipped else ""
        self.message = f"queued {len(ids)} ablation{'s' if len(ids) != 1 else ''}: " \
                       f"{', '.join(ids)}{extra}"
        return ids

    def run_variations(self, seed: int | None = None) -> list[str]:
        try:
            _, arch, ds = self._context()
            constraints = {int(i): set(k) for i, k in self.kinds.items()} if self.kinds else None
            children = search.variations(
                arch, ds.input_shape, ds.num_classes, n=self.count, changes=self.changes,
                rng=random.Random(seed), constraints=constraints)
            ids = self._propose(children, "variation")
        except NasdbError as e:
            self.message = f"⚠ {e}"
            return []
        self.message = f"queued {len(ids)} variations: {', '.join(ids)}"
        return ids

    def run_handcraft(self) -> list[str]:
        """Queue the editor's layer list as a handcrafted child of the parent."""
        try:
            _, arch, ds = self._context()
            lines = [ln.strip() for ln in self.editor.splitlines() if ln.strip()]
            layers = []
            for n, line in enumerate(lines, 1):
                try:
                    layers.append(search.parse_layer(line))
                except InvalidRequest as e:
                    raise InvalidRequest(f"line {n}: {e}") from e
            child = Architecture(tuple(layers))
            if child == arch:
                raise InvalidRequest("the layer list is the parent's: change something first")
            search.infer_shapes(child, ds.input_shape, ds.num_classes)
            ids = self._propose([(child, search.diff(arch, child))], "handcrafted")
        except (NasdbError, InvalidArchitecture) as e:
            self.message = f"⚠ {e}"
            return []
        self.message = f"queued handcrafted {ids[0]}"
        return ids

    def set_kinds(self, index: int, kinds: list[str]) -> None:
        bad = set(kinds) - set(CHANGE_KINDS)
        if bad:
            raise InvalidRequest(f"unknown change kinds {sorted(bad)}")
        self.kinds = {**self.kinds, index: list(kinds)}

    def children(self) -> pd.DataFrame:
        """The parent's children with their deltas against the parent (accuracy, params) and
        their training time (seconds), the change text last (it is the long one)."""
        row = self.parent()
        models = self.app.models
        if row is None or models is None or models.empty:
            return pd.DataFrame()
        kids = models[models["parent_id"] == row["id"]]
        if kids.empty:
            return pd.DataFrame()
        parent_acc = row["test_acc"]
        out = pd.DataFrame({
            "id": kids["id"],
            "Δacc": (kids["acc"] - parent_acc).round(4) if parent_acc is not None else None,
            "Δparams": kids["params"] - int(row["params"]),
            "acc": kids["acc"].round(4), "params": kids["params"],
            "train_s": kids["train_seconds"].round(1),
            "status": kids["status"], "epochs": kids["epochs_trained"], "origin": kids["origin"],
            "changes": kids["changes"].fillna(""),
        })
        return out.reset_index(drop=True)


class QueueState(param.Parameterized):
    """Jobs and workers; reorder (priority) and cancel."""

    selected_job = param.String(default=None, allow_None=True)
    message = param.String(default="")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app

    def jobs(self) -> pd.DataFrame:
        return frames.jobs(self.app.db)

    def workers(self) -> pd.DataFrame:
        df = frames.workers(self.app.db)
        if not df.empty:
            now = pd.Timestamp.now(tz="UTC")
            df["seen_s_ago"] = (now - pd.to_datetime(df["last_seen"], utc=True)).dt.total_seconds()
            df["seen_s_ago"] = df["seen_s_ago"].round(1)
        return df

    def _act(self, what: str, fn: Any) -> bool:
        model = self.selected_job
        if not model:
            self.message = "select a job first"
            return False
        try:
            fn(model)
        except NasdbError as e:
            self.message = f"⚠ {e}"
            return False
        self.message = f"{what} {model}"
        self.app.record(f"queue_{what}", model=model)
        self.app.refresh()
        return True

    def cancel(self) -> bool:
        return self._act("cancelled", lambda m: steer.cancel(self.app.store, m, "from the web UI"))

    def move(self, where: str) -> bool:
        """Reorder: ``top`` (above every queued job), ``up`` / ``down`` (one priority step)."""
        jobs = self.jobs()
        queued = jobs[jobs["state"] == "queued"]
        current = queued.loc[queued["model_id"] == self.selected_job, "priority"]
        base = int(current.iloc[0]) if len(current) else 0
        if where == "top":
            new = int(queued["priority"].max()) + 1 if len(queued) else 1
        elif where == "bottom":
            new = int(queued["priority"].min()) - 1 if len(queued) else -1
        else:
            new = base + (1 if where == "up" else -1)
        return self._act(f"moved {where}",
                         lambda m: steer.set_priority(self.app.store, m, new))
