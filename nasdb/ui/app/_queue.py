"""The training queue: live job states, reorder and cancel; workers and their heartbeats."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from ._steer_state import QueueState
from ._util import action, bind


class QueueView(pn.viewable.Viewer):
    def __init__(self, state: QueueState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._jobs = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                          selectable=1, height=360, sizing_mode="stretch_width",
                                          layout="fit_data_stretch", name="jobs",
                                          pagination="local", page_size=100,
                                          css_classes=["jobs-table"])
        self._jobs.on_click(self._clicked)
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
        self._highlight()
        self._workers.value = self.state.workers()

    def _highlight(self) -> None:
        """Highlight the selected job's row wherever the reload put it (a reorder moves it; the
        table's selection is by row index, so it would stay on the old row)."""
        value = self._jobs.value
        job = self.state.selected_job
        rows = [] if value is None or value.empty or not job else \
            [int(i) for i in (value["model_id"] == job).to_numpy().nonzero()[0]]
        if list(self._jobs.selection) != rows:
            self._jobs.selection = rows

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
