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

#: Size options shared by the plots of the study grid: fill the cell's width, fixed height.
_CELL: dict[str, Any] = {"responsive": True, "height": 300}
#: At most this many polylines in the parallel-coordinates plot (a random sample beyond).
_MAX_LINES = 3000


def _fmt(value: Any) -> str:
    v = float(value)
    if not np.isfinite(v):
        return ""
    return f"{v:.3g}"


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
                     ).opts(title="Best so far", ylabel="accuracy", **_CELL)
        plots: list[Any] = [best_plot]
        if hyperparameter and f"hp_{hyperparameter}" in df:
            plots.append(self._history(df, hyperparameter))
        plots.append(self._parallel(all_df, df))
        plots.append(hv.Scatter(done, tradeoff, ["acc", "id"]).opts(
            logx=tradeoff == "params", color="#3b6fb6", tools=["hover"], size=6,
            title=f"Trade-off: accuracy vs {tradeoff}", xlabel=tradeoff, **_CELL))
        plots.append(self._importance() if show_importance else pn.pane.Markdown(
            "*Tick “importance” to compute fANOVA hyperparameter importance.*"))
        # Each plot in its own pane with unlinked axes: Panel links axes of panes that share a
        # dimension name, which squashed one plot's x range onto another's.
        return pn.GridBox(*[p if isinstance(p, pn.viewable.Viewable) else
                            pn.pane.HoloViews(p, linked_axes=False, sizing_mode="stretch_width",
                                              min_width=300)
                            for p in plots],
                          ncols=2, sizing_mode="stretch_width", css_classes=["study-plots"])

    def _history(self, df: pd.DataFrame, hyperparameter: str) -> Any:
        """Iteration vs value, colour by score; curved parent -> child lines (dashed for
        Hyperband rung promotions)."""
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
        kdims = ["iteration", "value"]
        links = ([hv.Path(solid, kdims=kdims).opts(color="#888", alpha=0.5)] if solid else []) + (
            [hv.Path(dashed, kdims=kdims).opts(color="#888", alpha=0.7, line_dash="dashed")]
            if dashed else [])
        numeric = pd.to_numeric(hist["value"], errors="coerce")
        positive = bool(numeric.notna().any() and (numeric.dropna() > 0).all())
        logy = positive and float(numeric.max()) / float(numeric.min()) > 50
        return hv.Overlay([*links, pts]).opts(
            title=f"Exploration history: {hyperparameter} (lines: parent → child)",
            ylabel=hyperparameter, xlabel="iteration", logy=logy,
            xlim=(0, float(hist["iteration"].max()) + 1), **_CELL)

    def _parallel(self, all_df: pd.DataFrame, df: pd.DataFrame) -> Any:
        """Parallel coordinates as normalised polylines: one axis per numeric hyperparameter
        (plus log10 params and accuracy), one line per model coloured by accuracy; models
        outside the brush stay as grey context. Brushing is done with the range sliders."""
        names = [n for n in self.state.hyperparameter_names()
                 if pd.to_numeric(all_df[f"hp_{n}"], errors="coerce").notna().any()]
        keys = [f"hp_{n}" for n in names] + ["log_params", "acc"]
        axes = [*names, "log10 params", "acc"]
        if len(names) < 1:
            return pn.pane.Markdown("*Parallel coordinates need numeric hyperparameters.*")
        full = all_df[keys].apply(pd.to_numeric, errors="coerce").astype(float)
        lo, hi = full.min(), full.max()
        span = (hi - lo).replace(0, 1.0).fillna(1.0)

        def normalise(frame: pd.DataFrame) -> np.ndarray:
            values = frame[keys].apply(pd.to_numeric, errors="coerce").astype(float)
            return ((values - lo) / span).to_numpy(dtype=float)

        xs = np.arange(len(keys), dtype=float)
        inside = set(df["id"])
        context_rows = normalise(all_df[~all_df["id"].isin(inside)])
        brushed = df.dropna(subset=["acc"])
        if len(brushed) > _MAX_LINES:
            brushed = brushed.sample(_MAX_LINES, random_state=0)
        rows = normalise(brushed)
        kdims = ["axis", "normalised"]
        lines = [{"axis": xs, "normalised": y, "acc": float(a), "id": str(i)}
                 for y, a, i in zip(rows, brushed["acc"], brushed["id"], strict=True)
                 if np.isfinite(y).sum() >= 2]
        layers: list[Any] = []
        if len(context_rows):
            ctx = context_rows[: _MAX_LINES]
            layers.append(hv.Path([np.column_stack([xs, y]) for y in ctx], kdims=kdims).opts(
                color="#d0d4d9", alpha=0.5, line_width=1))
        layers.append(hv.Path(lines, kdims=kdims, vdims=["acc", "id"]).opts(
            color="acc", cmap="viridis", colorbar=True, line_width=1.5, alpha=0.75,
            tools=["hover"], clim=(float(lo["acc"]), float(hi["acc"]))
            if np.isfinite(lo["acc"]) and np.isfinite(hi["acc"]) else (0.0, 1.0)))
        # One vertical axis per coordinate, labelled with its range.
        layers.append(hv.Path([np.array([[x, 0.0], [x, 1.0]]) for x in xs], kdims=kdims).opts(
            color="#333", line_width=1))
        labels = pd.DataFrame({
            "axis": np.concatenate([xs, xs]),
            "normalised": np.concatenate([np.full(len(xs), -0.06), np.full(len(xs), 1.06)]),
            "text": [_fmt(lo[k]) for k in keys] + [_fmt(hi[k]) for k in keys]})
        layers.append(hv.Labels(labels, kdims, "text").opts(text_font_size="8pt",
                                                          text_color="#555"))
        brush = self.state.brush
        for x, n in zip(xs, names, strict=False):
            if n in brush:
                low, high = brush[n]
                y0 = (float(low) - lo[f"hp_{n}"]) / span[f"hp_{n}"]
                y1 = (float(high) - lo[f"hp_{n}"]) / span[f"hp_{n}"]
                layers.append(hv.Path([np.array([[x, y0], [x, y1]])], kdims=kdims).opts(
                    color="#e4572e", line_width=6, alpha=0.6))
        return hv.Overlay(layers).opts(
            xticks=list(enumerate(axes)), xlim=(-0.3, len(axes) - 0.7), ylim=(-0.12, 1.12),
            yaxis=None, xlabel="", show_legend=False,
            title=f"Parallel coordinates ({len(df)} of {len(all_df)} brushed in)", **_CELL)

    def _importance(self) -> Any:
        imp = self.state.importance()
        if imp.empty:
            return pn.pane.Markdown("*Importance appears once at least 8 models with varying "
                                    "hyperparameters have finished.*")
        bars = hv.Bars(imp.rename_axis("hyperparameter").reset_index(name="importance"),
                       "hyperparameter", "importance").opts(
            title="Hyperparameter importance (fANOVA)", **_CELL,
            color="#3b6fb6", tools=["hover"])
        pair = self.state.pairwise()
        if pair is not None and {"a", "b", "importance"} <= set(pair.columns):
            heat = hv.HeatMap(pair, ["a", "b"], "importance").opts(
                cmap="Blues", title="Pairwise importance", **_CELL)
            return hv.Layout([bars, heat]).cols(2)
        return bars

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column(
            "### Studies",
            pn.Row(pn.widgets.Select.from_param(s.param.study, width=200,
                                               css_classes=["study-select"]),
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
