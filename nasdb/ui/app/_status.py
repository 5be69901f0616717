"""The phone-sized status page (``/status``): studies, the best model so far, the queue and the
workers, refreshed live. For REMAP's long runs, where nobody stays at the desk: one column, large
type, no plots, readable on a 390 x 844 screen."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn
from panel.io.resources import _env

from nasdb.ingest import projection_status
from nasdb.read import frames
from nasdb.schema.db import Database
from nasdb.schema.errors import NasdbError

from ._state import lag_text

_CSS = """
.status-page { font: 16px/1.45 sans-serif; color: #1b2530; max-width: 100%; }
.status-page h2 { font-size: 18px; margin: 14px 0 4px; color: #1f3b5c; }
.status-page .big { font-size: 26px; font-weight: 600; }
.status-page .muted { color: #5b6672; font-size: 14px; }
.status-page ul { margin: 0; padding-left: 18px; }
.status-page li { margin: 2px 0; }
.status-page, .status-page * { overflow-wrap: anywhere; }
"""
#: The page's HTML: Panel's, with the viewport a phone needs (without it a phone lays the page out
#: 980 px wide and shrinks it).
_TEMPLATE = _env.from_string(
    '{% extends "base.html" %}{% block preamble %}{{ super() }}'
    '<meta name="viewport" content="width=device-width, initial-scale=1">{% endblock %}')


def _acc(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.3f}"


def status_html(db: Database) -> str:
    """The page's content as of now (reads only)."""
    models = frames.load_models(db)
    studies = frames.studies(db)
    jobs = frames.jobs(db)
    workers = frames.workers(db)
    live = frames.live_workers(db, 60.0)
    parts = ["<div class='status-page'>"]
    trained = models[models["acc"].notna()] if len(models) else models
    parts.append("<h2>Best model so far</h2>")
    if len(trained):
        best = trained.iloc[int(trained["acc"].to_numpy().argmax())]
        parts.append(f"<div class='big status-best'>{html.escape(str(best['id']))} · "
                     f"{_acc(best['acc'])}</div><div class='muted'>"
                     f"<code>{html.escape(str(best['glyph']))}</code> · "
                     f"{int(best['params']):,} params</div>")
    else:
        parts.append("<div class='muted'>no model has finished training yet</div>")
    parts.append(f"<div class='muted'>{len(models):,} models, {len(trained):,} trained</div>")
    parts.append("<h2>Studies</h2>")
    if len(studies):
        items = []
        for _, st in studies.iloc[::-1].head(6).iterrows():
            items.append(f"<li><b>{html.escape(str(st['id']))}</b> {html.escape(str(st['state']))}"
                         f" · {int(st['models_count'] or 0)} models · "
                         f"{html.escape(str(st['strategy']))}</li>")
        parts.append("<ul class='status-studies'>" + "".join(items) + "</ul>")
    else:
        parts.append("<div class='muted'>no study yet</div>")
    parts.append("<h2>Queue</h2>")
    counts = jobs["state"].value_counts().to_dict() if len(jobs) else {}
    queued, running = int(counts.get("queued", 0)), int(counts.get("claimed", 0))
    parts.append(f"<div class='status-queue'><span class='big'>{queued}</span> queued · "
                 f"<span class='big'>{running}</span> training</div>")
    active = jobs[jobs["state"] == "claimed"].head(5) if len(jobs) else jobs
    if len(active):
        parts.append("<ul>" + "".join(
            f"<li>{html.escape(str(j['model_id']))} epoch {int(j['epochs_trained'] or 0)}/"
            f"{int(j['epochs_planned'] or 0)} on {html.escape(str(j['worker']))}</li>"
            for _, j in active.iterrows()) + "</ul>")
    parts.append("<h2>Workers</h2>")
    parts.append(f"<div class='status-workers'><span class='big'>{live}</span> alive "
                 f"(seen in the last minute) of {len(workers)}</div>")
    if len(workers):
        parts.append("<ul>" + "".join(
            f"<li>{html.escape(str(w['worker']))} · {html.escape(str(w['state']))} · "
            f"{html.escape(str(w['device'] or ''))}</li>"
            for _, w in workers.head(6).iterrows()) + "</ul>")
    parts.append("<h2>Read models</h2>")
    parts.append(f"<div class='status-projection'>{html.escape(lag_text(projection_status(db)))}"
                 "</div>")
    parts.append("</div>")
    return "".join(parts)


def build_status(db: Database, poll_ms: int = 1500) -> pn.viewable.Viewable:
    """A new session's status page; refreshes itself every ``poll_ms``."""
    pane = pn.pane.HTML(status_html(db), sizing_mode="stretch_width", stylesheets=[_CSS])
    clock = pn.pane.HTML("", sizing_mode="stretch_width")

    def tick() -> None:
        try:
            pane.object = status_html(db)  # the server's projector keeps the views current
            clock.object = (f"<span style='color:#5b6672;font:13px sans-serif' "
                            f"class='status-updated'>updated "
                            f"{pd.Timestamp.now():%H:%M:%S}</span>")
        except NasdbError as e:
            clock.object = f"<span style='color:#b00020'>⚠ {html.escape(str(e))}</span>"

    if pn.state.curdoc is not None:
        pn.state.curdoc.template = _TEMPLATE
        if poll_ms:
            pn.state.add_periodic_callback(tick, period=poll_ms)
    header = pn.pane.HTML("<span style='font:600 20px sans-serif;color:white'>nasdb</span>"
                          "<span style='color:#c8d3e0;margin-left:8px;font:14px sans-serif'>"
                          "status</span>", styles={"background": "#1f3b5c", "padding": "8px 12px"},
                          sizing_mode="stretch_width")
    return pn.Column(header, clock, pane, sizing_mode="stretch_width",
                     styles={"padding": "0 10px"})
