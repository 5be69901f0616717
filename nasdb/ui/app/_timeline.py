"""The timeline (NAS dashboard): replay the search step by step, with a summary table."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from ._analysis_state import TimelineState
from ._util import bind


class TimelineView(pn.viewable.Viewer):
    """The replay. The player is an `IntSlider` with step buttons and a server-side play timer
    rather than Panel 1.9's `Player`: that widget's front end sets the range input's value before
    its max on first render, so any step beyond 100 is clamped to 100 and the handle sits at
    100/end of the track (~38% at the end of a 276-step search) while the step is at the end."""

    interval_ms = 300

    def __init__(self, state: TimelineState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._slider = pn.widgets.IntSlider(name="step", start=0, end=max(state.steps, 1),
                                            value=state.step, sizing_mode="stretch_width",
                                            css_classes=["timeline-step"])
        self._slider.link(state, value="step")
        self._buttons = {
            name: pn.widgets.Button(name=label, width=46, css_classes=[f"timeline-{name}"])
            for name, label in (("first", "⏮"), ("previous", "◀"), ("play", "▶"),
                                ("next", "▶|"), ("last", "⏭"))}
        self._buttons["first"].on_click(lambda _: self._go(0))
        self._buttons["previous"].on_click(lambda _: self._go(self.state.step - 1))
        self._buttons["next"].on_click(lambda _: self._go(self.state.step + 1))
        self._buttons["last"].on_click(lambda _: self._go(self.state.steps))
        self._buttons["play"].on_click(self._toggle_play)
        self._timer: Any = None
        state.param.watch(self._steps_changed, ["steps", "step"])

    def _go(self, step: int) -> None:
        self.state.step = max(0, min(int(step), self.state.steps))

    def _tick(self) -> None:
        if self.state.step >= self.state.steps:
            self._stop()
            return
        self._go(self.state.step + 1)

    def _toggle_play(self, _: Any) -> None:
        if self._timer is not None:
            self._stop()
            return
        if self.state.step >= self.state.steps:
            self._go(0)
        self._timer = pn.state.add_periodic_callback(self._tick, period=self.interval_ms)
        self._buttons["play"].name = "⏸"

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._buttons["play"].name = "▶"

    def _steps_changed(self, *_: Any) -> None:
        self._slider.end = max(self.state.steps, 1)
        if self._slider.value != self.state.step:
            self._slider.value = self.state.step

    def _plots(self, step: int, steps: int) -> pn.viewable.Viewable:
        done = self.state.completions()
        if done.empty:
            return pn.pane.Markdown("*No model has finished training yet.*")
        shown = done.head(step)
        later = done.iloc[step:]
        acc = (hv.Scatter(later, "iteration", "acc").opts(color="#ddd", size=4)
               * hv.Scatter(shown, "iteration", ["acc", "model_id"]).opts(
                   color="#3b6fb6", size=5, tools=["hover"])
               * hv.Curve(shown, "iteration", "best", label="best so far").opts(
                   color="#e4572e", line_width=2.5, interpolation="steps-post")
               * hv.VLine(step).opts(color="#333", line_dash="dotted")
               ).opts(title=f"Accuracy over the search — step {step} of {steps}",
                      responsive=True, min_height=320, xlabel="finished models",
                      ylabel="acc (test accuracy)",
                      legend_position="bottom_right")
        sp = shown.assign(log_params=pd.Series(shown["params"], dtype=float).clip(lower=1))
        front = self.state.front(step)
        front = front.assign(log_params=pd.Series(front["params"], dtype=float).clip(lower=1))
        scatter = (hv.Scatter(sp, "log_params", ["acc", "model_id", "origin"]).opts(
            logx=True, color="origin", cmap="Category10", size=6, tools=["hover"])
            * hv.Curve(front, "log_params", "acc", label="Pareto front").opts(
                color="#e4572e", line_width=2, interpolation="steps-post")
        ).opts(title="Models so far: test accuracy vs params", responsive=True, min_height=320,
               xlabel="params", ylabel="acc (test accuracy)", legend_position="bottom_right")
        return pn.Row(pn.pane.HoloViews(acc, sizing_mode="stretch_width"),
                      pn.pane.HoloViews(scatter, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")

    def _summary(self, step: int, steps: int) -> pn.viewable.Viewable:
        s = self.state.summary(step)

        def num(v: Any, signed: bool = False) -> str:
            return "—" if v is None else (f"{v:+.4f}" if signed else f"{v:.4f}")

        table = pd.DataFrame({
            "": ["step", "models finished", "best model so far", "its acc (test accuracy)",
                 "Δ over the previous best", "change that helped most", "its gain"],
            "value": [str(s["step"]), str(s["models"]), s["best_model"] or "—",
                      num(s["best_acc"]), num(s["best_delta"], True), s["best_change"] or "—",
                      num(s["best_change_gain"], True)],
        })
        return pn.widgets.Tabulator(table, disabled=True, show_index=False,
                                    sizing_mode="stretch_width", name="timeline-summary",
                                    layout="fit_data_stretch", css_classes=["timeline-summary"])

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column("### Timeline — replay the search",
                         pn.Row(*self._buttons.values(), self._slider,
                                sizing_mode="stretch_width"),
                         pn.param.ParamFunction(bind(self._plots, s.param.step, s.param.steps),
                                                lazy=True, sizing_mode="stretch_width"),
                         pn.param.ParamFunction(bind(self._summary, s.param.step, s.param.steps),
                                                lazy=True, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")
