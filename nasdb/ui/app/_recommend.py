"""Recommend (AutoCl's recommendation view): ranked models for a dataset with measured or predicted
accuracy and their nearest trained neighbours, fitting the recommenders, queuing a recommended
architecture for training, and a 2-D map of the known architectures with the recommendations
marked."""

from __future__ import annotations

import asyncio
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from nasdb.recommend import Fitted
from nasdb.schema.errors import NasdbError

from ._recommend_state import RecommendState
from ._util import action, bind

_TITLES = {"model_id": "model", "accuracy": "accuracy", "lower": "90% low", "upper": "90% high",
           "source": "accuracy is", "score_basis": "ranked by", "trained_on": "trained on",
           "source_similarity": "similarity", "why": "why (nearest trained: accuracy)"}


class RecommendView(pn.viewable.Viewer):
    def __init__(self, state: RecommendState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, selectable=1, height=330,
            sizing_mode="stretch_width", layout="fit_data_stretch", name="recommendations",
            titles=_TITLES, css_classes=["recommend-table"])
        self._table.on_click(self._clicked)
        self._max_params = pn.widgets.TextInput(name="max params", placeholder="e.g. 100k",
                                                width=130, css_classes=["recommend-max-params"])
        self._max_params.param.watch(lambda e: self.state.set_max_params(e.new), "value")
        self._fit_button = pn.widgets.Button(name="Fit recommenders", button_type="primary",
                                             width=170, css_classes=["fit-recommenders"])
        self._fit_button.on_click(self._fit)
        state.param.watch(lambda e: setattr(self._fit_button, "loading", e.new), ["fitting"])
        state.param.watch(self._reload, ["recommendations"])
        state.recommend()  # the view exists once its tab opens: compute on first show
        self._reload()

    def _reload(self, *_: Any) -> None:
        frame = self.state.recommendations
        if frame is not None and not frame.empty:  # blank, not "NaN", where there is no value
            frame = frame.astype(object).where(frame.notna(), None)
        self._table.value = frame

    def _clicked(self, event: Any) -> None:
        value = self._table.value
        if event.row is not None and event.row < len(value):
            self.state.select(str(value["model_id"].iloc[event.row]))

    async def _fit(self, _: Any) -> None:
        """Fit on a worker thread so the page stays live and shows progress."""
        s = self.state
        if not s.check_fit():
            return
        s.fitting = True
        s.message = "fitting the recommenders… (progress below)"
        outcome: list[Fitted] | NasdbError
        token = s.app.start_task("fitting the recommenders (encoder, dataset similarity, "
                                 "accuracy predictor)")
        try:
            outcome = await asyncio.to_thread(s.run_fit)
        except NasdbError as e:
            outcome = e
        finally:
            s.app.end_task(token)
        s.finish_fit(outcome)

    def _map(self, frame: pd.DataFrame | None, show: bool) -> pn.viewable.Viewable:
        if not show:
            return pn.pane.Markdown("")
        try:
            emb = self.state.embedding()
        except NasdbError as e:
            return pn.pane.Markdown(f"⚠ {e}")
        if emb.empty:
            return pn.pane.Markdown("")
        known = hv.Points(emb, ["x", "y"], ["accuracy", "model_id", "params"],
                          label="trained").opts(
            color="accuracy", cmap="Blues", size=6, alpha=0.8, colorbar=True,
            tools=["hover"], line_color="#8898aa")
        picks = emb[emb["recommended"]].copy()
        picks["label"] = picks["rank"].astype(str)
        marked = hv.Points(picks, ["x", "y"], ["rank", "model_id", "accuracy"],
                           label="recommended").opts(
            marker="star", size=16, color="#e4572e", line_color="black", tools=["hover"])
        span = float(emb["y"].max() - emb["y"].min()) or 1.0
        labels = hv.Labels(picks, ["x", "y"], "label").opts(  # the rank, just above its star
            text_font_size="10pt", text_font_style="bold", text_color="#a3301a",
            text_baseline="bottom", yoffset=0.04 * span)
        title = (f"Architecture map ({self.state.source_dataset}): MDS of the encoder's "
                 "vectors; stars are the recommendations, numbered by rank")
        plot = (known * marked * labels).opts(
            title=title, height=380, responsive=True, legend_position="top_left",
            xaxis=None, yaxis=None, shared_axes=False)  # not the overview's x / y ranges
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width", css_classes=["recommend-map"])

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        queue = pn.widgets.Button(name="Queue training", button_type="success", width=150,
                                  css_classes=["queue-recommended"])
        queue.on_click(action(lambda: s.queue()))
        show_map = pn.widgets.Checkbox(name="show the architecture map", value=True)
        settings = pn.Card(
            pn.Row(pn.widgets.IntInput.from_param(s.param.corpus, name="encoder corpus",
                                                  width=140, css_classes=["fit-corpus"]),
                   pn.widgets.IntInput.from_param(s.param.encoder_epochs, name="encoder epochs",
                                                  width=140, css_classes=["fit-epochs"]),
                   pn.widgets.IntInput.from_param(s.param.sample_size,
                                                  name="images per dataset", width=140)),
            title="Fit settings", collapsed=True, sizing_mode="stretch_width",
            css_classes=["fit-settings"])
        controls = pn.Row(
            pn.widgets.Select.from_param(s.param.dataset, name="dataset", width=180),
            pn.widgets.MultiChoice.from_param(s.param.classes, name="class focus (optional)",
                                              width=260),
            pn.widgets.IntSlider.from_param(s.param.limit, name="how many", width=180),
            self._max_params,
            pn.Column(pn.Spacer(height=18),
                      pn.widgets.Checkbox.from_param(s.param.untrained_only,
                                                     name="untrained only",
                                                     css_classes=["recommend-untrained"])),
            sizing_mode="stretch_width")
        return pn.Column(
            "### Recommended models",
            controls,
            pn.Row(self._fit_button,
                   pn.pane.Markdown(s.param.fit_status, css_classes=["recommend-fit-status"],
                                    sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.pane.Markdown(bind(lambda p: f"_{p}_" if p else "", s.param.progress),
                             css_classes=["recommend-progress"]),
            settings,
            pn.pane.Markdown(s.param.message, css_classes=["recommend-message"],
                             sizing_mode="stretch_width"),
            pn.pane.Markdown(bind(lambda *_: s.summary(), s.param.recommendations,
                                  s.param.mode), sizing_mode="stretch_width"),
            pn.Row(pn.pane.Markdown(bind(lambda m: f"selected: **{m or '—'}**", s.param.selected),
                                    width=220, css_classes=["recommend-selected"]),
                   queue),
            self._table,
            show_map,
            pn.panel(bind(self._map, s.param.recommendations, show_map),
                     sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
