"""The app's shared state: what is loaded, selected, queried and highlighted (no widgets).

`AppState` is a `param.Parameterized` that views watch. It reads through `nasdb.query` and the
public views (`_data`), and writes only by appending events: steering through `nasdb.search`, and
what the person did as `UiAction` events on the `session-<id>` stream (HyperTendril's interaction
log). One `AppState` per browser session; it is not thread-safe (Panel runs a session's callbacks
one at a time).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import param

from nasdb import query as nasdb_query
from nasdb import steer
from nasdb.ingest import (
    EventStore,
    NewEvent,
    ProjectionBehind,
    default_metadata,
    projection_status,
    wait_projected,
)
from nasdb.read import frames
from nasdb.schema import settings
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidRequest, NasdbError, QuerySyntaxError
from nasdb.schema.events import UiAction
from nasdb.search import Architecture

from . import _brush
from ._acting import ActingStore
from ._drivers import StudyDrivers
from ._projection import LandmarkLayout, hamming_matrix, structural_matrix

log = logging.getLogger(__name__)

WAIT_SECONDS = 10.0  # how long an action waits for the projector to include its own writes
PROJECTIONS = ("accuracy vs params", "structural distance", "prediction distance")


def new_session_id() -> str:
    """A UI session id as docs/contracts.md spells it: ``u`` + 12 hex digits."""
    return "u" + uuid.uuid4().hex[:12]


class Layouts:
    """The structural / prediction layouts, shared by every session of one server so that a model
    keeps its place for everyone. Thread-safe (each layout locks itself)."""

    def __init__(self, db: Database, max_models: int = 1500) -> None:
        self.db = db
        self.max_models = max_models
        self._archs: dict[str, Architecture] = {}
        self._labels: dict[str, bytes] = {}
        self.structural = LandmarkLayout(structural_matrix(self._archs))
        self.prediction = LandmarkLayout(hamming_matrix(self._labels))

    def coordinates(self, kind: str, ids: list[str]) -> dict[str, tuple[float, float]]:
        """Coordinates of (at most `max_models` of) ``ids``; which models were left out is the
        caller's business (it shows the count)."""
        ids = ids[: self.max_models]
        if kind == "structural distance":
            missing = [i for i in ids if i not in self._archs]
            for mid, arch in frames.architectures(self.db, missing).items():
                try:
                    self._archs[mid] = Architecture.from_json(arch)
                except NasdbError:
                    continue
            return self.structural.place([i for i in ids if i in self._archs])
        missing = [i for i in ids if i not in self._labels]
        self._labels.update(frames.predictions(self.db, missing))
        have = [i for i in ids if i in self._labels]
        if not have:
            return {}
        lengths = pd.Series([len(self._labels[i]) for i in have])
        common = int(lengths.mode().iloc[0])
        return self.prediction.place([i for i in have if len(self._labels[i]) == common])


class ModelFrames:
    """The models frame, loaded once per log position and shared (read-only) by every session of
    one server: a new browser tab on an unchanged log costs no database read. Thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._position = -1
        self._frame: pd.DataFrame | None = None

    def at(self, position: int) -> pd.DataFrame:
        """The frame as of ``position``, the log's last model event (`frames.last_model_position`);
        callers must not modify it."""
        with self._lock:
            if self._frame is None or self._position != position:
                self._frame = frames.load_models(self.db)
                self._position = position
            return self._frame


def _raster_above() -> int:
    value = settings.get("raster_above") or "3000"
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"NASDB_RASTER_ABOVE must be a whole number of models, got "
                             f"{value!r}") from None


class AppState(param.Parameterized):
    """Models, selection, query and highlight of one browser session."""

    models = param.DataFrame(default=None, allow_None=True,
                             doc="the models of the selected dataset, one row each")
    position = param.Integer(default=0, doc="the last log position the state has seen")
    dataset: Any = param.Selector(default=None, objects=[], allow_None=True,
                                  doc="the dataset shown and ranked (accuracies of different "
                                      "datasets do not compare); at first the most recently used")
    classes = param.List(default=[], doc="class names of the selected dataset")
    class_focus = param.ListSelector(default=[], objects=[],
                                     doc="colour by these classes' accuracy (their recall)")
    projection: Any = param.Selector(default=PROJECTIONS[0], objects=list(PROJECTIONS))
    selected = param.String(default=None, allow_None=True, doc="the model in focus")
    query = param.String(default="", doc="the last query run")
    query_error = param.String(default="", doc="the caret message of a bad query")
    query_description = param.String(default="")
    result = param.DataFrame(default=None, allow_None=True, doc="the last query's rows")
    highlighted = param.List(default=[], doc="model ids the query returned")
    compare = param.List(default=[], doc="pinned models chosen for side-by-side comparison")
    notice = param.String(default="", doc="the last message for the person (errors, done)")
    large_threshold = param.Integer(default=3000, doc="above this many points, rasterise "
                                    "(NASDB_RASTER_ABOVE)")
    large = param.Boolean(default=False)
    revision = param.Integer(default=0, doc="bumped whenever models are reloaded")
    brushes = param.Dict(default={}, doc="selection source (overview, study) -> its query "
                         "clauses; every source's clauses are ANDed")
    brushed = param.List(default=None, allow_None=True, item_type=str,
                         doc="the models the brushes' query returns (None: no brush)")
    console_text = param.String(default="", doc="text put into the query console for editing")
    tasks = param.List(default=[], doc="slow work running now (over a second), in words: "
                       "what the progress line shows")
    projection_lag = param.String(default="", doc="how far the read models are behind the log, "
                                  "and how many events the projector could not apply")

    def __init__(self, db: Database, *, store: EventStore | None = None,
                 layouts: Layouts | None = None, frames: ModelFrames | None = None,
                 drivers: StudyDrivers | None = None,
                 session_id: str | None = None, actor: str | None = None,
                 may_steer: bool = True, **params: Any) -> None:
        params.setdefault("large_threshold", _raster_above())
        super().__init__(**params)
        self.db = db
        # The session's identity: every event it appends names ``actor``; a viewer only looks.
        self.session_id = session_id or new_session_id()
        self.actor = actor or str(default_metadata()["actor"])
        self.may_steer = may_steer
        self.store = ActingStore(store or EventStore(db=db), actor=self.actor,
                                 session=self.session_id, may_steer=may_steer)
        self.layouts = layouts or Layouts(db)
        self.frames = frames or ModelFrames(db)
        self.drivers = drivers or StudyDrivers(db)
        self._class_values: pd.Series | None = None
        self._front: set[str] | None = None
        self._model_position = -1
        self._datasets: dict[str, list[str]] = {}
        self._dataset_by_default = False
        self.refresh(force=True)

    # --- slow work ------------------------------------------------------------------------------

    def start_task(self, text: str) -> str:
        """Say that slow work has started (``text``, e.g. "computing the structural distance
        layout of 300 models"); returns the token `end_task` takes."""
        token = f"{text} …"
        self.tasks = [*self.tasks, token]
        return token

    def end_task(self, token: str) -> None:
        self.tasks = [t for t in self.tasks if t != token]

    # --- the log -------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """What every event this session appends carries: the session, the source and, when
        someone is signed in, the actor."""
        meta: dict[str, Any] = {"session": self.session_id, "source": "web"}
        if self.actor:
            meta["actor"] = self.actor
        return meta

    def record(self, action: str, **detail: Any) -> None:
        """Append a UiAction to this session's stream; never lets a logging failure surface."""
        try:
            self.store.append(f"session-{self.session_id}",
                              [NewEvent.of(UiAction(action=action, detail=detail),
                                           metadata=self.metadata)])
        except NasdbError as e:  # the action itself succeeded; losing its log entry is minor
            log.warning("could not record UI action %s: %s", action, e)

    def refresh(self, force: bool = False, *, wait: bool = True) -> bool:
        """Reload when the read models moved (the app's projector service keeps them current).

        With ``wait`` (after this session's own writes) it first waits, briefly, until the read
        models include every event appended so far; the live-update tick passes False. Keeps the
        selection, the highlight and the compare list. Returns True when reloaded.
        """
        if wait:
            try:
                wait_projected(self.db, timeout=WAIT_SECONDS)
            except ProjectionBehind as e:
                self.notice = f"⚠ {e}"
        status = projection_status(self.db)
        self.projection_lag = lag_text(status)
        position = status["last_position"]
        model_position = frames.last_model_position(self.db)
        if not force and model_position == self._model_position:
            self.position = position  # only session events: nothing the views show moved
            return False
        self._model_position = model_position
        self._datasets = frames.datasets(self.db)
        with param.parameterized.batch_call_watchers(self):
            self.param.dataset.objects = list(self._datasets)
            if self.dataset not in self._datasets:
                self._dataset_by_default = True  # not a person's choice: nothing to record
                self.dataset = next(iter(self._datasets), None)
            self.position = position
            self._load_dataset()
            if self.query and not self.query_error:
                self._run(self.query)
            self.revision += 1
        return True

    def _load_dataset(self) -> None:
        """The selected dataset's models and classes, from the shared frame."""
        frame = self.frames.at(self._model_position)
        if len(frame) and not frame["dataset_id"].eq(self.dataset).all():
            frame = frame[frame["dataset_id"] == self.dataset].reset_index(drop=True)
        classes = self._datasets.get(self.dataset, []) if self.dataset is not None else []
        self._class_values = None
        self._front = None
        if classes != self.classes:
            self.class_focus = [c for c in self.class_focus if c in classes]
            self.param.class_focus.objects = classes
            self.classes = classes
        self.large = len(frame) > self.large_threshold
        self.models = frame

    @param.depends("dataset", watch=True)
    def _dataset_changed(self) -> None:
        by_default, self._dataset_by_default = self._dataset_by_default, False
        if self._model_position < 0 or self.dataset is None:
            return
        with param.parameterized.batch_call_watchers(self):
            self._load_dataset()
            if self.query and not self.query_error:
                self._run(self.query)
            self.revision += 1
        if not by_default:
            self.record("dataset", dataset=self.dataset)

    # --- the overview --------------------------------------------------------------------------

    @param.depends("class_focus", watch=True)
    def _focus_changed(self) -> None:
        self._class_values = None
        self._front = None
        self.revision += 1
        self.record("class_focus", classes=list(self.class_focus))

    @param.depends("projection", watch=True)
    def _projection_changed(self) -> None:
        self.record("projection", projection=self.projection)

    def color_values(self) -> pd.Series:
        """The value that colours each model: test accuracy, or the focused classes' mean
        accuracy (each class's recall)."""
        models = self.models if self.models is not None else pd.DataFrame(columns=["id", "acc"])
        if not self.class_focus:
            return pd.Series(models["acc"].to_numpy(dtype=float), index=models["id"])
        if self._class_values is None:
            self._class_values = frames.class_accuracy(self.db, list(self.class_focus),
                                                      dataset=self.dataset)
        return self._class_values.reindex(models["id"]).astype(float)

    def front(self) -> set[str]:
        """The models on the Pareto front of the colour (accuracy, or the focused classes') vs
        params in the selected dataset: exactly what the query language's ``pareto`` returns
        (`nasdb.query.front_ids`), asked once per reload, dataset and class focus."""
        if self._front is None:
            if self.dataset is None or self.models is None or self.models.empty:
                self._front = set()
            else:
                try:
                    self._front = set(nasdb_query.front_ids(self.db, self.dataset,
                                                            list(self.class_focus)))
                except NasdbError as e:
                    log.warning("could not compute the Pareto front: %s", e)
                    self._front = set()
        return self._front

    def frame(self, projection: str | None = None) -> pd.DataFrame:
        """What the overview plots in ``projection`` (default: `projection`): x, y, colour and
        flags (pareto, highlighted, selected)."""
        projection = projection or self.projection
        models = self.models
        if models is None or models.empty:
            return pd.DataFrame(columns=["id", "x", "y", "color", "size", "pareto", "glyph",
                                         "params", "acc", "origin", "status"])
        df = models[["id", "glyph", "params", "acc", "origin", "status", "log_params",
                     "pinned"]].copy()
        df["color"] = self.color_values().to_numpy()
        df["pareto"] = df["id"].isin(self.front())
        df["size"] = 4 + 2.2 * df["log_params"].clip(lower=0)
        if projection == PROJECTIONS[0]:
            df["x"], df["y"] = df["log_params"], df["color"]
        else:
            trained = df.loc[df["acc"].notna(), "id"].tolist()
            coords = self.layouts.coordinates(projection, trained)
            df = df[df["id"].isin(list(coords))].copy()
            xy = np.array([coords[i] for i in df["id"]]) if len(df) else np.zeros((0, 2))
            df["x"], df["y"] = xy[:, 0], xy[:, 1]
        df["highlighted"] = df["id"].isin(self.highlighted)
        return df.reset_index(drop=True)

    def trained_ids(self) -> list[str]:
        """Ids of the models with an accuracy (what a distance layout places)."""
        models = self.models
        if models is None or models.empty:
            return []
        return models.loc[models["acc"].notna(), "id"].astype(str).tolist()

    def prepare_layout(self, projection: str) -> int:
        """Compute (and cache in `Layouts`) ``projection``'s coordinates of the trained models:
        the slow part of switching to a distance layout (seconds). Thread-safe. Returns how many
        models it placed."""
        if projection == PROJECTIONS[0]:
            return 0
        return len(self.layouts.coordinates(projection, self.trained_ids()))

    def nearest(self, x: float, y: float, frame: pd.DataFrame | None = None,
                within: float | None = None) -> str | None:
        """The id of the model plotted nearest to (x, y) (see `nearest_row`)."""
        row = self.nearest_row(x, y, frame, within)
        return None if row is None else str(row["id"])

    def nearest_row(self, x: float, y: float, frame: pd.DataFrame | None = None,
                    within: float | None = None) -> pd.Series | None:
        """The row of ``frame`` (default `frame()`) plotted nearest to (x, y), in axis-normalised
        units (the data's extent is 1 on each axis); None if none is closer than ``within``."""
        df = self.frame() if frame is None else frame
        df = df.dropna(subset=["x", "y"])
        if df.empty:
            return None
        xs, ys = df["x"].to_numpy(float), df["y"].to_numpy(float)
        sx = (np.nanmax(xs) - np.nanmin(xs)) or 1.0
        sy = (np.nanmax(ys) - np.nanmin(ys)) or 1.0
        d = ((xs - x) / sx) ** 2 + ((ys - y) / sy) ** 2
        best = int(np.argmin(d))
        if within is not None and d[best] > within ** 2:
            return None
        return df.iloc[best]

    # --- the query console ---------------------------------------------------------------------

    def _run(self, text: str) -> int:
        try:
            result = nasdb_query.run(text, self.db, dataset=self.dataset)
        except QuerySyntaxError as e:
            self.query_error = str(e)
            self.query_description = ""
            self.result = None
            self.highlighted = []
            return -1
        rows = pd.DataFrame(result.rows, columns=list(result.columns))
        self.query_error = ""
        self.query_description = result.description
        self.result = rows
        self.highlighted = rows["id"].astype(str).tolist() if "id" in rows.columns else []
        return len(rows)

    def run_query(self, text: str) -> None:
        """Run a query; a bad one sets `query_error` (the caret message) and highlights nothing."""
        text = text.strip()
        self.query = text
        if not text:
            self.query_error, self.result, self.highlighted = "", None, []
            self.query_description = ""
            return
        started = time.perf_counter()
        try:
            n = self._run(text)
        except NasdbError as e:
            self.query_error, self.result, self.highlighted = str(e), None, []
            n = -1
        self.record("query", text=text, rows=n, error=self.query_error or None,
                    ms=round((time.perf_counter() - started) * 1000, 1))

    # --- linked brushing: every selection is a query -----------------------------------------

    def brush_query(self) -> str:
        """The query every brush together stands for ('' when nothing is brushed): the overview's
        clauses, then the study's. Its result is `brushed`."""
        text = _brush.join(self.brushes.get(k, "") for k in ("overview", "study"))
        n = 0 if self.models is None else len(self.models)
        if text and n > nasdb_query.DEFAULT_LIMIT:
            text += f" limit {n}"
        return text

    def set_brush(self, source: str, clauses: str | None) -> None:
        """Set (or clear, with None / '') one source's selection; runs the joint query through
        `nasdb.query` and sets `brushed` to its models (a query error clears the brush and says
        why in `notice`). Appends a ``brush_query`` UiAction."""
        brushes = {k: v for k, v in self.brushes.items() if k != source}
        if clauses:
            brushes[source] = clauses
        self.brushes = brushes
        text = self.brush_query()
        if not text:
            self.brushed = None
            self.record("brush_query", source=source, query="", rows=None)
            return
        try:
            result = nasdb_query.run(text, self.db, dataset=self.dataset)
        except NasdbError as e:
            self.notice = f"⚠ the selection's query failed: {e}"
            self.brushes = {k: v for k, v in brushes.items() if k != source}
            return
        ids = [str(r["id"]) for r in result.rows]
        self.brushed = ids
        self.record("brush_query", source=source, query=text, rows=len(ids))

    def brush_box(self, x0: float, x1: float, y0: float, y1: float,
                  frame: pd.DataFrame | None = None, projection: str | None = None) -> None:
        """A box drawn on the overview: a params / accuracy range on the accuracy-vs-params
        projection (without a class focus), else the models inside it by id."""
        projection = projection or self.projection
        if projection == PROJECTIONS[0] and not self.class_focus:
            self.set_brush("overview", _brush.box_clause(x0, x1, y0, y1))
            return
        df = self.frame(projection) if frame is None else frame
        lo, hi = sorted((x0, x1))
        a, b = sorted((y0, y1))
        inside = df[(df["x"] >= lo) & (df["x"] <= hi) & (df["y"] >= a) & (df["y"] <= b)]
        self.set_brush("overview", _brush.ids_clause(inside["id"]))

    def brush_lasso(self, xs: list[float], ys: list[float], frame: pd.DataFrame | None = None,
                    projection: str | None = None) -> None:
        """A lasso drawn on the overview: the models inside it, by id."""
        df = self.frame(projection) if frame is None else frame
        df = df.dropna(subset=["x", "y"])
        inside = _brush.inside_polygon(df["x"].to_numpy(float), df["y"].to_numpy(float),
                                       list(zip(xs, ys, strict=True)))
        self.set_brush("overview", _brush.ids_clause(df.loc[inside, "id"]))

    def show_brush_query(self) -> str:
        """Put the brushes' query into the console (to edit or run there); returns it."""
        text = self.brush_query()
        self.console_text = ""
        self.console_text = text
        self.record("brush_to_console", query=text)
        return text

    # --- selection and the drawer --------------------------------------------------------------

    def select(self, model_id: str | None, source: str = "overview") -> None:
        if model_id == self.selected:
            return
        self.selected = model_id
        if model_id:
            self.record("select", model=model_id, source=source)

    def pin(self, model_id: str, pinned: bool = True) -> None:
        """Pin (or unpin) a model: appends Pinned / Unpinned, then reloads."""
        try:
            steer.pin(self.store, model_id, pinned)
        except NasdbError as e:
            self.notice = str(e)
            return
        self.notice = f"{'pinned' if pinned else 'unpinned'} {model_id}"
        if not pinned and model_id in self.compare:
            self.compare = [m for m in self.compare if m != model_id]
        self.refresh()

    def tag(self, model_id: str, tag: str, remove: bool = False) -> bool:
        """Tag (or untag) a model as this session's actor: appends Tagged / Untagged."""
        tag = tag.strip()
        if not tag or any(c.isspace() for c in tag):
            self.notice = "⚠ a tag is one word (e.g. baseline)"
            return False
        try:
            steer.tag(self.store, model_id, tag, remove, metadata=self.metadata)
        except NasdbError as e:
            self.notice = f"⚠ {e}"
            return False
        self.notice = f"{'untagged' if remove else 'tagged'} {model_id} {tag}"
        self.record("untag" if remove else "tag", model=model_id, tag=tag)
        self.refresh()
        return True

    def note(self, model_id: str, text: str) -> bool:
        """Add a note to a model as this session's actor: appends Noted."""
        text = text.strip()
        if not text:
            self.notice = "⚠ write the note first"
            return False
        try:
            steer.note(self.store, model_id, text, metadata=self.metadata)
        except NasdbError as e:
            self.notice = f"⚠ {e}"
            return False
        self.notice = f"noted {model_id}"
        self.record("note", model=model_id)
        self.refresh()
        return True

    def notes(self, model_id: str | None) -> pd.DataFrame:
        """The model's notes, oldest first: text, actor, recorded_at."""
        return frames.notes(self.db, model_id) if model_id else pd.DataFrame(
            columns=["text", "actor", "recorded_at"])

    def pinned(self) -> pd.DataFrame:
        if self.models is None:
            return pd.DataFrame()
        return self.models[self.models["pinned"]]

    def toggle_compare(self, model_id: str) -> None:
        if model_id in self.compare:
            self.compare = [m for m in self.compare if m != model_id]
        else:
            self.compare = [*self.compare, model_id]
        self.record("compare", models=list(self.compare))

    def model(self, model_id: str | None) -> dict[str, Any] | None:
        return frames.model_row(self.db, model_id) if model_id else None


def lag_text(status: dict[str, int]) -> str:
    """``projected 120 of 124 (lag 4) · 1 event not applied`` (the parts that are not zero)."""
    text = f"projected {status['projected_to']:,} of {status['last_position']:,}"
    if status["lag"]:
        text += f" (lag {status['lag']:,})"
    if status["failures"]:
        text += (f" · {status['failures']:,} event{'s' if status['failures'] > 1 else ''} "
                 "not applied (nasdb status)")
    return text
