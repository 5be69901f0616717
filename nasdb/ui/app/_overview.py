"""The model overview (REMAP Fig. 1A): accuracy vs log(params) with the Pareto front, or a
structural / prediction-distance layout; datashader beyond `AppState.large_threshold` points."""

from __future__ import annotations

import html
from typing import Any

import datashader as ds
import holoviews as hv
import pandas as pd
import panel as pn
from bokeh.models import CustomJSTickFormatter
from holoviews.operation.datashader import dynspread, rasterize

from ._state import PROJECTIONS, AppState
from ._util import bind

LOG_TICKS = CustomJSTickFormatter(code="""
    const v = Math.pow(10, tick);
    if (v >= 1e9) return (v / 1e9).toFixed(v >= 1e10 ? 0 : 1) + 'G';
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + 'k';
    return v.toFixed(0);
""")

HOVER = [("model", "@id"), ("glyph", "@glyph"), ("params", "@params{0,0}"),
         ("acc", "@acc{0.000}"), ("origin", "@origin"), ("status", "@status")]
VDIMS = ["color", "size", "id", "glyph", "params", "acc", "origin", "status"]
HOVER_DIMS = ["id", "glyph", "params", "acc", "origin", "status"]
#: How near (a fraction of the data's extent on each axis) the mouse must be to name a model.
HOVER_RADIUS = 0.01
#: How each kind of mark is drawn: colour, marker, size, fill alpha (a query result is a ring).
MARKS = {"on the front": ("#e4572e", "diamond", 7, 1.0),
         "query result": ("#ff7f0e", "circle", 16, 0.0),
         "selected": ("#111111", "star", 18, 1.0)}


class OverviewView(pn.viewable.Viewer):
    """The scatter, bound to `AppState`; a tap selects the nearest model."""

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._frame: pd.DataFrame | None = None
        self._under = pn.pane.HTML("", height=24, margin=(0, 10), sizing_mode="stretch_width")

    # --- elements --------------------------------------------------------------------------

    def _axes(self) -> dict[str, Any]:
        s = self.state
        if s.projection == PROJECTIONS[0]:
            ylabel = (("accuracy on " + ", ".join(s.class_focus)) if s.class_focus
                      else "test accuracy")
            return {"xlabel": "parameters (log scale)", "ylabel": ylabel, "xformatter": LOG_TICKS}
        return {"xlabel": f"MDS 1 ({s.projection})", "ylabel": "MDS 2"}

    def _current(self) -> pd.DataFrame:
        self._frame = self.state.frame()
        return self._frame

    def _points(self, revision: int, projection: str) -> hv.Points:
        df = self._current()
        if self.state.large:  # datashader needs only the position and the colour value
            pts = hv.Points(df[["x", "y", "color"]], kdims=["x", "y"], vdims=["color"])
        else:
            pts = hv.Points(df, kdims=["x", "y"], vdims=VDIMS)
        return pts

    def _decorations(self, revision: int, projection: str, highlighted: list[str],
                     selected: str | None) -> hv.Overlay:
        """The front line and one layer of marks (front members, query result, selection): a
        single glyph renderer keeps the page quick to build."""
        df = self._frame if self._frame is not None else self._current()
        front = df[df["pareto"]].sort_values("x") if len(df) else df
        parts = [front.assign(kind="on the front"),
                 df[df["id"].isin(highlighted)].assign(kind="query result"),
                 df[df["id"] == selected].assign(kind="selected") if selected and len(df)
                 else df.iloc[0:0]]
        marks = pd.concat([p for p in parts if len(p)] or [df.iloc[0:0].assign(kind="")],
                          ignore_index=True)
        kind = hv.dim("kind")
        marks = marks.rename(columns={"color": "value"})  # `color` names the mark style here
        # the dimension lists every kind, so the colour mapper knows them before they first appear
        kinds = hv.Dimension("kind", values=list(MARKS))
        points = hv.Points(marks, ["x", "y"], [*HOVER_DIMS, kinds]).opts(
            color="kind", cmap={k: m[0] for k, m in MARKS.items()},
            marker=kind.categorize({k: m[1] for k, m in MARKS.items()}, default="circle"),
            size=kind.categorize({k: m[2] for k, m in MARKS.items()}, default=8),
            fill_alpha=kind.categorize({k: m[3] for k, m in MARKS.items()}, default=1.0),
            line_width=2, show_legend=True, tools=["hover"], hover_tooltips=HOVER)
        layers: list[Any] = []
        if projection == PROJECTIONS[0] and len(front):
            layers.append(hv.Curve(front, "x", "y", label="Pareto front").opts(
                interpolation="steps-post", color="#e4572e", line_width=2, line_dash="dashed"))
        return hv.Overlay([*layers, points])

    def _plot(self, large: bool, projection: str, class_focus: list[str]) -> pn.pane.HoloViews:
        """The plot, rebuilt when the mode (points / datashader), the projection or the focus
        change: its axes (labels, log ticks) are set on the overlay, where a raster keeps them."""
        s = self.state
        base = hv.DynamicMap(bind(self._points, revision=s.param.revision,
                                     projection=s.param.projection))
        if large:
            # spread isolated pixels with the neighbours' max, not their sum ('add', the
            # default for aggregates): a pixel's colour stays an accuracy
            shown: Any = dynspread(
                rasterize(base, aggregator=ds.mean("color"), width=700, height=440),
                threshold=0.6, max_px=3, how="max",
            ).opts(cmap="Blues", colorbar=True, clabel="accuracy", cnorm="linear")
        else:
            shown = base.opts(color="color", cmap="Blues", size="size", line_color="#2b4b7a",
                              line_width=0.5, alpha=0.85, colorbar=True, clabel="accuracy",
                              tools=["hover", "tap"], hover_tooltips=HOVER)
        tap = hv.streams.Tap(source=shown, x=None, y=None)
        tap.add_subscriber(self._tapped)
        if large:  # the raster has no per-model hover: the server names the model under the mouse
            pointer = hv.streams.PointerXY(source=shown, x=None, y=None)
            pointer.add_subscriber(self._pointed)
        deco = hv.DynamicMap(bind(self._decorations, revision=s.param.revision,
                                     projection=s.param.projection,
                                     highlighted=s.param.highlighted, selected=s.param.selected))
        overlay = (shown * deco).opts(
            hv.opts.Overlay(responsive=True, min_height=440, show_grid=True,
                            legend_position="bottom_right", title="", toolbar="above",
                            active_tools=["wheel_zoom"], **self._axes()))
        return pn.pane.HoloViews(overlay, sizing_mode="stretch_both", min_height=460,
                                 name="overview-plot")

    def _tapped(self, x: float | None = None, y: float | None = None) -> None:
        if x is None or y is None:
            return
        model = self.state.nearest(x, y, self._frame)
        if model:
            self.state.select(model, source="overview")

    def _pointed(self, x: float | None = None, y: float | None = None) -> None:
        row = None if x is None or y is None else self.state.nearest_row(
            x, y, self._frame, within=HOVER_RADIUS)
        self._under.object = "" if row is None else _describe(row)

    def _caption(self, revision: int, projection: str, class_focus: list[str]) -> str:
        df = self.state.models
        n = 0 if df is None else len(df)
        trained = 0 if df is None else int(df["acc"].notna().sum())
        shown = len(self._frame) if self._frame is not None else 0
        extra = ""
        if projection != PROJECTIONS[0] and shown < trained:
            extra = f" — {shown} of them placed in this layout"
        mode = " · rasterised with datashader" if self.state.large else ""
        colour = f"accuracy on {', '.join(class_focus)}" if class_focus else "test accuracy"
        return (f"**{n:,} models** of {self.state.dataset}, {trained:,} trained{extra}{mode}. "
                f"Darker = higher {colour}; radius = log(params). Click a model to select it.")

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        controls = pn.Row(
            pn.widgets.Select.from_param(s.param.dataset, name="", width=160,
                                         css_classes=["dataset-select"]),
            pn.widgets.RadioButtonGroup.from_param(s.param.projection, button_type="primary",
                                                   button_style="outline", name=""),
            pn.widgets.MultiChoice.from_param(s.param.class_focus, name="",
                                              placeholder="colour by class…", width=260,
                                              max_items=5),
            align="center",
        )
        caption = pn.pane.Markdown(bind(self._caption, s.param.revision, s.param.projection,
                                           s.param.class_focus), margin=(0, 10))
        return pn.Column(controls, caption, pn.panel(bind(self._plot, large=s.param.large,
                                          projection=s.param.projection,
                                          class_focus=s.param.class_focus)),
                         self._under, sizing_mode="stretch_both", min_height=560)


def _describe(row: pd.Series) -> str:
    """The raster's hover line on one model: what the point tooltip shows."""
    acc = "—" if pd.isna(row["acc"]) else f"{float(row['acc']):.3f}"
    return (f"<span class='overview-hover'>under the mouse: <b>{html.escape(str(row['id']))}</b> "
            f"<code>{html.escape(str(row['glyph']))}</code> · {int(row['params']):,} params · "
            f"accuracy {acc} · {html.escape(str(row['origin']))} · "
            f"{html.escape(str(row['status']))}</span>")
