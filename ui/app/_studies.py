"""Study views (HyperTendril): best so far, exploration history, parallel coordinates with
brushing, importance, trade-off, and refining the space to launch the next run."""

from __future__ import annotations

import json
from typing import Any, cast

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from nasdb.schema.errors import NasdbError

from ._analysis_state import StudiesState
from ._util import bind


class StudiesView(pn.viewable.Viewer):
    def __init__(self, state: StudiesState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._space = pn.widgets.TextAreaInput(name="search space (JSON)", height=140,
                                               sizing_mode="stretch_width")
        self._launch = pn.widgets.Button(name="Refine & launch next run", button_type="success")
        self._launch.on_click(self._do_launch)
        self._msg = pn.pane.Markdown("")
        state.param.watch(self._study_changed, ["study"])
        self._study_changed()

    def _study_changed(self, *_: Any) -> None:
        st = self.state._studies
        row = st[st["id"] == self.state.study] if len(st) else st
        self._space.value = json.dumps(row["space"].iloc[0], indent=1) if len(row) else ""
        self._launch.disabled = not len(row)

    def _do_launch(self, _: Any) -> None:
        try:
            space = json.loads(self._space.value or "{}")
            nid = self.state.launch_refined(space, note="refined in the web UI")
        except (json.JSONDecodeError, NasdbError) as e:
            self._msg.object = f"⚠ {e}"
            return
        self._msg.object = f"launched study **{nid}**"

    def _brushes(self, study: str, revision: int) -> pn.viewable.Viewable:
        df = self.state.models()
        sliders = []
        for name in self.state.hyperparameter_names():
            values = pd.to_numeric(df[f"hp_{name}"], errors="coerce").dropna()
            if values.empty or values.nunique() < 2:
                continue
            lo, hi = float(values.min()), float(values.max())
            s = pn.widgets.RangeSlider(name=name, start=lo, end=hi, value=(lo, hi),
                                       step=(hi - lo) / 100, width=200)

            def changed(e: Any, name: str = name, lo: float = lo, hi: float = hi) -> None:
                brush = dict(self.state.brush)
                if e.new == (lo, hi):
                    brush.pop(name, None)
                else:
                    brush[name] = e.new
                self.state.brush = brush
                self.state.app.record("brush", study=self.state.study, ranges=brush)

            s.param.watch(changed, "value_throttled")
            sliders.append(s)
        if not sliders:
            return pn.pane.Markdown("*No numeric hyperparameter varies in this study.*")
        return pn.Column("**Brush** (filters every study view)", *sliders)

    def _plots(self, study: str, hyperparameter: str | None, tradeoff: str, brush: dict,
               show_importance: bool, revision: int) -> pn.viewable.Viewable:
        all_df = self.state.models()
        if all_df.empty:
            return pn.pane.Markdown("*No models in this study yet.*")
        df = self.state.brushed(all_df)
        done = df.dropna(subset=["acc"]).sort_values("iteration")
        best = done.assign(best=done["acc"].cummax())
        best_plot = (hv.Curve(best, "iteration", "best").opts(interpolation="steps-post",
                                                              color="#e4572e", line_width=2.5)
                     * hv.Scatter(done, "iteration", "acc").opts(color="#9aa5b1", size=4)
                     ).opts(title="Best so far", width=420, height=300,
                            ylabel="accuracy")
        plots: list[Any] = [best_plot]
        if hyperparameter and f"hp_{hyperparameter}" in df:
            col = f"hp_{hyperparameter}"
            hist = df.assign(value=df[col])
            pts = hv.Scatter(hist, "iteration", ["value", "acc", "id", "origin"]).opts(
                color="acc", cmap="viridis", size=7, colorbar=True, tools=["hover"])
            solid: list[Any] = []
            dashed: list[Any] = []
            by_id = hist.set_index("id")
            for _, r in hist[hist["parent_id"].notna()].iterrows():
                p = r["parent_id"]
                if p in by_id.index:
                    x0, y0 = float(cast(Any, by_id.at[p, "iteration"])), by_id.at[p, "value"]
                    x1, y1 = float(r["iteration"]), r["value"]
                    if isinstance(y0, int | float) and isinstance(y1, int | float):
                        xm = (x0 + x1) / 2
                        ts = np.linspace(0, 1, 12)
                        xs = (1 - ts) ** 2 * x0 + 2 * (1 - ts) * ts * xm + ts**2 * x1
                        ys = (1 - ts) ** 2 * y0 + 2 * (1 - ts) * ts * max(y0, y1) + ts**2 * y1
                        rung = r["origin"] in ("promotion", "hyperband")
                        (dashed if rung else solid).append(np.column_stack([xs, ys]))
            links = ([hv.Path(solid).opts(color="#888", alpha=0.5)] if solid else []) + (
                [hv.Path(dashed).opts(color="#888", alpha=0.7, line_dash="dashed")]
                if dashed else [])
            plots.append(hv.Overlay([*links, pts]).opts(
                title=f"Exploration history: {hyperparameter} (lines: parent → child)",
                width=420, height=300, ylabel=hyperparameter,
                logy=bool(hyperparameter == "lr"),
                xlim=(0, float(hist["iteration"].max()) + 1)))
        plots.append(self._parallel(all_df, df))
        plots.append(hv.Scatter(done.assign(x=done[tradeoff]), "x", ["acc", "id"]).opts(
            logx=tradeoff == "params", color="#3b6fb6", tools=["hover"], size=6,
            title=f"Trade-off: accuracy vs {tradeoff}", xlabel=tradeoff, responsive=True,
            min_height=280))
        plots.append(self._importance() if show_importance else pn.pane.Markdown(
            "*Tick “importance” to compute fANOVA hyperparameter importance.*"))
        return pn.GridBox(*[p if isinstance(p, pn.viewable.Viewable) else
                            pn.pane.HoloViews(p) for p in plots],
                          ncols=2, sizing_mode="stretch_width")

    def _parallel(self, all_df: pd.DataFrame, df: pd.DataFrame) -> Any:
        names = [n for n in self.state.hyperparameter_names()
                 if pd.api.types.is_numeric_dtype(all_df[f"hp_{n}"])]
        axes = [*names, "log_params", "acc"]
        if len(axes) < 2:
            return pn.pane.Markdown("*Parallel coordinates need numeric hyperparameters.*")
        lo = all_df[[f"hp_{n}" for n in names] + ["log_params", "acc"]].astype(float).min()
        hi = all_df[[f"hp_{n}" for n in names] + ["log_params", "acc"]].astype(float).max()
        keys = [f"hp_{n}" for n in names] + ["log_params", "acc"]
        values = df[keys].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        span = (hi[keys] - lo[keys]).replace(0, 1.0).to_numpy(dtype=float)
        normed = (values - lo[keys].to_numpy(dtype=float)) / span
        acc = np.nan_to_num(df["acc"].to_numpy(dtype=float), nan=0.0)
        # One Path per accuracy band, each an (x, y) array with NaN rows between lines: a few
        # glyphs instead of one per model keeps hundreds of lines fast to render.
        palette = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"]
        edges = np.linspace(float(acc.min(initial=0)), float(acc.max(initial=1)) + 1e-9,
                            len(palette) + 1)
        xs = np.append(np.arange(len(axes), dtype=float), np.nan)
        layers: list[Any] = []
        for band, colour in enumerate(palette):
            rows = normed[(acc >= edges[band]) & (acc < edges[band + 1])]
            if not len(rows):
                continue
            ys = np.column_stack([rows, np.full(len(rows), np.nan)]).ravel()
            layers.append(hv.Path([np.column_stack([np.tile(xs, len(rows)), ys])]).opts(
                color=colour, alpha=0.6, line_width=1.5))
        ticks = list(enumerate(axes))
        return hv.Overlay(layers).opts(
            xticks=ticks, xlim=(-0.2, len(axes) - 0.8), ylim=(-0.05, 1.05),
            title=f"Parallel coordinates ({len(df)} of {len(all_df)} brushed in)",
            width=420, height=300, ylabel="normalised", xlabel="")

    def _importance(self) -> Any:
        imp = self.state.importance()
        if imp.empty:
            return pn.pane.Markdown("*Importance appears once at least 8 models with varying "
                                    "hyperparameters have finished.*")
        bars = hv.Bars(imp.rename_axis("hyperparameter").reset_index(name="importance"),
                       "hyperparameter", "importance").opts(
            title="Hyperparameter importance (fANOVA)", width=420, height=300,
            color="#3b6fb6", tools=["hover"])
        pair = self.state.pairwise()
        if pair is not None and {"a", "b", "importance"} <= set(pair.columns):
            heat = hv.HeatMap(pair, ["a", "b"], "importance").opts(
                cmap="Blues", title="Pairwise importance", width=420, height=300)
            return hv.Layout([bars, heat]).cols(2)
        return bars

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column(
            "### Studies",
            pn.Row(pn.widgets.Select.from_param(s.param.study, width=200),
                   pn.widgets.Select.from_param(s.param.hyperparameter, width=200),
                   pn.widgets.Checkbox.from_param(s.param.show_importance, name="importance"),
                   pn.widgets.RadioButtonGroup.from_param(s.param.tradeoff, button_type="primary",
                                                          button_style="outline")),
            pn.Row(pn.param.ParamFunction(bind(self._brushes, s.param.study,
                                                  s.app.param.revision), lazy=True, width=240),
                   pn.param.ParamFunction(
                       bind(self._plots, s.param.study, s.param.hyperparameter,
                               s.param.tradeoff, s.param.brush, s.param.show_importance,
                               s.app.param.revision),
                       lazy=True, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            "#### Refine the search space and launch the next run",
            self._space, pn.Row(self._launch, self._msg),
            sizing_mode="stretch_width",
        )
