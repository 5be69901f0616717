"""The app: one page with navigation tabs, a drawer beside them, live polling; and `serve`."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

import holoviews as hv
import panel as pn
import param
import psycopg
from bokeh.document import Document
from panel.io.state import set_curdoc

from nasdb.ingest import EventStore, ProjectorService
from nasdb.schema.db import Database
from nasdb.schema.errors import NasdbError

from ._analysis_state import ClassesState, InspectState, TimelineState
from ._auth import Auth, allowed_origins, load_auth
from ._classes import ClassesView
from ._console import ConsoleView
from ._drawer import CompareView, DrawerView
from ._drivers import StudyDrivers
from ._generate import GenerateView
from ._inspect import InspectView
from ._overview import OverviewView, progress_line
from ._queue import QueueView
from ._recommend import RecommendView
from ._recommend_state import RecommendState
from ._sessions_view import SessionsState, SessionsView
from ._state import AppState, Layouts, ModelFrames
from ._status import build_status
from ._steer_state import GenerateState, QueueState
from ._studies import StudiesView
from ._studies_state import StudiesState
from ._timeline import TimelineView
from ._util import bind

log = logging.getLogger(__name__)

TABS = ("Overview", "Inspect", "Generate", "Queue", "Studies", "Classes", "Timeline", "Recommend",
        "Compare", "Sessions")
POLL_MS = 1500

_extensions_loaded = False


def _load_extensions() -> None:
    global _extensions_loaded
    if not _extensions_loaded:
        hv.extension("bokeh", logo=False)
        # Plain canvas: the plots draw at most a few thousand glyphs (datashader takes over
        # beyond that), where WebGL buys nothing and costs shader compilation and a blit per
        # frame (0.4 s of a 100k-model page load on a software-rendered browser).
        hv.renderer("bokeh").webgl = False
        pn.extension("tabulator", notifications=False, sizing_mode="stretch_width")
        _warm_datashader()
        _extensions_loaded = True


def _warm_datashader() -> None:
    """Rasterise and spread a two-point frame once, as the overview does, so that datashader's
    numba kernels are compiled when the server starts rather than during the first page load
    (the first load after a start measured 3.19 s against 1.47 s warm at 100,000 models)."""
    import datashader as ds
    import pandas as pd
    from holoviews.operation.datashader import dynspread, rasterize

    frame = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "color": [0.25, 0.75]})
    points = hv.Points(frame, kdims=["x", "y"], vdims=["color"])
    hv.render(dynspread(rasterize(points, aggregator=ds.mean("color"), width=16, height=16),
                        threshold=0.6, max_px=3, how="max"))


class App(pn.viewable.Viewer):
    """Every view of one session, wired to one `AppState`."""

    tab = param.Integer(default=0)

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._tabs: pn.Tabs | None = None
        self._slots: dict[str, pn.Column] = {}
        self._lost = False

    # Each tab's state is made the first time something asks for it (the tab opening, or a
    # test): a new session pays only for the overview, however many models the log holds.

    @cached_property
    def inspect(self) -> InspectState:
        return InspectState(self.state)

    @cached_property
    def generate(self) -> GenerateState:
        return GenerateState(self.state)

    @cached_property
    def queue(self) -> QueueState:
        return QueueState(self.state)

    @cached_property
    def classes(self) -> ClassesState:
        return ClassesState(self.state)

    @cached_property
    def timeline(self) -> TimelineState:
        return TimelineState(self.state)

    @cached_property
    def studies(self) -> StudiesState:
        return StudiesState(self.state)

    @cached_property
    def recommend(self) -> RecommendState:
        return RecommendState(self.state)

    @cached_property
    def sessions(self) -> SessionsState:
        return SessionsState(self.state)

    def _views(self) -> dict[str, Callable[[], pn.viewable.Viewer]]:
        """How to build each tab but the overview (called when the tab first opens)."""
        return {
            "Inspect": lambda: InspectView(self.inspect),
            "Generate": lambda: GenerateView(self.generate),
            "Queue": lambda: QueueView(self.queue),
            "Studies": lambda: StudiesView(self.studies),
            "Classes": lambda: ClassesView(self.classes),
            "Timeline": lambda: TimelineView(self.timeline),
            "Recommend": lambda: RecommendView(self.recommend),
            "Compare": lambda: CompareView(self.state),
            "Sessions": lambda: SessionsView(self.sessions),
        }

    def poll(self) -> None:
        """One live-update tick: catch up and refresh what changed (selection is kept).

        A database that went away (a restart) is said once on the page and retried every tick;
        its return is said too. The session and its selection survive.
        """
        try:
            self.state.refresh(wait=False)
        except (NasdbError, psycopg.OperationalError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            self.state.notice = f"⚠ lost the database ({reason}); retrying"
            self._lost = True
            return
        if self._lost:
            self._lost = False
            self.state.notice = "the database is back"

    def _tab_changed(self, event: Any) -> None:
        name = TABS[event.new] if event.new < len(TABS) else str(event.new)
        self.open(name)
        self.state.record("tab", tab=name)

    def open(self, name: str) -> None:
        """Build tab ``name``'s view into its slot if it is not built yet."""
        slot = self._slots.get(name)
        if slot is not None and not slot.objects:
            slot.objects = [self._views()[name]()]

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        overview = pn.Column(ConsoleView(s), OverviewView(s), sizing_mode="stretch_both")
        self._slots = {name: pn.Column(sizing_mode="stretch_both") for name in TABS[1:]}
        self._tabs = pn.Tabs(
            ("Overview", overview), *self._slots.items(),
            dynamic=True, sizing_mode="stretch_both", css_classes=["nav-tabs"],
        )
        self._tabs.param.watch(self._tab_changed, "active")
        header = pn.Row(
            pn.pane.HTML("<span style='font:600 20px sans-serif;color:white'>nasdb</span>"
                         "<span style='color:#c8d3e0;margin-left:12px'>neural architecture "
                         "search, event-sourced</span>"),
            pn.HSpacer(),
            pn.pane.HTML(bind(lambda p, r, lag: f"<span class='log-position' "
                                 f"style='color:#c8d3e0'>log position {p:,} · "
                                 f"<span class='projection-lag'>{lag}</span> · "
                                 f"session {s.session_id}</span>",
                                 s.param.position, s.param.revision, s.param.projection_lag)),
            styles={"background": "#1f3b5c", "padding": "6px 14px"}, sizing_mode="stretch_width",
        )
        drawer = pn.Column(DrawerView(s), width=340, styles={"border-left": "1px solid #ddd",
                                                             "padding-left": "8px"})
        return pn.Column(header, progress_line(s),
                         pn.Row(self._tabs, drawer, sizing_mode="stretch_both"),
                         sizing_mode="stretch_both")


def build_app(db: Database, *, layouts: Layouts | None = None, store: EventStore | None = None,
              frames: ModelFrames | None = None, drivers: StudyDrivers | None = None,
              poll_ms: int = POLL_MS, auth: Auth | None = None) -> pn.viewable.Viewable:
    """A new session's page (call once per browser session, inside a Panel server).

    With ``auth``, the session acts as the signed-in user (`pn.state.user`), as a viewer unless
    ``auth`` lets that user steer. Loading the page appends nothing.
    """
    _load_extensions()
    user = pn.state.user if auth is not None else None
    if auth is not None and not user:
        raise NasdbError("this session is not signed in")  # the auth provider prevents this
    state = AppState(db, store=store, layouts=layouts, frames=frames, drivers=drivers,
                     actor=user, may_steer=auth is None or auth.may_steer(user))
    app = App(state)
    page = app.__panel__()
    if poll_ms and pn.state.curdoc is not None:
        pn.state.add_periodic_callback(app.poll, period=poll_ms)
    page.app = app  # type: ignore[attr-defined]  # tests reach the state through the page
    return page


class Server:
    """A running app server (``stop()`` ends it). Returned by `serve` with ``threaded=True``."""

    def __init__(self, server: Any, port: int, host: str, drivers: StudyDrivers,
                 projector: ProjectorService) -> None:
        self._server = server
        self.port = port
        self.host = host
        self.drivers = drivers
        self.projector = projector

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        self._server.stop()
        self.drivers.stop()
        self.projector.stop()


def serve(db: Database, port: int = 5006, host: str = "127.0.0.1", show: bool = False,
          threaded: bool = False, *, poll_ms: int = POLL_MS) -> Server | None:
    """Serve the app on ``host:port``; blocks unless ``threaded`` (then returns a `Server`).

    Sign-in follows `_auth.load_auth`: required beyond loopback (`InvalidRequest` before anything
    listens when it is not configured), Panel's basic auth with ``NASDB_UI_AUTH_FILE``; websocket
    origins follow `_auth.allowed_origins`. ``/status`` is the phone-sized status page. One
    `Layouts` is shared by every session, so projected models keep their places for everyone, one
    `ModelFrames`, so sessions share the loaded models, and one `StudyDrivers` for the studies
    launched from the page. A `ProjectorService` thread keeps the read models following the log
    while the app runs.
    """
    auth = load_auth(host)
    _load_extensions()
    projector = ProjectorService(db).start()
    layouts = Layouts(db)
    frames = ModelFrames(db)
    drivers = StudyDrivers(db)
    store = EventStore(db=db)

    def page() -> pn.viewable.Viewable:
        return build_app(db, layouts=layouts, store=store, frames=frames, drivers=drivers,
                         poll_ms=poll_ms, auth=auth)

    _warm_page(lambda: build_app(db, layouts=layouts, store=store, frames=frames,
                                 drivers=drivers, poll_ms=0))

    def status() -> pn.viewable.Viewable:
        return build_status(db, poll_ms=poll_ms)

    signin: dict[str, Any] = {}
    if auth is not None:
        signin = {"basic_auth": str(auth.users_file), "cookie_secret": secrets.token_hex(32)}
    server = pn.serve({"/": page, "status": status}, port=port, address=host, show=show,
                      threaded=threaded, title="nasdb",
                      websocket_origin=allowed_origins(host, port), **signin)
    if threaded:
        assert isinstance(server, threading.Thread)
        _wait_listening(host, port)
        return Server(server, port, host, drivers, projector)
    drivers.stop()  # the server has stopped (Ctrl+C): studies stay running in the log
    projector.stop()
    return None


def _warm_page(make_page: Callable[[], pn.viewable.Viewable]) -> None:
    """Build one page into a throwaway document before the server listens, so that the first
    visitor does not pay for loading the shared model frame, placing the models and HoloViews'
    first render (`benchmarks/ui.py` reports the first load after a start beside the median).
    Building a page appends nothing; the document is discarded."""
    doc = Document()
    with set_curdoc(doc):
        make_page().server_doc(doc)
    doc.clear()


def _wait_listening(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise NasdbError(f"the web app did not start listening on {host}:{port} within {timeout:.0f} s")
