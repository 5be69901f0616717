"""Study views (HyperTendril): best so far, exploration history, parallel coordinates with
brushing, importance, trade-off, and refining the space to launch the next run."""

from __future__ import annotations

import asyncio
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from nasdb.schema.errors import NasdbError

from ._studies_state import REFINABLE, StudiesState
from ._util import bind

#: Size options shared by the plots of the study grid: fill the cell's width, fixed height.
_CELL: dict[str, Any] = {"responsive": True, "height": 300}
#: At most this many polylines in the parallel-coordinates plot (a random sample beyond).
_MAX_LINES = 3000
#: At most this many points in a scatter plot (a random sample beyond; the title says so).
_MAX_POINTS = 5000
#: Width of the brush column (the app's default sizing stretches everything).
_BRUSH_WIDTH = 240
#: Points of each curved parent -> child line.
_CURVE_POINTS = 12


def _fmt(value: Any) -> str:
    v = float(value)
    if not np.isfinite(v):
        return ""
    return f"{v:.3g}"


def _refinements(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped) -> a dict; `NasdbError` for a
    line without ``=``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise NasdbError(f"each refinement is KEY=VALUE (e.g. lr=1e-4..1e-3), got {line!r}")
        out[key.strip()] = value.strip()
    return out


def _links(hist: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Parent -> child lines of the exploration history as two NaN-separated (x, y) polylines:
    straight ones for Hyperband survivors (a child with a rung: the same configuration promoted),
    curved ones for every other child (PBT exploits, variations). One array each, so drawing
    them costs the same for 50 or 50,000 links."""
    value = pd.to_numeric(hist["value"], errors="coerce")
    x_of = pd.Series(hist["iteration"].to_numpy(dtype=float), index=hist["id"])
    y_of = pd.Series(value.to_numpy(dtype=float), index=hist["id"])
    child = hist["parent_id"].notna() & hist["parent_id"].isin(x_of.index)
    x0 = hist.loc[child, "parent_id"].map(x_of).to_numpy(dtype=float)
    y0 = hist.loc[child, "parent_id"].map(y_of).to_numpy(dtype=float)
    x1 = hist.loc[child, "iteration"].to_numpy(dtype=float)
    y1 = value[child].to_numpy(dtype=float)
    ok = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
    rung = hist.loc[child, "rung"].notna().to_numpy() & ok
    curved = ~rung & ok
    gap = np.full((int(rung.sum()), 1), np.nan)
    straight = np.column_stack([
        np.hstack([x0[rung, None], x1[rung, None], gap]).ravel(),
        np.hstack([y0[rung, None], y1[rung, None], gap]).ravel()])
    t = np.linspace(0.0, 1.0, _CURVE_POINTS)[None, :]
    a, b = (1 - t) ** 2, 2 * (1 - t) * t  # quadratic Bezier through a raised middle point
    cx0, cy0, cx1, cy1 = x0[curved, None], y0[curved, None], x1[curved, None], y1[curved, None]
    xs = a * cx0 + b * (cx0 + cx1) / 2 + t**2 * cx1
    ys = a * cy0 + b * np.maximum(cy0, cy1) + t**2 * cy1
    gap = np.full((int(curved.sum()), 1), np.nan)
    bent = np.column_stack([np.hstack([xs, gap]).ravel(), np.hstack([ys, gap]).ravel()])
    return straight, bent


def _sample(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """At most `_MAX_POINTS` rows of ``df`` (a fixed random sample, kept in order) and the note
    a plot's title carries when it shows a sample."""
    if len(df) <= _MAX_POINTS:
        return df, ""
    return (df.sample(_MAX_POINTS, random_state=0).sort_index(),
            f" ({_MAX_POINTS:,} of {len(df):,} shown)")


def _segments(values: np.ndarray, xs: np.ndarray) -> dict[str, np.ndarray]:
    """Polylines through ``xs`` (one row of ``values`` each) as the columns of `hv.Segments`:
    one segment per pair of neighbouring axes, NaN ends dropped."""
    n, k = values.shape
    cols = {"x0": np.tile(xs[:-1], n), "y0": values[:, :-1].ravel(),
            "x1": np.tile(xs[1:], n), "y1": values[:, 1:].ravel()}
    keep = np.isfinite(cols["y0"]) & np.isfinite(cols["y1"])
    out = {c: v[keep] for c, v in cols.items()}
    out["row"] = np.repeat(np.arange(n), k - 1)[keep]
    return out


def _grid(plots: list[Any], css_class: str) -> pn.viewable.Viewable:
    """Plots two to a row, each stretched to half the width. Each plot sits in its own pane with
    unlinked axes: Panel links the axes of panes that share a dimension name, which squashed one
    plot's x range onto another's."""
    panes = [p if isinstance(p, pn.viewable.Viewable) else
             pn.pane.HoloViews(p, linked_axes=False, sizing_mode="stretch_width", min_width=300)
             for p in plots]
    rows = [pn.Row(*panes[i:i + 2], sizing_mode="stretch_width") for i in range(0, len(panes), 2)]
    return pn.Column(*rows, sizing_mode="stretch_width", css_classes=[css_class])


class StudiesView(pn.viewable.Viewer):
    """The Studies tab: controls, brushes beside the plot grid, importance, and the refine form."""

    def __init__(self, state: StudiesState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._rendering = False
        self._drawn: tuple[Any, ...] | None = None  # what the plot grid shows now
        self._space = pn.pane.JSON({}, depth=1, name="search space", css_classes=["study-space"],
                                   sizing_mode="stretch_width")
        self._space_box = pn.Column("Current search space", self._space,
                                    sizing_mode="stretch_width")
        self._refine = pn.widgets.TextAreaInput(
            name="refinements (KEY=VALUE per line, as `nasdb study refine --set`)", height=110,
            placeholder="lr=1e-4..1e-3\nbatch_size=64,128", sizing_mode="stretch_width",
            css_classes=["study-refinements"])
        self._from_brush = pn.widgets.Button(name="Use the brushed ranges", button_type="default",
                                             css_classes=["study-from-brush"])
        self._from_brush.on_click(self._fill_from_brush)
        self._launch = pn.widgets.Button(name="Refine & launch next run", button_type="success",
                                         css_classes=["study-launch"])
        self._launch.on_click(self._do_launch)
        self._msg = pn.pane.Markdown("", css_classes=["study-message"])
        self._drive = pn.widgets.Button(name="Run this study here", button_type="primary",
                                        width=180, css_classes=["study-drive"])
        self._drive.on_click(self._do_drive)
        self._drive_status = pn.pane.Markdown("", css_classes=["study-drive-status"])
        state.param.watch(self._study_changed, ["study"])
        state.app.param.watch(self._study_changed, ["revision"])
        self._study_changed()

    # --- the refine form -------------------------------------------------------------------------

    def _study_changed(self, *_: Any) -> None:
        space = self.state.space()
        self._space.object = space or {}
        self._space_box.visible = space is not None
        self._launch.disabled = self._from_brush.disabled = space is None
        row = self.state.study_row()
        state = None if row is None else str(row["state"])
        driven = self.state.driven()
        self._drive.visible = state == "running" and not driven
        if state is None:
            status = ""
        elif driven:
            status = "driven by this server: its models are queued as the strategy asks"
        elif state == "running":
            status = "running, but not driven by this server (`nasdb study run` may drive it)"
        else:
            status = f"study {state}"
        self._drive_status.object = status

    def _do_drive(self, _: Any) -> None:
        try:
            self.state.drive()
        except NasdbError as e:
            self._msg.object = f"⚠ {e}"
        self._study_changed()

    def _fill_from_brush(self, _: Any) -> None:
        sets = self.state.brush_refinements()
        if not sets:
            names = ", ".join(REFINABLE)
            self._msg.object = f"Brush one of {names} first."
            return
        self._refine.value = "\n".join(f"{k}={v}" for k, v in sets.items())

    def _do_launch(self, _: Any) -> None:
        try:
            refinements = _refinements(self._refine.value or "")
            if not refinements:
                raise NasdbError("write at least one KEY=VALUE refinement (or use the brush)")
            nid, changes = self.state.launch_refined(refinements)
        except NasdbError as e:
            self._msg.object = f"⚠ {e}"
            return
        workers = self.state.live_workers()
        trains = (f"{workers} worker{'s' if workers != 1 else ''} train its models" if workers
                  else "no worker is running: start one with `nasdb worker` to train them")
        self._msg.object = (f"launched study **{nid}** ({'; '.join(changes)}); this server "
                            f"drives it and queues its models, {trains}. The Queue tab "
                            "shows them.")

    # --- brushes ---------------------------------------------------------------------------------

    def _brushes(self, study: str, revision: int) -> pn.viewable.Viewable:
        df = self.state.models()
        sliders = []
        for name in self.state.hyperparameter_names():
            values = pd.to_numeric(df[f"hp_{name}"], errors="coerce").dropna()
            if values.empty or values.nunique() < 2:
                continue
            lo, hi = float(values.min()), float(values.max())
            low, high = self.state.brush.get(name, (lo, hi))
            step = (hi - lo) / 100
            decimals = min(6, max(0, -int(np.floor(np.log10(step)))))
            s = pn.widgets.RangeSlider(name=name, start=lo, end=hi, value=(low, high), step=step,
                                       format="0." + "0" * decimals if decimals else "0",
                                       width=200, css_classes=["study-brush",
                                                               f"study-brush-{name}"])

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
            return pn.pane.Markdown("*No numeric hyperparameter varies in this study.*",
                                    width=_BRUSH_WIDTH, sizing_mode="fixed")
        return pn.Column("**Brush** (filters every study view)", *sliders, width=_BRUSH_WIDTH,
                         sizing_mode="fixed")

    # --- the plot grid ---------------------------------------------------------------------------

    def _plots(self, *_: Any) -> pn.viewable.Viewable:
        # Loading a study's models can change the hyperparameter (its choices come from them),
        # which asks for this grid again: that nested call is skipped, this one draws it. A
        # study change also clears the brush: the second call for the same inputs is skipped.
        if self._rendering:
            raise param.Skip
        self._rendering = True
        try:
            all_df = self.state.models()
        finally:
            self._rendering = False
        s = self.state
        drawing = (s.study, s.hyperparameter, s.tradeoff, s.app.revision,
                   tuple((k, tuple(v)) for k, v in sorted(s.brush.items())))
        if drawing == self._drawn:
            raise param.Skip
        self._drawn = drawing
        if all_df.empty:
            return pn.pane.Markdown("*No models in this study yet.*")
        df = s.brushed(all_df)
        done = s.best_so_far(df)
        # The curve only where the best changes (steps-post draws the same line), the points a
        # sample beyond _MAX_POINTS: 100,000 models draw as fast as 5,000.
        steps = done[done["best"].diff().ne(0).to_numpy() | (done["iteration"] ==
                                                              done["iteration"].max()).to_numpy()]
        shown, note = _sample(done)
        best_plot = (hv.Curve(steps, "iteration", "best").opts(interpolation="steps-post",
                                                               color="#e4572e", line_width=2.5)
                     * hv.Scatter(shown, "iteration", "acc").opts(color="#9aa5b1", size=4)
                     ).opts(title=f"Best so far{note}", ylabel="acc (test accuracy)",
                              **_CELL)
        plots: list[Any] = [best_plot]
        if s.hyperparameter and f"hp_{s.hyperparameter}" in df:
            plots.append(self._history(df, s.hyperparameter))
        plots.append(self._parallel(all_df, df))
        xs = pd.to_numeric(shown[s.tradeoff], errors="coerce")
        if xs.notna().any():
            plots.append(hv.Scatter(shown.assign(x=xs).dropna(subset=["x"]),
                                    ("x", s.tradeoff), ["acc", "id"]).opts(
                logx=s.tradeoff == "params", color="#3b6fb6", tools=["hover"], size=6,
                title=f"Trade-off: accuracy vs {s.tradeoff}{note}", xlabel=s.tradeoff,
                ylabel="acc (test accuracy)", **_CELL))
        else:
            plots.append(pn.pane.Markdown(f"*Trade-off: no finished model here has {s.tradeoff}.*"))
        grid = _grid(plots, css_class="study-plots")
        status = pn.pane.Markdown(
            f"**{len(df):,} of {len(all_df):,} models brushed in** · {len(done):,} finished · best "
            f"acc (test accuracy) {_fmt(done['acc'].max()) if len(done) else '–'} · best val_acc "
            f"{_fmt(df['val_acc'].max()) if df['val_acc'].notna().any() else '–'}",
            css_classes=["study-brushed"])
        legend = pn.pane.Markdown(
            "Exploration history: colour is acc (test accuracy); a dashed line joins a Hyperband survivor to "
            "its rung below, a curved line a parent to its child (PBT exploits, variations).",
            styles={"color": "#555", "font-size": "12px"})
        return pn.Column(status, grid, legend, sizing_mode="stretch_width")

    def _history(self, df: pd.DataFrame, hyperparameter: str) -> Any:
        """Iteration vs value, colour by score; dashed survivor lines for Hyperband rungs,
        curved parent -> child lines for everything else (PBT)."""
        shown, note = _sample(df)
        hist = shown.assign(value=shown[f"hp_{hyperparameter}"])
        pts = hv.Scatter(hist, "iteration", ["value", "acc", "id", "origin"]).opts(
            color="acc", cmap="viridis", size=7, colorbar=True, tools=["hover"])
        kdims = ["iteration", "value"]
        straight, bent = _links(hist)
        links: list[Any] = []  # (an empty line breaks BokehJS: "Invalid typed array length")
        if len(bent):
            links.append(hv.Path([bent], kdims=kdims).opts(color="#777", alpha=0.55,
                                                           line_width=1.2))
        if len(straight):
            links.append(hv.Path([straight], kdims=kdims).opts(color="#333", alpha=0.8,
                                                               line_width=1.5, line_dash="dashed"))
        numeric = pd.to_numeric(hist["value"], errors="coerce").dropna()
        positive = bool(len(numeric) and (numeric > 0).all())
        logy = positive and float(numeric.max()) / float(numeric.min()) > 50
        return hv.Overlay([*links, pts]).opts(
            title=f"Exploration history: {hyperparameter}{note}",
            ylabel=hyperparameter, xlabel="iteration", logy=logy, show_legend=False,
            xlim=(0, float(hist["iteration"].max()) + 1), **_CELL)

    def _parallel(self, all_df: pd.DataFrame, df: pd.DataFrame) -> Any:
        """Parallel coordinates: one axis per numeric hyperparameter (plus log10 params and
        accuracy), one polyline per model coloured by accuracy; models outside the brush stay as
        grey context. Drawn as segments between neighbouring axes (one glyph for every line);
        brushing is done with the range sliders beside it."""
        names = [n for n in self.state.hyperparameter_names()
                 if pd.to_numeric(all_df[f"hp_{n}"], errors="coerce").notna().any()]
        if not names:
            return pn.pane.Markdown("*Parallel coordinates need numeric hyperparameters.*")
        keys = [f"hp_{n}" for n in names] + ["log_params", "acc"]
        axes = [*names, "log10 params", "acc"]
        full = all_df[keys].apply(pd.to_numeric, errors="coerce").astype(float)
        lo, hi = full.min(), full.max()
        span = (hi - lo).replace(0, 1.0).fillna(1.0)
        normalised = ((full - lo) / span).to_numpy(dtype=float)
        xs = np.arange(len(keys), dtype=float)
        inside = all_df["id"].isin(set(df["id"])).to_numpy()
        rng = np.random.default_rng(0)
        context = np.flatnonzero(~inside)
        brushed = np.flatnonzero(inside & all_df["acc"].notna().to_numpy())
        if len(context) > _MAX_LINES:
            context = np.sort(rng.choice(context, _MAX_LINES, replace=False))
        if len(brushed) > _MAX_LINES:
            brushed = np.sort(rng.choice(brushed, _MAX_LINES, replace=False))
        seg_kdims = ["x0", "y0", "x1", "y1"]
        layers: list[Any] = []
        if len(context):
            ctx = _segments(normalised[context], xs)
            layers.append(hv.Segments({k: ctx[k] for k in seg_kdims}, seg_kdims).opts(
                color="#d0d4d9", alpha=0.5, line_width=1))
        lines = _segments(normalised[brushed], xs)
        rows = brushed[lines["row"]]
        acc = all_df["acc"].to_numpy(dtype=float)
        clim = ((float(lo["acc"]), float(hi["acc"]))
                if np.isfinite(lo["acc"]) and np.isfinite(hi["acc"]) else (0.0, 1.0))
        layers.append(hv.Segments(
            {**{k: lines[k] for k in seg_kdims}, "acc": acc[rows],
             "id": all_df["id"].to_numpy()[rows]}, seg_kdims, ["acc", "id"]).opts(
            color="acc", cmap="viridis", colorbar=True, line_width=1.5, alpha=0.75,
            tools=["hover"], clim=clim))
        # One vertical axis per coordinate, labelled with its range.
        ones = np.ones_like(xs)
        layers.append(hv.Segments({"x0": xs, "y0": 0 * ones, "x1": xs, "y1": ones},
                                  seg_kdims).opts(color="#333", line_width=1))
        labels = pd.DataFrame({
            "x": np.concatenate([xs, xs]),
            "y": np.concatenate([np.full(len(xs), -0.06), np.full(len(xs), 1.06)]),
            "text": [_fmt(lo[k]) for k in keys] + [_fmt(hi[k]) for k in keys]})
        layers.append(hv.Labels(labels, ["x", "y"], "text").opts(text_font_size="8pt",
                                                               text_color="#555"))
        brush = {n: r for n, r in self.state.brush.items() if n in names}
        if brush:
            at = np.array([names.index(n) for n in brush], dtype=float)
            low = np.array([(float(r[0]) - lo[f"hp_{n}"]) / span[f"hp_{n}"]
                            for n, r in brush.items()])
            high = np.array([(float(r[1]) - lo[f"hp_{n}"]) / span[f"hp_{n}"]
                             for n, r in brush.items()])
            layers.append(hv.Segments({"x0": at, "y0": low, "x1": at, "y1": high},
                                      seg_kdims).opts(color="#e4572e", line_width=6, alpha=0.6))
        return hv.Overlay(layers).opts(
            xticks=list(enumerate(axes)), xrotation=30, xlim=(-0.5, len(axes) - 0.5),
            ylim=(-0.12, 1.12),
            yaxis=None, xlabel="", show_legend=False,
            title=f"Parallel coordinates ({len(df):,} of {len(all_df):,} brushed in)", **_CELL)

    # --- importance ------------------------------------------------------------------------------

    async def _importance(self, study: str, show: bool, revision: int) -> pn.viewable.Viewable:
        """Importance bars and the pairwise heatmap, computed off the event loop (seconds)."""
        if not show:
            return pn.pane.Markdown("*Tick “importance” to compute hyperparameter importance "
                                    "(fANOVA, single and pairwise; takes a few seconds).*")
        try:
            key = self.state.importance_key()
            report = await asyncio.to_thread(self.state.importance, key)
        except NasdbError as e:
            return pn.pane.Markdown(f"*Importance: {e}*")
        single = pd.DataFrame(report["single"])
        for col in ("fanova", "ped_anova"):
            single[col] = pd.to_numeric(single[col], errors="coerce").astype(float)
        bars = hv.Bars(single, "param", ["fanova", "ped_anova"]).opts(
            title=f"Hyperparameter importance (fANOVA, {report['trials']} models)",
            xlabel="hyperparameter", ylabel="importance", color="#3b6fb6", tools=["hover"],
            xrotation=30, **_CELL)
        plots: list[Any] = [bars]
        pairs = report.get("pairwise") or []
        if pairs:
            rows = [{"a": p["params"][i], "b": p["params"][1 - i],
                     "importance": float(p["fanova"] or 0.0),
                     "interaction": float(p["interaction"] or 0.0)}
                    for p in pairs for i in (0, 1)]
            rows += [{"a": r["param"], "b": r["param"], "importance": float(r["fanova"] or 0.0),
                      "interaction": 0.0}
                     for r in report["single"] if any(r["param"] in p["params"] for p in pairs)]
            plots.append(hv.HeatMap(pd.DataFrame(rows), ["a", "b"],
                                    ["importance", "interaction"]).opts(
                cmap="Blues", colorbar=True, tools=["hover"], xrotation=30,
                title="Pairwise importance (fANOVA of each pair)", xlabel="", ylabel="",
                **_CELL))
        return _grid(plots, css_class="study-importance")

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        revision = s.app.param.revision
        return pn.Column(
            "### Studies",
            pn.Row(pn.widgets.Select.from_param(s.param.study, width=200,
                                               css_classes=["study-select"]),
                   pn.widgets.Select.from_param(s.param.hyperparameter, width=200,
                                                css_classes=["study-hyperparameter"]),
                   pn.widgets.Checkbox.from_param(s.param.show_importance, name="importance",
                                                  css_classes=["study-show-importance"]),
                   pn.widgets.RadioButtonGroup.from_param(s.param.tradeoff, button_type="primary",
                                                          button_style="outline")),
            pn.Row(self._drive, self._drive_status),
            pn.Row(pn.param.ParamFunction(bind(self._brushes, s.param.study, revision),
                                          lazy=True, width=_BRUSH_WIDTH, sizing_mode="fixed"),
                   pn.param.ParamFunction(
                       bind(self._plots, s.param.study, s.param.hyperparameter,
                            s.param.tradeoff, s.param.brush, revision),
                       lazy=True, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.param.ParamFunction(bind(self._importance, s.param.study, s.param.show_importance,
                                        revision),
                                   lazy=True, loading_indicator=True,
                                   sizing_mode="stretch_width"),
            "#### Refine the search space and launch the next run",
            pn.Row(pn.Column(self._refine, pn.Row(self._from_brush, self._launch),
                             self._msg, sizing_mode="stretch_width"),
                   self._space_box,
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
