"""The web app's new pieces in headless Chromium (issue 16): linked brushing as query text, tags
and notes, progress, the Sessions view, the phone status page, the validation-vs-test scatter
and the bump chart's values. Each asserts what the page shows and the events or query behind."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from nasdb import query
from nasdb.ingest._store import default_metadata
from nasdb.ui.sessions import CSV_COLUMNS

from ._bokeh import column, drag, screen
from .conftest import SCREENSHOTS, open_page, shot
from .test_browser import _cell, _deep, _events, _tab, _text, _wait, _wait_text

pytestmark = pytest.mark.timeout(300)


def _session_id(page: Any) -> str:
    return _wait_text(page, ".log-position", r"session (u[0-9a-f]{12})").group(1)


def _ids(text: str, db: Any) -> set[str]:
    return {str(r["id"]) for r in query.run(text, db).rows}


def test_overview_box_selection_is_a_query_that_filters_the_studies(page: Any,
                                                                   ui_db: Any) -> None:
    db, _ = ui_db
    page.wait_for_timeout(2000)  # the plot's selection streams are wired after its first draw
    corners = _wait(lambda: screen(page, "", [(4.0, 0.3), (6.2, 0.97)], "BoxSelectTool"), 60)
    assert corners, "no overview figure"
    drag(page, corners[0], corners[1])
    n = int(_wait_text(page, ".brush-status", r"([\d,]+) models selected").group(1)
            .replace(",", ""))
    page.locator(".brush-to-console button").click()
    box = page.locator(".query-input input")
    text = _wait(lambda: box.input_value())
    assert re.fullmatch(r"params>=\d+ params<=\d+ acc>=[\d.]+ acc<=[\d.]+", text), text
    ids = _ids(text, db)
    assert len(ids) == n > 0
    shot(page, "overview-brushed")
    box.press("Enter")  # run it as any query: the same models
    assert int(_wait_text(page, ".query-status", r"(\d+) rows?").group(1)) == n
    # the study plots show only the selected models of the study
    with db.connect() as conn:
        study, members = conn.execute(
            "select study_id, array_agg(id) from models where study_id is not null "
            "group by study_id order by min(created_at) limit 1").fetchone()
    _tab(page, "Studies")
    page.locator(".study-select select").select_option(value=study)
    k = len(ids & set(members))
    _wait_text(page, ".study-brushed", rf"\b{k} of 48 models brushed in")


def test_parallel_coordinates_axis_brush_filters_the_overview(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:
        study = conn.execute("select id from studies order by created_at limit 1").fetchone()[0]
    _tab(page, "Studies")
    select = page.locator(".study-select select")
    select.locator(f"option[value='{study}']").wait_for(state="attached")
    select.select_option(value=study)
    _wait_text(page, ".study-brushed", r"48 of 48 models brushed in")
    # a box across the first axis (lr), over the lower half of its range
    corners = _wait(lambda: screen(page, "Parallel coordinates", [(-0.2, 0.02), (0.2, 0.5)],
                                   "BoxSelectTool"), 60)
    assert corners
    drag(page, corners[0], corners[1])
    n = int(_wait(lambda: (m := re.search(r"(\d+) of 48 models", _deep(page, ".study-brushed")))
                  and int(m.group(1)) < 48 and m.group(1)))
    assert 0 < n < 48
    session = _session_id(page)
    events = _wait(lambda: [e for e in _events(db, "UiAction", f"session-{session}")
                            if e.data["action"] == "brush_query" and e.data["detail"]["query"]])
    text = events[-1].data["detail"]["query"]
    assert re.match(r"study=\S+ lr>=[\d.e-]+ lr<=[\d.e-]+$", text), text
    assert len(_ids(text, db)) == n == events[-1].data["detail"]["rows"]
    _tab(page, "Overview")
    _wait_text(page, ".brush-status", rf"\b{n} models selected\s+\(study\)")
    page.locator(".brush-to-console button").click()
    assert _wait(lambda: page.locator(".query-input input").input_value() == text)
    shot(page, "studies-axis-brushed")


def test_tags_and_notes_from_the_drawer(page: Any, ui_db: Any) -> None:
    db, mid = ui_db
    page.locator(".query-input input").fill("origin=handcrafted")
    page.locator(".query-input input").press("Enter")
    _cell(page, "query-table", mid).click()
    page.wait_for_selector(f".model-card[data-model='{mid}']")
    session = _session_id(page)
    page.locator(".tag-input input").fill("keeper")
    page.locator(".tag-button button").click()
    assert _wait(lambda: "keeper" in _deep(page, ".model-card"))
    page.locator(".note-input textarea").fill("tight on class 3; retrain with more epochs")
    page.locator(".note-button button").click()
    _wait_text(page, ".model-card", r"tight on class 3; retrain with more epochs")
    actor = default_metadata()["actor"]
    assert actor in _deep(page, ".model-card")
    [tagged] = [e for e in _events(db, "Tagged", f"model-{mid}") if e.data["tag"] == "keeper"]
    [noted] = [e for e in _events(db, "Noted", f"model-{mid}")
               if e.data["text"] == "tight on class 3; retrain with more epochs"]
    for e in (tagged, noted):
        assert e.metadata["session"] == session and e.metadata["actor"] == actor
    shot(page, "drawer-notes")


#: The axis titles of every plot on the page (BokehJS models; the titles are drawn on the canvas).
AXIS_LABELS = """() => {
  const out = [];
  for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
    for (const m of doc.all_models) {
      if (typeof m.axis_label === "string" && m.axis_label) out.push(m.axis_label);
    }
  }
  return out;
}"""


def test_distance_layout_shows_progress_while_it_computes(page: Any) -> None:
    page.evaluate("""() => {
      window.__progress = [];
      const walk = (n, out) => {
        if (n.nodeType === Node.TEXT_NODE) { out.push(n.textContent); return; }
        if (n.shadowRoot) walk(n.shadowRoot, out);
        for (const c of n.childNodes) walk(c, out);
      };
      window.__timer = setInterval(() => {
        const out = []; walk(document.body, out);
        const hit = out.find(t => t.includes('computing the'));
        if (hit) window.__progress.push(hit);
      }, 30);
    }""")
    page.locator(".bk-btn", has_text="structural distance").first.click()
    # the axis titles are drawn on the canvas: read them from the page's Bokeh document
    assert _wait(lambda: "MDS 1 (structural distance)" in page.evaluate(AXIS_LABELS), 90), \
        page.evaluate(AXIS_LABELS)
    seen = page.evaluate("() => { clearInterval(window.__timer); return window.__progress; }")
    assert any(re.search(r"computing the structural distance layout of [\d,]+ models", t)
               for t in seen), seen
    assert _wait(lambda: "computing the" not in _text(page))
    shot(page, "overview-structural")


def test_sessions_view_shows_this_session_and_exports(page: Any, ui_db: Any) -> None:
    session = _session_id(page)
    _tab(page, "Sessions")
    page.locator(".sessions-refresh button").click()
    page.wait_for_selector(".sessions-table .tabulator-row")
    assert _wait(lambda: session in _deep(page, ".sessions-table"))
    page.locator(".sessions-select select").select_option(value=session)
    _wait_text(page, ".session-head", rf"{session}\s+·.*actions")
    assert _wait(lambda: "tab" in _deep(page, ".session-actions"))
    with page.expect_download() as download:
        page.locator(".sessions-csv button, .sessions-csv a").first.click()
    path = download.value.path()
    assert path is not None
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert rows and tuple(rows[0]) == CSV_COLUMNS
    assert any(r["session"] == session and r["action"] == "tab" and r["view"] == "Sessions"
               for r in rows)
    shot(page, "sessions")


def test_status_page_is_readable_on_a_phone(browser: Any, ui_server: str, ui_db: Any) -> None:
    db, _ = ui_db
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(ui_server + "status")
        page.wait_for_selector(".status-page", timeout=30_000)
        text = _deep(page, ".status-page")
        for heading in ("Best model so far", "Studies", "Queue", "Workers"):
            assert heading in text
        with db.connect() as conn:
            best = conn.execute("select id from models where coalesce(test_acc, best_val_acc) is "
                                "not null order by coalesce(test_acc, best_val_acc) desc, "
                                "created_at limit 1").fetchone()[0]
        assert best in text
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        size = page.locator(".status-page").first.evaluate(
            "(el) => parseFloat(getComputedStyle(el.shadowRoot ? el : el).fontSize)")
        assert size >= 14
        before = _deep(page, ".status-updated") if page.locator(".status-updated").count() else ""
        assert _wait(lambda: page.locator(".status-updated").count()
              and _deep(page, ".status-updated") != before, 20)  # refreshed live
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "status-phone.png"), full_page=True)
    finally:
        context.close()


def test_validation_vs_test_scatter_click_inspects(browser: Any, ui_server: str,
                                                   ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:
        mid, val, test = conn.execute(
            "select id, best_val_acc, test_acc from models where test_acc is not null and "
            "best_val_acc is not null order by test_acc - best_val_acc desc limit 1").fetchone()
    context, page = open_page(browser, ui_server)
    try:
        _tab(page, "Inspect")
        where = _wait(lambda: screen(page, "Validation vs test", [(float(val), float(test))]), 60)
        assert where, "no validation-vs-test plot"
        sizes = column(page, "Validation vs test", "Scatter", "size")
        assert sizes and max(sizes) > min(sizes)  # sized by test accuracy
        page.mouse.click(*where[0])
        assert _wait(lambda: f"Inspect {mid}" in _text(page), 30)
        shot(page, "inspect-generalisation")
    finally:
        context.close()


def test_bump_chart_circles_print_their_value(page: Any) -> None:
    _tab(page, "Classes")
    labels = _wait(lambda: column(page, "Rank of each model", "Text", "label"), 60)
    assert labels and all(re.fullmatch(r"1|\.\d\d", t) for t in labels), labels[:10]
    values = column(page, "Rank of each model", "Scatter", "value")
    sizes = column(page, "Rank of each model", "Scatter", "size")
    assert len(values) == len(sizes) == len(labels)
    order = sorted(range(len(values)), key=lambda i: values[i])
    assert sizes[order[0]] < sizes[order[-1]]
    shot(page, "classes-values")
