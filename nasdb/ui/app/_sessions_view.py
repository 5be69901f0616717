"""Sessions (HyperTendril's interaction analysis): per session the time in each view, the actions
in order on a timeline, the steering that reached the front; across sessions the kinds of steering
that paid off; CSV and JSON downloads. The analysis is `nasdb.ui.sessions` (pure, tested there);
this view only lays it out."""

from __future__ import annotations

import io
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
import param

from nasdb.ui import sessions as analysis

from ._state import AppState
from ._util import bind


class SessionsState(param.Parameterized):
    """The analysis of the log's sessions, recomputed on `refresh` (reads only)."""

    session: Any = param.Selector(default=None, objects=[], allow_None=True)
    revision = param.Integer(default=0)

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self.result = analysis.Analysis((), ())
        self.refresh()

    def refresh(self) -> None:
        actions, models = analysis.load(self.app.db)
        self.result = analysis.analyse(actions, models)
        ids = [r.session for r in self.result.sessions]
        self.param.session.objects = ids
        if self.session not in ids:
            self.session = ids[-1] if ids else None
        self.revision += 1

    def report(self) -> analysis.SessionReport | None:
        return next((r for r in self.result.sessions if r.session == self.session), None)

    def sessions_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "session": r.session, "actor": r.actor, "started": r.started.strftime(
                "%Y-%m-%d %H:%M:%S"), "seconds": round(r.seconds, 1), "actions": len(r.actions),
            "steering": len(r.steering), "paid_off": sum(s.paid_off for s in r.steering)}
            for r in self.result.sessions])

    def kinds_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "kind": k.kind, "actions": k.actions, "sessions": k.sessions, "models": k.models,
            "on_front": k.on_front, "paid_off": k.paid_off,
            "paid_off_share": round(k.paid_off_share, 3), "front_gain": k.front_gain}
            for k in self.result.kinds])


class SessionsView(pn.viewable.Viewer):
    def __init__(self, state: SessionsState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state

    def _session(self, session: str | None, revision: int) -> pn.viewable.Viewable:
        report = self.state.report()
        if report is None:
            return pn.pane.Markdown("*No session in the log yet.*")
        views = pd.DataFrame({"view": list(report.view_seconds),
                              "seconds": list(report.view_seconds.values())})
        bars: Any = (pn.pane.HoloViews(hv.Bars(views, "view", "seconds").opts(
            title="Time in each view (s)", responsive=True, height=240, color="#3b6fb6",
            tools=["hover"]), sizing_mode="stretch_width") if len(views)
            else pn.pane.Markdown("*No time in any view yet.*"))
        rows = pd.DataFrame(report.timeline())
        outcome = {s.position: s for s in report.steering}
        rows["on_front"] = [" ".join(outcome[a.position].on_front) if a.position in outcome
                            else "" for a in report.actions]
        rows["front_gain"] = [outcome[a.position].front_gain if a.position in outcome else None
                              for a in report.actions]
        timeline = hv.Scatter(rows, "offset_s", ["view", "action", "on_front"]).opts(
            color="view", cmap="Category10", size=9, tools=["hover"], responsive=True,
            height=240, title="Timeline: each action at its time, by view", xlabel="seconds",
            show_legend=True, legend_position="right")
        table = pn.widgets.Tabulator(rows, disabled=True, show_index=False, height=260,
                                     layout="fit_data_stretch", sizing_mode="stretch_width",
                                     css_classes=["session-actions"])
        head = (f"**{report.session}** · {report.actor or '?'} · "
                f"{report.started:%Y-%m-%d %H:%M:%S} · {report.seconds:.0f} s · "
                f"{len(report.actions)} actions · {len(report.steering)} steering, "
                f"{sum(s.paid_off for s in report.steering)} reached the front")
        return pn.Column(pn.pane.Markdown(head, css_classes=["session-head"]),
                         pn.Row(bars,
                                pn.pane.HoloViews(timeline, sizing_mode="stretch_width"),
                                sizing_mode="stretch_width"),
                         "#### Actions in order", table, sizing_mode="stretch_width")

    def _kinds(self, revision: int) -> pn.viewable.Viewable:
        kinds = self.state.kinds_frame()
        if kinds.empty:
            return pn.pane.Markdown("*No steering action yet.*")
        return pn.widgets.Tabulator(kinds, disabled=True, show_index=False,
                                    layout="fit_data_stretch", sizing_mode="stretch_width",
                                    css_classes=["session-kinds"])

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        refresh = pn.widgets.Button(name="Refresh", width=90, css_classes=["sessions-refresh"])
        refresh.on_click(lambda e: s.refresh())
        csv_download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(analysis.to_csv(s.result)), filename="sessions.csv",
            button_type="default", label="Download CSV", width=150,
            css_classes=["sessions-csv"])
        json_download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(analysis.to_json(s.result)), filename="sessions.json",
            button_type="default", label="Download JSON", width=150,
            css_classes=["sessions-json"])
        sessions = pn.widgets.Tabulator(s.sessions_frame(), disabled=True, show_index=False,
                                        height=200, layout="fit_data_stretch",
                                        sizing_mode="stretch_width",
                                        css_classes=["sessions-table"])
        s.param.watch(lambda e: setattr(sessions, "value", s.sessions_frame()), ["revision"])
        return pn.Column(
            "### Sessions — how people steered (HyperTendril)",
            pn.pane.Markdown(
                "A steering action *paid off* when one of its models is on the final front "
                "(accuracy vs params); *front gain* is the hypervolume the front would lose "
                "without its models (log10 params × accuracy).", styles={"color": "#555"}),
            pn.Row(refresh, csv_download, json_download),
            sessions,
            "#### Which kinds of steering paid off (all sessions)",
            pn.panel(bind(self._kinds, s.param.revision), sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(s.param.session, name="session", width=220,
                                         css_classes=["sessions-select"]),
            pn.panel(bind(self._session, s.param.session, s.param.revision),
                     sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
