"""Generate (REMAP Fig. 3 and 5): ablations, variations and the handcraft editor, each queuing
training jobs; the children table shows their deltas against the parent as they train."""

from __future__ import annotations

from typing import Any

import panel as pn

from nasdb.search import CHANGE_KINDS

from ._steer_state import GenerateState
from ._util import action, bind


class GenerateView(pn.viewable.Viewer):
    def __init__(self, state: GenerateState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._children = pn.widgets.Tabulator(
            state.children(), disabled=True, show_index=False, height=260, name="children",
            sizing_mode="stretch_width", layout="fit_columns", widths={"changes": 320},
            css_classes=["children-table"])
        state.app.param.watch(self._refresh_children, ["revision", "selected"])

    def _refresh_children(self, *_: Any) -> None:
        self._children.value = self.state.children()

    def _ablation_controls(self, selected: str | None) -> pn.viewable.Viewable:
        labels = self.state.layer_labels()
        if not labels:
            return pn.pane.Markdown("Select a model with a layer list first.")
        pick = pn.widgets.CheckButtonGroup(name="layers", options={lbl: i for i, lbl in
                                                                    enumerate(labels)},
                                           value=list(self.state.ablate), button_type="primary",
                                           button_style="outline", css_classes=["ablate-layers"])
        pick.param.watch(lambda e: setattr(self.state, "ablate", list(e.new)), "value")
        go = pn.widgets.Button(name="Queue ablations", button_type="success",
                               css_classes=["queue-ablations"])
        go.on_click(action(lambda: self.state.run_ablations()))
        return pn.Column(pn.pane.Markdown("One child per removed layer. Pick layers to ablate "
                                          "(none picked = all):"), pick, go)

    def _variation_controls(self, selected: str | None) -> pn.viewable.Viewable:
        labels = self.state.layer_labels()
        if not labels:
            return pn.pane.Markdown("Select a model with a layer list first.")
        rows: list[Any] = []
        positions = [*labels, f"{len(labels)}: (before the head)"]
        for i, label in enumerate(positions):
            allowed = ["prepend"] if i == len(labels) else list(CHANGE_KINDS)
            group = pn.widgets.CheckButtonGroup(options=allowed, value=allowed, button_type="light",
                                                css_classes=["variation-kinds"])
            group.param.watch(lambda e, i=i: self.state.set_kinds(i, list(e.new)), "value")
            rows.append(pn.Row(pn.pane.Markdown(f"`{label}`", width=170), group))
        go = pn.widgets.Button(name="Queue variations", button_type="success",
                               css_classes=["queue-variations"])
        go.on_click(action(lambda: self.state.run_variations()))
        return pn.Column(
            pn.Row(pn.widgets.IntSlider.from_param(self.state.param.count, name="children"),
                   pn.widgets.IntSlider.from_param(self.state.param.changes,
                                                   name="changes per child")),
            pn.pane.Markdown("Allowed change types per layer:"), *rows, go)

    def _handcraft_controls(self, selected: str | None) -> pn.viewable.Viewable:
        if not self.state.layer_labels() and not self.state.parent():
            return pn.pane.Markdown("Select a model first.")
        # A plain text area: a code editor would add half a megabyte of JavaScript to every page
        editor = pn.widgets.TextAreaInput.from_param(
            self.state.param.editor, height=220, sizing_mode="stretch_width", name="layers",
            css_classes=["handcraft-editor"],
            stylesheets=["textarea { font-family: monospace; font-size: 13px; }"])
        go = pn.widgets.Button(name="Queue handcrafted model", button_type="success",
                               css_classes=["queue-handcraft"])
        go.on_click(action(lambda: self.state.run_handcraft()))
        return pn.Column(pn.pane.Markdown(
            "Edit the parent's layers, one per line — add, remove or reparameterize, e.g. "
            "`Conv2D(filters=32, kernel=3, stride=1, padding=same)`, `Dense(units=64)`, "
            "`Dropout(rate=0.25)`. The head is added for you."), editor, go,
            sizing_mode="stretch_width")

    def _controls(self, mode: str, selected: str | None) -> pn.viewable.Viewable:
        if mode == "ablations":
            return self._ablation_controls(selected)
        if mode == "variations":
            return self._variation_controls(selected)
        return self._handcraft_controls(selected)

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column(
            pn.pane.Markdown(bind(lambda m: f"### Generate from **{m}**" if m else
                                     "### Generate — select a parent model first",
                                     s.app.param.selected)),
            pn.widgets.RadioButtonGroup.from_param(s.param.mode, button_type="primary",
                                                   button_style="outline"),
            pn.panel(bind(self._controls, s.param.mode, s.app.param.selected),
                     sizing_mode="stretch_width"),
            pn.pane.Markdown(s.param.message, css_classes=["generate-message"],
                             sizing_mode="stretch_width"),
            "#### Children (Δ against the parent, live)",
            self._children,
            sizing_mode="stretch_width",
        )
