"""Faults a new user met in the web app, each reproduced in headless Chromium (issue 16)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.search import Architecture, Dense, Hyperparameters
from nasdb.steer import Proposal, propose

from ._bokeh import AXES, drag, screen
from .conftest import open_page, shot
from .test_browser import _cell, _events, _tab, _text, _wait, _wait_text

pytestmark = pytest.mark.timeout(300)

#: Whether each character of an element's text has a glyph in the fonts the page uses: a
#: character is missing when it draws exactly like a private-use code point (the .notdef box).
_MISSING_GLYPHS = """(el) => {
  const font = getComputedStyle(el).font;
  const canvas = document.createElement('canvas');
  canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext('2d');
  const draw = (ch) => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.font = font; ctx.fillStyle = 'black'; ctx.textBaseline = 'middle';
    ctx.fillText(ch, 4, 24);
    return Array.from(ctx.getImageData(0, 0, 48, 48).data).join(',');
  };
  const tofu = draw('\\uE000');
  return Array.from(el.innerText.trim()).filter(ch => ch.trim() && draw(ch) === tofu);
}"""


def _select(page: Any, query: str, model: str) -> None:
    _tab(page, "Overview")
    box = page.locator(".query-input input")
    box.fill(query)
    box.press("Enter")
    _cell(page, "query-table", model).click()
    page.wait_for_selector(f".model-card[data-model='{model}']")


def test_variations_mode_shows_its_controls_and_queues_children(page: Any, ui_db: Any) -> None:
    db, mid = ui_db
    _select(page, "origin=handcrafted sort acc desc", mid)
    _tab(page, "Generate")
    page.locator(".bk-btn", has_text="variations").first.click()
    page.wait_for_selector(".variation-kinds", timeout=30_000)
    assert page.locator(".variation-kinds").count() == 7  # 6 layers + before the head
    page.locator(".queue-variations button").click()
    text = _wait_text(page, ".generate-message", r"queued 5 variations: [m\d, ]+").group(0)
    ids = re.findall(r"m\d+", text)
    proposed = {e.stream_id for e in _events(db, "ArchitectureProposed")
                if e.data.get("origin") == "variation" and e.data.get("parent_id") == mid}
    assert {f"model-{i}" for i in ids} <= proposed and len(ids) == 5
    shot(page, "generate-variations")


def test_children_table_shows_deltas_and_training_time_on_screen(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:
        row = conn.execute("select parent_id from models where parent_id is not null "
                           "group by parent_id order by count(*) desc limit 1").fetchone()
    assert row is not None
    parent = row[0]
    _select(page, f"id={parent}", parent)
    _tab(page, "Generate")
    page.wait_for_selector(".children-table .tabulator-row")
    table = page.locator(".children-table").first.bounding_box()
    assert table is not None
    for field in ("Δacc", "Δparams", "train_s"):
        header = page.locator(f".children-table .tabulator-col[tabulator-field='{field}']").first
        box = header.bounding_box()
        assert box is not None and header.is_visible(), field
        assert box["x"] + box["width"] <= table["x"] + table["width"] + 1, (field, box, table)
    shot(page, "generate-children")


def test_handcrafted_child_appears_in_the_live_children_table(page: Any, ui_db: Any) -> None:
    _, mid = ui_db
    _select(page, "origin=handcrafted sort acc desc", mid)
    _tab(page, "Generate")
    page.locator(".bk-btn", has_text="handcraft").first.click()
    editor = page.locator(".handcraft-editor textarea").first
    editor.wait_for()
    editor.fill(editor.input_value() + "\nDense(units=48)")
    editor.press("Tab")
    page.wait_for_timeout(500)
    page.locator(".queue-handcraft button").click()
    child = _wait_text(page, ".generate-message", r"queued handcrafted (m\d+)").group(1)
    _cell(page, "children-table", child).wait_for(timeout=15_000)


#: Of the queue's rows, those drawn highlighted: (model id, priority) of each row whose cells carry
#: the selected-row style (`nasdb.ui.app._queue.SELECTED_ROW`, background #fde68a).
_HIGHLIGHTED = """(rows) => rows
  .filter((row) => {
    const cell = row.querySelector(".tabulator-cell[tabulator-field='model_id']");
    return cell && getComputedStyle(cell).backgroundColor === 'rgb(253, 230, 138)';
  })
  .map((row) => [
    row.querySelector(".tabulator-cell[tabulator-field='model_id']").textContent.trim(),
    row.querySelector(".tabulator-cell[tabulator-field='priority']").textContent.trim()])"""


def _highlighted(page: Any) -> list[list[str]]:
    """(model id, priority) of the queue rows drawn highlighted (the table is in a shadow root:
    the locator pierces it)."""
    return list(page.locator(".jobs-table .tabulator-row").evaluate_all(_HIGHLIGHTED))


def test_queue_highlight_follows_the_job_after_a_reorder(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    store = EventStore(db=db)
    dataset = get_dataset(db, "synthetic")
    ids = propose(store, dataset, [Proposal(Architecture.of(Dense(8 + i)), Hyperparameters(),
                                            "handcrafted") for i in range(3)], queue=True)
    Projector(db).catch_up()
    _tab(page, "Queue")
    last = ids[-1]
    model_ids = ".tabulator-cell[tabulator-field='model_id']"
    page.locator(f".jobs-table {model_ids}", has_text=re.compile(f"^{last}$")).first.click()
    _wait_text(page, ".queue-selected", rf"selected job:\s+{last}\b")
    assert _wait(lambda: _highlighted(page) == [[last, "0"]]), _highlighted(page)
    # each move is done when the server says so: the highlight must be on the job's new row
    # (priority -1, below the other queued jobs), then on the first row, and on no other row
    page.locator(".bk-btn", has_text="Down").first.click()
    _wait_text(page, ".queue-message", rf"moved down\s+{last}\b")
    assert _wait(lambda: _highlighted(page) == [[last, "-1"]], timeout=30), \
        _highlighted(page)
    page.locator(".bk-btn", has_text="Top").first.click()
    _wait_text(page, ".queue-message", rf"moved top\s+{last}\b")
    first = page.locator(".jobs-table .tabulator-row").first
    expect(first.locator(model_ids)).to_have_text(last, timeout=30_000)
    assert _wait(lambda: [m for m, _ in _highlighted(page)] == [last], timeout=30), \
        _highlighted(page)
    shot(page, "queue-reordered")


def test_inspect_with_nothing_selected_asks_for_a_model(browser: Any, ui_server: str) -> None:
    context, page = open_page(browser, ui_server)
    try:
        _tab(page, "Inspect")
        assert _wait(lambda: "Select a model" in _text(page))
        assert "has not finished training" not in _text(page)
    finally:
        context.close()


def test_timeline_buttons_draw_their_glyphs(page: Any) -> None:
    _tab(page, "Timeline")
    page.wait_for_selector(".timeline-first button")
    for name in ("first", "previous", "play", "next", "last"):
        button = page.locator(f".timeline-{name} button").first
        missing = button.evaluate(_MISSING_GLYPHS)
        assert missing == [], (name, button.inner_text(), missing)


def _overlaps(boxes: list[list[float]]) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(len(boxes) - 1) if boxes[i][1] > boxes[i + 1][0]]


def _settled_axes(page: Any, titles: list[str]) -> dict[str, Any]:
    """`_bokeh.AXES` of the plots whose titles start with each of ``titles``, once each has at
    least two x tick labels and the labels and their boxes read the same twice in a row (250 ms
    apart): a plot that exists is not yet laid out, and a resize lays it out again."""
    handle = page.wait_for_function(
        f"""(titles) => {{
          const all = ({AXES})();
          const picked = {{}};
          for (const t of titles) {{
            const key = Object.keys(all).find(k => k.startsWith(t));
            const x = key && all[key].x;
            if (!x || x.labels.length < 2 || !x.boxes) {{ window.__nasdbAxes = null; return false; }}
            picked[t] = all[key];
          }}
          const now = JSON.stringify(picked);
          const settled = window.__nasdbAxes === now;
          window.__nasdbAxes = now;
          return settled && picked;
        }}""", arg=titles, polling=250, timeout=60_000)
    return dict(handle.json_value())


def test_tradeoff_ticks_apart_and_learning_curves_in_whole_epochs(page: Any, ui_db: Any) -> None:
    db, mid = ui_db
    with db.connect() as conn:  # the fixture's study: the Studies tab opens on the newest, which
        # may be one another test launched and nothing trained
        study = conn.execute("select id from studies order by created_at limit 1").fetchone()[0]
    # models within one decade of params (a box on the overview): where a log axis writes long
    # labels
    corners = _wait(lambda: screen(page, "", [(5.05, 0.25), (5.95, 0.97)], "BoxSelectTool"), 60)
    assert corners
    drag(page, corners[0], corners[1])
    _wait_text(page, ".brush-status", r"models selected")
    page.set_viewport_size({"width": 1100, "height": 1000})  # a narrow grid cell
    _tab(page, "Studies")
    select = page.locator(".study-select select")
    select.locator(f"option[value='{study}']").wait_for(state="attached")
    select.select_option(value=study)
    _wait_text(page, ".study-brushed", r"\d+ of 48 models brushed in")
    trade = _settled_axes(page, ["Trade-off"])["Trade-off"]
    assert all(re.fullmatch(r"\d+(\.\d)?[kMG]?", t) for t in trade["x"]["labels"]), trade["x"]
    assert _overlaps(trade["x"]["boxes"]) == [], trade["x"]
    page.set_viewport_size({"width": 1500, "height": 1000})
    _select(page, "origin=handcrafted sort acc desc", mid)
    _tab(page, "Inspect")
    plots = _settled_axes(page, ["Loss", "Accuracy"])
    for title in ("Loss", "Accuracy"):
        ticks = plots[title]["x"]["ticks"]
        assert ticks and all(float(t).is_integer() for t in ticks), (title, ticks)
