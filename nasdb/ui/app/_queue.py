"""The training queue: live job states, reorder and cancel; workers and their heartbeats."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from ._steer_state import QueueState
from ._util import action, bind

#: The cell style of the selected job's row.
SELECTED_ROW = "background-color: #fde68a; font-weight: 600"


class QueueView(pn.viewable.Viewer):
    def __init__(self, state: QueueState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        # The selected job is highlighted by a cell style computed with the data, not by the
        # table's own row selection: the style travels in the same message as the rows and is
        # drawn after them, while a selection (by row position) raced the redraw of a reorder
        # and was left on another job's row or dropped.
        styled = pd.DataFrame().style.apply(self._row_style, axis=1)
        self._jobs = pn.widgets.Tabulator(styled, disabled=True, show_index=False,
                                          selectable=False, height=360,
                                          sizing_mode="stretch_width",
                                          layout="fit_data_stretch", name="jobs",
                                          pagination="local", page_size=100,
                                          # every row of the page in the page, not only the
                                          # visible ones: a moved job's row is always drawn
                                          configuration={"renderVertical": "basic"},
                                          css_classes=["jobs-table"])
        self._jobs.on_click(self._clicked)
        state.param.watch(lambda _: self._jobs.param.trigger("value"), ["selected_job"])
        self._workers = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                             height=160, sizing_mode="stretch_width",
                                             layout="fit_data_stretch", name="workers")
        state.app.param.watch(self._reload, ["revision"])
        self._reload()

    def _reload(self, *_: Any) -> None:
        jobs = self.state.jobs()
        if not jobs.empty:
            jobs["acc"] = jobs["acc"].astype(float).round(4)
            jobs["val_acc"] = jobs["val_acc"].astype(float).round(4)
            jobs["progress"] = [f"{e or 0}/{p or '?'}" for e, p in
                                zip(jobs["epochs_trained"], jobs["epochs_planned"], strict=True)]
            jobs = jobs[["model_id", "state", "priority", "worker", "progress", "val_acc", "acc",
                         "glyph",
                         "params", "attempt", "heartbeat_at", "queued_at"]]
        self._jobs.value = jobs
        self._workers.value = self.state.workers()

    def _row_style(self, row: pd.Series) -> list[str]:
        """The selected job's row is highlighted wherever a reload puts it."""
        job = self.state.selected_job
        chosen = job is not None and row.get("model_id") == job
        return [SELECTED_ROW if chosen else ""] * len(row)

    def _clicked(self, event: Any) -> None:
        value = self._jobs.value
        if event.row is not None and event.row < len(value):
            self.state.selected_job = str(value["model_id"].iloc[event.row])

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        buttons = []
        actions: list[tuple[str, Any]] = [
            ("⤒ Top", action(lambda: s.move("top"))),
            ("▲ Up", action(lambda: s.move("up"))),
            ("▼ Down", action(lambda: s.move("down"))),
            ("✕ Cancel", action(lambda: s.cancel()))]
        for label, fn in actions:
            b = pn.widgets.Button(name=label, button_type="danger" if "Cancel" in label
                                  else "default", width=90)
            b.on_click(fn)
            buttons.append(b)
        return pn.Column(
            "### Training queue",
            pn.Row(pn.pane.Markdown(bind(lambda m: f"selected job: **{m or '—'}**",
                                            s.param.selected_job), width=200,
                                    css_classes=["queue-selected"]), *buttons),
            pn.pane.Markdown(s.param.message, css_classes=["queue-message"]),
            self._jobs,
            "### Workers (heartbeat = seconds since last seen)",
            self._workers,
            sizing_mode="stretch_width",
        )
