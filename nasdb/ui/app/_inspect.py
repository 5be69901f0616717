"""Model inspection (REMAP Fig. 2a): confusion matrix, learning curves, per-class bars, glyph."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from nasdb.read import get_dataset
from nasdb.schema.errors import NasdbError

from ._analysis_state import InspectState
from ._glyph import legend_html, snac_html
from ._util import bind


def _hide_inner_labels(plot: Any, element: Any) -> None:
    """Grouped bars: keep the class names, drop the repeated metric names under each bar."""
    axis = plot.state.xaxis[0]
    axis.major_label_text_font_size = "0pt"
    axis.subgroup_text_font_size = "0pt"


class InspectView(pn.viewable.Viewer):
    def __init__(self, state: InspectState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state

    def _header(self, selected: str | None, revision: int) -> pn.viewable.Viewable:
        row = self.state.app.model(selected)
        if row is None:
            return pn.pane.Markdown("### Inspect\nSelect a model in the overview, a query result "
                                    "or the drawer to inspect it.")
        try:
            ds = get_dataset(self.state.app.db, row["dataset_id"])
            strip = snac_html(row["architecture"], ds.input_shape, ds.num_classes, scale=1.4)
        except NasdbError:
            strip = snac_html(row["architecture"], scale=1.4)
        return pn.Column(
            pn.pane.Markdown(f"### Inspect {row['id']} <code>{row['glyph']}</code> "
                             f"— {row['status']}, {row['epochs_trained']} epochs"),
            pn.pane.HTML(f"<div class='inspect-glyph'>{strip}</div>"),
            pn.pane.HTML(legend_html()), sizing_mode="stretch_width")

    def _confusion(self, selected: str | None, revision: int) -> pn.viewable.Viewable:
        found = self.state.confusion(selected)
        if found is None:
            return pn.pane.Markdown("*No confusion matrix yet — the model has not finished "
                                    "training.*", css_classes=["no-confusion"])
        names, matrix = found
        rows = [(names[j], names[i], float(matrix[i, j])) for i in range(len(names))
                for j in range(len(names))]
        df = pd.DataFrame(rows, columns=["predicted", "true", "count"])
        heat = hv.HeatMap(df, ["predicted", "true"], "count").opts(
            cmap="Blues", colorbar=True, tools=["hover"], invert_yaxis=True, xrotation=45,
            title="Confusion matrix (rows: true class)", responsive=True, min_height=360,
            clim=(0, max(1.0, float(matrix.max()))))
        dark = df["count"] > matrix.max() / 2
        labels = (hv.Labels(df[~dark], ["predicted", "true"], "count").opts(
                      text_font_size="8pt", text_color="#333")
                  * hv.Labels(df[dark], ["predicted", "true"], "count").opts(
                      text_font_size="8pt", text_color="white"))
        empty = [names[i] for i in range(len(names)) if matrix[i].sum() == 0]
        note = (f"⚠ no test images recorded for class(es) {', '.join(empty)} — their rows are all "
                "zeros" if empty else "")
        return pn.Column(pn.pane.HoloViews(heat * labels, sizing_mode="stretch_width",
                                           min_height=380, css_classes=["confusion-matrix"]),
                         pn.pane.Markdown(note, styles={"color": "#b00020"}),
                         sizing_mode="stretch_width")

    def _curves(self, selected: str | None, revision: int, smooth: bool, window: int
                ) -> pn.viewable.Viewable:
        df = self.state.curves(selected)
        if df.empty:
            return pn.pane.Markdown("*No epochs yet.*")
        loss = (hv.Curve(df, "epoch", "train_loss", label="train").opts(color="#1f77b4")
                * hv.Curve(df, "epoch", "val_loss", label="validation").opts(color="#ff7f0e")
                ).opts(title="Loss" + (" (moving average)" if smooth else ""), ylabel="loss",
                       responsive=True, min_height=260, legend_position="top_right")
        acc = (hv.Curve(df, "epoch", "train_acc", label="train").opts(color="#1f77b4")
               * hv.Curve(df, "epoch", "val_acc", label="validation").opts(color="#ff7f0e")
               ).opts(title="Accuracy" + (" (moving average)" if smooth else ""),
                      ylabel="accuracy", responsive=True, min_height=260,
                      legend_position="bottom_right")
        return pn.Row(pn.pane.HoloViews(loss, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(acc, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")

    def _bars(self, selected: str | None, revision: int) -> pn.viewable.Viewable:
        df = self.state.class_bars(selected)
        if df.empty:
            return pn.pane.Markdown("*No per-class metrics yet.*")
        long = df.melt(id_vars=["class_name"], value_vars=["accuracy", "precision", "recall",
                                                              "specificity"],
                       var_name="metric", value_name="value")
        bars = hv.Bars(long, ["class_name", "metric"], "value").opts(
            title="Per-class metrics", responsive=True, min_height=300, tools=["hover"],
            ylim=(0, 1.05), xlabel="class", multi_level=True, cmap="Category10",
            color="metric", xrotation=0, show_legend=True, legend_position="bottom",
            hooks=[_hide_inner_labels])
        return pn.pane.HoloViews(bars, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        s, app = self.state, self.state.app
        controls = pn.Row(pn.widgets.Checkbox.from_param(s.param.smooth, name="moving average"),
                          pn.widgets.IntSlider.from_param(s.param.window, name="window", width=160))
        return pn.Column(
            pn.param.ParamFunction(bind(self._header, app.param.selected, app.param.revision),
                                   lazy=True),
            pn.Row(
                pn.param.ParamFunction(bind(self._confusion, app.param.selected, app.param.revision),
                                       lazy=True, sizing_mode="stretch_width"),
                pn.param.ParamFunction(bind(self._bars, app.param.selected, app.param.revision),
                                       lazy=True, sizing_mode="stretch_width"),
                sizing_mode="stretch_width"),
            controls,
            pn.param.ParamFunction(
                bind(self._curves, app.param.selected, app.param.revision, s.param.smooth,
                        s.param.window),
                lazy=True, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
