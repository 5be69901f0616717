"""The model drawer (REMAP Fig. 1B): pin / unpin models, compare pinned models side by side."""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from nasdb.read import frames, get_dataset
from nasdb.schema.errors import NasdbError

from ._glyph import snac_html
from ._state import AppState
from ._util import bind


def _fmt_params(n: Any) -> str:
    n = int(n)
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def _acc(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.3f}"


class DrawerView(pn.viewable.Viewer):
    """The selected model's card with Pin / Unpin, and the list of pinned models."""

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state
        self._pin = pn.widgets.Button(name="Pin", button_type="primary", width=90,
                                      css_classes=["pin-button"])
        self._unpin = pn.widgets.Button(name="Unpin", button_type="default", width=90,
                                        css_classes=["unpin-button"])
        self._tag = pn.widgets.TextInput(placeholder="tag, e.g. baseline", width=170,
                                         css_classes=["tag-input"])
        self._tag_button = pn.widgets.Button(name="Tag", width=70, css_classes=["tag-button"])
        self._tag_button.on_click(lambda e: self._add_tag())
        self._tag.param.watch(lambda e: self._add_tag(), "enter_pressed")
        self._note = pn.widgets.TextAreaInput(placeholder="a note on this model…", height=70,
                                              sizing_mode="stretch_width",
                                              css_classes=["note-input"])
        self._note_button = pn.widgets.Button(name="Add note", width=90,
                                              css_classes=["note-button"])
        self._note_button.on_click(lambda e: self._add_note())
        self._pin.on_click(lambda e: self._toggle(True))
        self._unpin.on_click(lambda e: self._toggle(False))
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, selectable="checkbox",
            sizing_mode="stretch_width", height=220, layout="fit_data_stretch",
            name="pinned", css_classes=["pinned-table"])
        self._table.on_click(self._clicked)
        self._table.param.watch(self._checked, "selection")
        # the table is on the page only while something is pinned
        self._none_pinned = pn.pane.Markdown("Nothing pinned yet.", styles={"color": "#666"})
        self._slot = pn.Column(sizing_mode="stretch_width")
        state.param.watch(self._update_table, ["revision"])
        self._update_table()

    def _toggle(self, pinned: bool) -> None:
        if self.state.selected:
            self.state.pin(self.state.selected, pinned)

    def _add_tag(self) -> None:
        text = self._tag.value_input or self._tag.value or ""
        if self.state.selected and self.state.tag(self.state.selected, text):
            self._tag.value = self._tag.value_input = ""

    def _add_note(self) -> None:
        text = self._note.value_input or self._note.value or ""
        if self.state.selected and self.state.note(self.state.selected, text):
            self._note.value = self._note.value_input = ""

    def _update_table(self, *_: Any) -> None:
        df = self.state.pinned()
        if df.empty:
            self._table.value = pd.DataFrame(columns=["id", "glyph", "params", "acc"])
            self._slot.objects = [self._none_pinned]
            return
        view = df[["id", "glyph", "params", "acc"]].iloc[::-1].copy()  # newest first
        view["acc"] = view["acc"].astype(float).round(4)
        selection = [i for i, m in enumerate(view["id"]) if m in self.state.compare]
        self._table.value = view.reset_index(drop=True)
        self._table.selection = selection
        if self._slot.objects != [self._table]:
            self._slot.objects = [self._table]

    def _clicked(self, event: Any) -> None:
        value = self._table.value
        if event.row is not None and event.row < len(value) and event.column != "_selection":
            self.state.select(str(value["id"].iloc[event.row]), source="drawer")

    def _checked(self, event: Any) -> None:
        value = self._table.value
        chosen = [str(value["id"].iloc[i]) for i in event.new if i < len(value)]
        if set(chosen) != set(self.state.compare):
            self.state.compare = chosen
            self.state.record("compare", models=chosen)

    def _card(self, selected: str | None, revision: int) -> pn.viewable.Viewable:
        row = self.state.model(selected)
        if row is None:
            return pn.pane.Markdown("*No model selected.* Click a model in the overview or a row "
                                    "of a table.", sizing_mode="stretch_width")
        try:
            ds = get_dataset(self.state.db, row["dataset_id"])
            strip = snac_html(row["architecture"], ds.input_shape, ds.num_classes)
        except NasdbError:
            strip = snac_html(row["architecture"])
        acc = row["test_acc"]
        tags = ", ".join(row["tags"] or []) or "—"
        notes = self.state.notes(row["id"])
        notes_html = "".join(
            f"<li class='model-note'>{html.escape(str(n['text']))} <span style='color:#888'>"
            f"— {html.escape(str(n['actor'] or '?'))}, "
            f"{pd.Timestamp(n['recorded_at']).strftime('%Y-%m-%d %H:%M')}</span></li>"
            for _, n in notes.iterrows())
        notes_block = (f"<div class='model-notes'><b>notes</b><ul style='margin:2px 0 0 16px;"
                       f"padding:0'>{notes_html}</ul></div>" if notes_html else
                       "<div class='model-notes' style='color:#888'>no notes yet</div>")
        pin_state = "★ pinned" if row["pinned"] else "not pinned"
        body = (
            f"<div class='model-card' data-model='{html.escape(row['id'])}'>"
            f"<b style='font-size:16px'>{html.escape(row['id'])}</b> "
            f"<span style='color:#666'>{html.escape(row['origin'])} · {row['status']} · "
            f"{pin_state}</span><br>"
            f"<code>{html.escape(row['glyph'])}</code>{strip}"
            f"<table style='font-size:13px'><tr><td>acc (test)</td><td><b>{_acc(acc)}</b></td>"
            f"<td>val_acc</td><td>{_acc(row['best_val_acc'])}</td></tr><tr>"
            f"<td>params</td><td><b>{_fmt_params(row['params'])}</b></td></tr>"
            f"<tr><td>epochs</td><td>{row['epochs_trained']}</td><td>parent</td>"
            f"<td>{html.escape(row['parent_id'] or '—')}</td></tr>"
            f"<tr><td>tags</td><td colspan=3 class='model-tags'>{html.escape(tags)}</td></tr>"
            f"</table>{notes_block}</div>"
        )
        return pn.pane.HTML(body, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        return pn.Column(
            "### Model drawer",
            pn.param.ParamFunction(bind(self._card, s.param.selected, s.param.revision),
                                   lazy=True),
            pn.Row(self._pin, self._unpin),
            pn.Row(self._tag, self._tag_button),
            pn.Row(self._note, self._note_button, sizing_mode="stretch_width"),
            pn.pane.Markdown(bind(lambda n: f"**{n}**" if n else "", s.param.notice)),
            "#### Pinned (tick to compare)",
            self._slot,
            sizing_mode="stretch_width",
        )


class CompareView(pn.viewable.Viewer):
    """Pinned models side by side: glyphs, numbers and learning curves."""

    def __init__(self, state: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.state = state

    def _table(self, compare: list[str], revision: int) -> pn.viewable.Viewable:
        if not compare:
            return pn.pane.Markdown("Tick pinned models in the drawer to compare them here.")
        cards = []
        for mid in compare:
            row = self.state.model(mid)
            if row is None:
                continue
            try:
                ds = get_dataset(self.state.db, row["dataset_id"])
                strip = snac_html(row["architecture"], ds.input_shape, ds.num_classes)
            except NasdbError:
                strip = snac_html(row["architecture"])
            acc = row["test_acc"]
            hp = row["hyperparameters"] or {}
            cards.append(pn.pane.HTML(
                f"<div class='compare-card' style='border:1px solid #ddd;border-radius:6px;"
                f"padding:8px;width:260px'><b>{html.escape(mid)}</b> <span style='color:#666'>"
                f"{html.escape(row['origin'])}</span><br><code style='font-size:11px'>"
                f"{html.escape(row['glyph'])}</code>{strip}acc (test) <b>{_acc(acc)}</b> · val_acc "
                f"{_acc(row['best_val_acc'])} · params "
                f"<b>{_fmt_params(row['params'])}</b><br>latency {row['latency_ms'] or 0:.3f} ms"
                f" · {hp.get('optimizer', '?')} lr {hp.get('lr', '?')}</div>"))
        curves = frames.epochs(self.state.db, compare)
        plots: list[Any] = []
        if not curves.empty:
            for key, g in curves.groupby("model_id"):
                plots.append(hv.Curve(g, "epoch", "val_acc", label=str(key)))
        chart = (hv.Overlay(plots).opts(title="validation accuracy", height=260, responsive=True,
                                        legend_position="right")
                 if plots else pn.pane.Markdown("No epochs yet."))
        return pn.Column(pn.Row(*cards, sizing_mode="stretch_width"), chart,
                         sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column("### Compare pinned models",
                         pn.param.ParamFunction(bind(self._table, self.state.param.compare,
                                          self.state.param.revision), lazy=True),
                         sizing_mode="stretch_width")
