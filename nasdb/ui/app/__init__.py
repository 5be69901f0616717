"""nasdb.ui.app: the Panel / HoloViews web app (``nasdb ui``).

State lives in `param.Parameterized` classes (`AppState` and one per view) that tests drive
without a browser; the views only lay out widgets and plots over them.
"""

from __future__ import annotations

from nasdb.ui.app._analysis_state import ClassesState, InspectState, TimelineState
from nasdb.ui.app._projection import LandmarkLayout, classical_mds
from nasdb.ui.app._recommend_state import RecommendState
from nasdb.ui.app._server import TABS, App, Server, build_app, serve
from nasdb.ui.app._state import PROJECTIONS, AppState, Layouts, new_session_id
from nasdb.ui.app._steer_state import GenerateState, QueueState
from nasdb.ui.app._studies_state import StudiesState

__all__ = [
    "PROJECTIONS",
    "TABS",
    "App",
    "AppState",
    "ClassesState",
    "GenerateState",
    "InspectState",
    "LandmarkLayout",
    "Layouts",
    "QueueState",
    "RecommendState",
    "Server",
    "StudiesState",
    "TimelineState",
    "build_app",
    "classical_mds",
    "new_session_id",
    "serve",
]
