"""The query console bound to the overview: run a query, list its rows, highlight them."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn

from ._state import AppState
from ._util import bind

EXAMPLES = ("pareto params<100k", "top 10 by acc", "pinned", "origin=ablation sort acc desc",
            "count group by origin")
TABLE_COLUMNS = ("id", "glyph", "params", "acc", "test_acc", "best_val_acc", "origin", "status",
                 "count", "value")


class ConsoleView(pn.viewable.Viewer):
    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._input = pn.widgets.TextInput(
            value=state.query, placeholder="pareto params<100k class=bird   (Enter to run)",
            sizing_mode="stretch_width", name="", css_classes=["query-input"])
        self._run = pn.widgets.Button(name="Run", button_type="primary", width=80)
        self._input.param.watch(lambda e: self.state.run_query(self._input.value or ""), "enter_pressed")
        self._run.on_click(lambda e: self.state.run_query(self._input.value_input or
                                                          self._input.value or ""))
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, selectable=1, show_index=False, height=260,
            sizing_mode="stretch_width", layout="fit_data_stretch", name="query-result",
            pagination="local", page_size=50, css_classes=["query-table"])
        self._table.on_click(self._clicked)
        # the table joins the page with the first result (no empty table above the overview)
        self._slot = pn.Column(sizing_mode="stretch_width")
        state.param.watch(self._update_table, ["result"])
        state.param.watch(self._put_text, ["console_text"])
        self._update_table()

    def _put_text(self, event: Any) -> None:
        """A selection shown as its query: into the input, to edit or run (Enter)."""
        if event.new:
            self._input.param.update(value=event.new, value_input=event.new)

    def _update_table(self, *_: Any) -> None:
        rows = self.state.result
        if rows is None:
            self._table.value = pd.DataFrame()
            self._slot.objects = []
            return
        cols = [c for c in rows.columns if c in TABLE_COLUMNS] or list(rows.columns)[:8]
        view = rows[cols].copy()
        for c in ("acc", "test_acc", "best_val_acc"):
            if c in view:
                view[c] = view[c].astype(float).round(4)
        self._table.value = view
        if not self._slot.objects:
            self._slot.objects = [self._table]

    def _clicked(self, event: Any) -> None:
        value = self._table.value
        if value is None or "id" not in value or event.row is None or event.row >= len(value):
            return
        self.state.select(str(value["id"].iloc[event.row]), source="query table")

    def _status(self, query_error: str, query_description: str, result: Any) -> pn.viewable.Viewable:
        if query_error:
            return pn.pane.HTML(
                f"<pre class='query-error' style='color:#b00020;background:#fff3f3;padding:8px;"
                f"border-radius:4px;margin:0;font-size:13px'>{html.escape(query_error)}</pre>",
                sizing_mode="stretch_width")
        if result is None:
            examples = " · ".join(f"`{e}`" for e in EXAMPLES)
            return pn.pane.Markdown(f"Try {examples}", styles={"color": "#555"})
        n = len(result)
        return pn.pane.Markdown(
            f"<span class='query-status'>{n} row{'s' if n != 1 else ''}</span> — "
            f"{html.escape(query_description)}", styles={"color": "#333"})

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column(
            pn.Row(self._input, self._run, sizing_mode="stretch_width"),
            pn.panel(bind(self._status, s.param.query_error, s.param.query_description,
                             s.param.result), sizing_mode="stretch_width"),
            self._slot,
            sizing_mode="stretch_width",
        )
