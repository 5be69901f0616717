"""Class comparison (AutoCl Fig. 1B): a bump chart of model ranks per class."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from ._analysis_state import ClassesState
from ._util import bind


def circle_size(values: pd.Series) -> pd.Series:
    """Screen size of a bump-chart circle: 14 px at 0 up to 38 px at 1, wide enough for its label
    at the values that matter."""
    return 14 + 24 * values.astype(float).clip(0, 1)


def value_labels(values: pd.Series) -> pd.Series:
    """The value printed in each circle: 0.934 -> ".93", 1.0 -> "1"."""
    return values.astype(float).map(lambda v: "1" if v >= 0.995 else f"{v:.2f}".lstrip("0"))


class ClassesView(pn.viewable.Viewer):
    def __init__(self, state: ClassesState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state

    def _chart(self, metric: str, which: str, top: int, bold: str | None, revision: int,
               highlighted: list[str]) -> pn.viewable.Viewable:
        df = self.state.ranks()
        if df.empty:
            return pn.pane.Markdown("*No per-class metrics for these models yet.*")
        layers: list[Any] = []
        for mid, g in df.groupby("model_id"):
            is_bold = mid == bold
            layers.append(hv.Curve(g, "class_name", "rank", label=str(mid)).opts(
                line_width=5 if is_bold else 1.5, alpha=1.0 if is_bold or not bold else 0.35,
                color="#222" if is_bold else "#9aa5b1"))
        # AutoCl: each circle is sized by its value and prints it (two digits, without the 0.)
        df = df.assign(size=circle_size(df["value"]), label=value_labels(df["value"]))
        circles = hv.Points(df, ["class_name", "rank"], ["value", "size", "model_id"]).opts(
            color="value", cmap="RdYlGn", size="size", line_color="white", tools=["hover", "tap"],
            colorbar=True, clabel=metric, clim=(float(df["value"].min()), float(df["value"].max())))
        values = hv.Labels(df, ["class_name", "rank"], "label").opts(
            text_font_size="8pt", text_color="#111", text_font_style="bold")
        tap = hv.streams.Tap(source=circles, x=None, y=None)

        def tapped(x: Any = None, y: Any = None) -> None:
            if x is None or y is None:
                return
            near = df[df["class_name"] == x] if isinstance(x, str) else df
            if near.empty:
                near = df
            row = near.iloc[(near["rank"] - float(y)).abs().argsort().iloc[0]]
            self.state.bold = None if row["model_id"] == self.state.bold else str(row["model_id"])

        tap.add_subscriber(tapped)
        chart = hv.Overlay([*layers, circles, values]).opts(
            invert_yaxis=True, responsive=True, min_height=480, show_legend=False,
            title=f"Rank of each model per class by {metric} (1 = best; click a circle to bold "
                  "its model)", ylabel="rank", xlabel="class")
        return pn.pane.HoloViews(chart, sizing_mode="stretch_width", min_height=500)

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        models = bind(lambda *_: s.model_ids(), s.param.which, s.param.top,
                         s.app.param.revision, s.app.param.highlighted)
        bold = pn.widgets.Select(name="bold model", options=models, width=160)
        bold.link(s, value="bold")
        return pn.Column(
            "### Class comparison",
            pn.Row(pn.widgets.RadioButtonGroup.from_param(s.param.metric, button_type="primary",
                                                          button_style="outline"),
                   pn.widgets.Select.from_param(s.param.which, name="models", width=160),
                   pn.widgets.IntSlider.from_param(s.param.top, name="how many", width=160),
                   bold),
            pn.param.ParamFunction(
                bind(self._chart, s.param.metric, s.param.which, s.param.top, s.param.bold,
                        s.app.param.revision, s.app.param.highlighted),
                lazy=True, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
