"""The web app in a real headless Chromium: what the page shows, and the events that result."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from nasdb.ingest import EventStore, Projector
from nasdb.schema import Database
from nasdb.steer import pin, stop_study

from ._bokeh import COLUMNS
from .conftest import open_page, shot

pytestmark = pytest.mark.timeout(240)


def _tab(page: Any, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()
    page.wait_for_timeout(600)


def _wait(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    return predicate()


_DEEP_TEXT = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join(" ");
}"""


_ORANGE_PIXELS = """() => {
  const canvases = [];
  const walk = (n) => {
    if (n.tagName === "CANVAS") canvases.push(n);
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(document.body);
  let count = 0;
  for (const c of canvases) {
    const ctx = c.getContext("2d");
    if (!ctx || c.width < 300) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - 255) < 25 && Math.abs(d[i + 1] - 127) < 25 && d[i + 2] < 50) count++;
    }
  }
  return count;
}"""


def _orange_pixels(page: Any) -> int:
    """Pixels of the query-result ring colour (#ff7f0e) on the page's plot canvases."""
    return int(page.evaluate(_ORANGE_PIXELS))


def _text(page: Any) -> str:
    """Every text of the page, shadow roots included (Bokeh renders into shadow DOM)."""
    return str(page.evaluate(_DEEP_TEXT))


def _cell(page: Any, table: str, model: str) -> Any:
    """The id cell of ``model`` in the Tabulator with css class ``table``."""
    return page.locator(f".{table} .tabulator-cell[tabulator-field='id']",
                        has_text=re.compile(f"^{re.escape(model)}$")).first


def _events(db: Database, type_: str, stream: str | None = None) -> list[Any]:
    store = EventStore(db=db)
    try:
        return [e for e in store.read_all(types=[type_])
                if stream is None or e.stream_id == stream]
    finally:
        store.close()


def test_loads_with_every_view_in_the_navigation(page: Any) -> None:
    for name in ("Overview", "Inspect", "Generate", "Queue", "Studies", "Classes", "Timeline",
                 "Recommend", "Compare", "Sessions"):
        assert page.locator(".bk-tab", has_text=name).first.is_visible()
    assert "models" in _text(page)
    shot(page, "overview")


def test_raster_overview_names_the_model_under_the_mouse(
        browser: Any, ui_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_RASTER_ABOVE", "50")  # read by each new session of this server
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        page = context.new_page()
        page.goto(ui_server)
        assert _wait(lambda: "rasterised with datashader" in _text(page), timeout=60)
        canvases = [b for c in page.locator("canvas").all() if (b := c.bounding_box())]
        plot = max(canvases, key=lambda b: b["width"] * b["height"])
        # sweep the mouse over the plot until the server names a model under it
        line = ""
        for fy in (0.3, 0.5, 0.7, 0.4, 0.6, 0.2, 0.8):
            for i in range(12):
                page.mouse.move(plot["x"] + plot["width"] * (0.1 + 0.065 * i),
                                plot["y"] + plot["height"] * fy)
                page.wait_for_timeout(120)
                line = _text(page)
                if "under the mouse:" in line:
                    break
            if "under the mouse:" in line:
                break
        found = re.search(r"under the mouse:\s+m\d+\s+\S+\s+·\s+[\d,]+ params\s+·\s+"
                          r"accuracy \d\.\d{3}\s+·\s+\w+\s+·\s+\w+", line)
        assert found, "no model was named under the mouse anywhere on the plot"
        shot(page, "overview-raster-hover")
    finally:
        context.close()


def test_query_highlights_rows_and_bad_query_shows_caret(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    before = _orange_pixels(page)
    box = page.locator(".query-input input")
    box.fill("pareto params<1M")
    box.press("Enter")
    page.wait_for_selector(".query-table .tabulator-row")
    # the table and the status line are separate updates: wait for the status too
    n = int(_wait_text(page, ".query-status", r"(\d+) rows?").group(1))
    assert n > 0
    rows = page.locator(".query-table .tabulator-row")
    assert rows.count() == min(n, 50)
    assert rows.first.locator(".tabulator-cell[tabulator-field='id']").inner_text().startswith("m")
    # the result is ringed on the scatter, in the query-result colour
    assert _wait(lambda: _orange_pixels(page) > before + 100), (before, _orange_pixels(page))
    shot(page, "query")
    queries = _wait(lambda: [e for e in _events(db, "UiAction")
                             if e.data["action"] == "query"
                             and e.data["detail"]["text"] == "pareto params<1M"])
    assert queries and queries[-1].data["detail"]["rows"] == n
    box.fill("params<<100k")
    box.press("Enter")
    page.wait_for_selector(".query-error")
    text = page.inner_text(".query-error")
    assert "query error at column" in text and "^" in text
    shot(page, "query-error")


def test_pin_from_the_drawer_appends_pinned(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    box = page.locator(".query-input input")
    box.fill("top 5 by acc")
    box.press("Enter")
    page.wait_for_selector(".query-table .tabulator-row")
    first = page.locator(".query-table .tabulator-row").first
    model = first.locator(".tabulator-cell[tabulator-field='id']").inner_text().strip()
    first.click()
    page.wait_for_selector(f".model-card[data-model='{model}']")
    before = len(_events(db, "Pinned", f"model-{model}"))
    page.locator(".pin-button button").click()
    after = _wait(lambda: len(_events(db, "Pinned", f"model-{model}")) > before)
    assert after, "no Pinned event appended"
    _cell(page, "pinned-table", model).wait_for()
    shot(page, "drawer-pinned")


def test_ablation_from_the_page_queues_jobs(page: Any, ui_db: Any) -> None:
    db, mid = ui_db
    page.locator(".query-input input").fill("origin=handcrafted sort acc desc")
    page.locator(".query-input input").press("Enter")
    _cell(page, "query-table", mid).click()
    page.wait_for_selector(f".model-card[data-model='{mid}']")
    _tab(page, "Generate")
    shot(page, "generate-parent")
    page.wait_for_selector(".ablate-layers button", timeout=45_000)
    buttons = page.locator(".ablate-layers button")
    assert buttons.count() == 6
    buttons.nth(0).click()
    buttons.nth(5).click()
    page.locator(".queue-ablations button").click()
    page.wait_for_selector(".generate-message:has-text('queued 2 ablations')")
    with db.connect() as conn:
        rows = conn.execute(
            "select j.model_id, j.state from jobs j join models m on m.id = j.model_id "
            "where m.parent_id = %s and m.origin = 'ablation'", (mid,)).fetchall()
    assert len(rows) == 2 and {r[1] for r in rows} == {"queued"}
    page.wait_for_selector(".children-table .tabulator-row")
    assert page.locator(".children-table .tabulator-row").count() >= 2
    shot(page, "generate")
    _tab(page, "Queue")
    page.locator(".jobs-table .tabulator-cell[tabulator-field='model_id']",
                 has_text=re.compile(f"^{rows[0][0]}$")).first.wait_for()
    shot(page, "queue")


def test_inspection_shows_the_confusion_matrix(page: Any, ui_db: Any) -> None:
    _, mid = ui_db
    page.locator(".query-input input").fill("origin=handcrafted")
    page.locator(".query-input input").press("Enter")
    _cell(page, "query-table", mid).click()
    page.wait_for_selector(f".model-card[data-model='{mid}']")
    _tab(page, "Inspect")
    page.wait_for_selector(".confusion-matrix canvas", timeout=45_000)
    assert "Inspect " + mid in _text(page)
    assert "class(es) 7" in _text(page)  # the all-zero row is called out
    assert page.locator(".inspect-glyph .snac-chip").count() >= 6
    shot(page, "inspect")


#: The Bokeh models of the page (titles, glyphs and their data), read in the browser: plot titles
#: and axes are drawn on the canvas, so the DOM's text does not hold them.
_STUDY_PLOTS = """() => {
  const models = Bokeh.documents.flatMap(d => Array.from(d.all_models));
  const figures = models.filter(m => m.type === 'Figure' && m.title && m.title.text);
  const rows = (r) => r.data_source.get_length();
  const points = (r) => Array.from(r.data_source.data.xs[0] || []).filter(x => x !== null
                                                                          && !isNaN(x)).length;
  const out = {};
  for (const f of figures) {
    const glyphs = f.renderers.filter(r => r.type === 'GlyphRenderer');
    out[f.title.text] = {
      glyphs: glyphs.map(r => r.glyph.type),
      rows: glyphs.map(rows),
      dashed: glyphs.filter(r => r.glyph.type === 'MultiLine'
                                 && JSON.stringify(r.glyph.line_dash).includes('dashed'))
                    .map(points),
      solid: glyphs.filter(r => r.glyph.type === 'MultiLine'
                                && !JSON.stringify(r.glyph.line_dash).includes('dashed'))
                   .map(points),
      ticks: f.below.filter(a => a.major_label_overrides)
                    .flatMap(a => Array.from(a.major_label_overrides.values())),
    };
  }
  return out;
}"""


def _plots(page: Any) -> dict[str, Any]:
    return dict(page.evaluate(_STUDY_PLOTS))


def _deep(page: Any, selector: str) -> str:
    """The text of the first element matching ``selector``, shadow roots included."""
    return str(page.locator(selector).first.evaluate(
        _DEEP_TEXT.replace("() =>", "(root) =>").replace("walk(document.body)", "walk(root)")))


def _wait_text(page: Any, selector: str, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    match = _wait(lambda: re.search(pattern, _deep(page, selector)), timeout)
    assert match, f"{selector} never showed {pattern!r}: {_deep(page, selector)!r}"
    return match


def test_studies_show_history_parallel_coordinates_importance_and_refine(
        page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:
        sid, survivors, children = conn.execute(
            "select m.study_id, count(*) filter (where e.data->'proposal' ? 'rung'), "
            "count(*) filter (where m.parent_id is not null) from models m join events e "
            "on e.stream_id = 'model-' || m.id and e.type = 'ArchitectureProposed' "
            "where m.study_id is not null group by m.study_id").fetchone()
    assert survivors > 0 and children > survivors
    _tab(page, "Studies")
    select = page.locator(".study-select select")
    select.locator(f"option[value='{sid}']").wait_for(state="attached")
    options = select.locator("option").all_inner_texts()
    assert options[0] == "(all models)" and sid in options
    select.select_option(value=sid)
    _wait_text(page, ".study-brushed", r"48 of 48 models brushed in")
    # a running study nothing drives here can be run from the page
    _wait_text(page, ".study-drive-status", r"running, but not driven by this server")
    assert page.locator(".study-drive button").is_visible()
    plots = _wait(lambda: (p := _plots(page)) and "Exploration history: lr" in p and p)
    assert {"Best so far", "Exploration history: lr", "Parallel coordinates (48 of 48 brushed in)",
            "Trade-off: accuracy vs params"} <= set(plots)
    # Exploration history: a dashed straight line per Hyperband survivor (2 points each), a
    # curved line per other child (12 points each), the 48 models as points coloured by accuracy.
    history = plots["Exploration history: lr"]
    assert history["dashed"] == [2 * survivors] and history["solid"] == [12 * (children - survivors)]
    assert 48 in history["rows"]
    # Parallel coordinates: an axis per hyperparameter, a polyline (segments) per model.
    parallel = plots["Parallel coordinates (48 of 48 brushed in)"]
    assert {"lr", "batch_size", "epochs", "weight_decay", "step_gamma", "acc"} <= set(
        parallel["ticks"])
    assert 48 * (len(parallel["ticks"]) - 1) in parallel["rows"]
    assert "Traceback" not in _text(page)
    # Brushing lr (keyboard on the slider's upper handle) filters every other study view.
    handle = page.locator(".study-brush-lr .noUi-handle-upper").first
    handle.focus()
    for _ in range(5):
        handle.press("PageDown")
    n = int(_wait(lambda: (m := re.search(r"(\d+) of 48 models", _deep(page, ".study-brushed")))
                  and int(m.group(1)) < 48 and m.group(1)))
    assert 0 < n < 48
    plots = _wait(lambda: (p := _plots(page)) and f"Parallel coordinates ({n} of 48 brushed in)"
                  in p and p)
    assert n in plots["Trade-off: accuracy vs params"]["rows"]
    assert n in plots["Exploration history: lr"]["rows"]
    # the server appends the UiAction after it has re-rendered the views, so a loaded machine may
    # show the filtered page before the event is in the log
    brushes = _wait(lambda: (b := [e.data["detail"] for e in _events(db, "UiAction")
                                   if e.data["action"] == "brush"
                                   and e.data["detail"]["study"] == sid])
                    and b[-1]["ranges"].get("lr", (0, 1))[1] < 0.01 and b)
    assert brushes, "no brush of lr below 0.01 was recorded"
    # Importance: bars per hyperparameter and the pairwise heatmap, computed off the event loop.
    page.locator(".study-show-importance input").check()
    page.wait_for_selector(".study-importance", timeout=180_000)
    plots = _plots(page)
    bars = next(v for k, v in plots.items() if k.startswith("Hyperparameter importance"))
    assert "VBar" in bars["glyphs"] and max(bars["rows"]) >= 4
    heat = plots["Pairwise importance (fANOVA of each pair)"]
    assert max(heat["rows"]) == 9  # the 3 most important hyperparameters, every pair
    shot(page, "studies")
    # The plot grid stays left of the model drawer.
    grid = page.locator(".study-plots").first.bounding_box()
    drawer = page.get_by_text("Model drawer").first.bounding_box()
    assert grid is not None and drawer is not None
    assert grid["x"] + grid["width"] <= drawer["x"] + 1
    # Refine the space to the brushed lr range and launch the next study from the page.
    page.locator(".study-from-brush button").click()
    refinements = page.locator(".study-refinements textarea")
    assert _wait(lambda: refinements.input_value().startswith("lr="))
    low, high = (float(v) for v in refinements.input_value().removeprefix("lr=").split(".."))
    page.locator(".study-launch button").click()
    nid = _wait_text(page, ".study-message", r"launched study\s+(\S+)\s").group(1)
    select.locator(f"option[value='{nid}']").wait_for(state="attached")
    created = [e.data for e in _events(db, "StudyCreated") if e.data["study_id"] == nid]
    assert created and created[0]["previous_study_id"] == sid
    assert created[0]["space"]["hyperparameters"]["lr_range"] == [low, high]
    refined = [e.data for e in _events(db, "SearchSpaceRefined", f"study-{sid}")]
    assert refined and refined[-1]["next_study_id"] == nid
    # the server drives the new study: its first step queues models for the workers
    _wait_text(page, ".study-message",
               r"this server drives it and queues its models, (\d+ workers? train|no worker)")
    steps = _wait(lambda: _events(db, "SearchStepTaken", f"study-{nid}"), timeout=30)
    assert steps and steps[0].data["model_ids"]
    requested = {e.stream_id for e in _events(db, "TrainingRequested")}
    assert {f"model-{m}" for m in steps[0].data["model_ids"]} <= requested
    select.select_option(value=nid)
    _wait_text(page, ".study-drive-status", r"driven by this server: its models are queued")
    assert not page.locator(".study-drive button").is_visible()
    stop_study(EventStore(db=db), nid, "test done")  # its driver ends at the next look


def test_timeline_slider_matches_the_step(page: Any) -> None:
    _tab(page, "Timeline")
    handle = page.locator(".timeline-step .noUi-handle").first
    handle.wait_for()
    now, top = int(float(handle.get_attribute("aria-valuenow"))), int(float(
        handle.get_attribute("aria-valuemax")))
    assert now == top  # the handle sits at the last step (the title is drawn on the canvas)
    assert "Traceback" not in _text(page)
    base = page.locator(".timeline-step .noUi-base").first.bounding_box()
    box = handle.bounding_box()
    assert base is not None and box is not None
    assert box["x"] + box["width"] / 2 > base["x"] + 0.97 * base["width"]
    page.locator(".timeline-first button").click()
    _wait_value(handle, 0)
    box = handle.bounding_box()
    assert box is not None and box["x"] + box["width"] / 2 < base["x"] + 0.03 * base["width"]
    page.locator(".timeline-last button").click()
    _wait_value(handle, top)
    shot(page, "timeline")


def _wait_value(handle: Any, value: int, timeout: float = 30.0) -> None:
    """Wait until the slider handle reports ``value`` (its aria-valuenow)."""
    deadline = time.monotonic() + timeout
    while int(float(handle.get_attribute("aria-valuenow"))) != value:
        assert time.monotonic() < deadline, f"the slider never reached {value}"
        time.sleep(0.1)


#: Columns of the bump chart's circles (one row per model and class).
_BUMP = ("Rank of each model", "Scatter", ["model_id", "class_name", "value", "rank"])


def _wait_models(page: Any, title: str, glyph: str, names: list[str], ids: list[str]
                 ) -> dict[str, list[Any]]:
    """The columns ``names`` of the plot titled ``title`` (`_bokeh.COLUMNS`) once its rows are
    exactly the models ``ids``: waits in the page for what a selection change draws."""
    query = [title, glyph, list(dict.fromkeys([*names, "model_id"]))]
    try:
        handle = page.wait_for_function(
            f"""(arg) => {{
              const c = ({COLUMNS})(arg.query);
              const got = [...new Set(c.model_id)].sort();
              return JSON.stringify(got) === JSON.stringify(arg.ids) && c;
            }}""", arg={"query": query, "ids": sorted(ids)}, timeout=30_000)
    except PlaywrightTimeout:
        shown = sorted(set(page.evaluate(COLUMNS, query)["model_id"]))
        raise AssertionError(f"{title!r} never showed the models {sorted(ids)}: {shown}") from None
    return dict(handle.json_value())


def _class_values(db: Database, ids: list[str], metric: str) -> dict[tuple[str, str], float]:
    """(model, class) -> the metric's value, from the `class_metrics` read model."""
    assert metric in ("accuracy", "precision", "recall", "specificity")
    with db.connect() as conn:
        rows = conn.execute(f"select model_id, class_name, {metric} from class_metrics "
                            "where model_id = any(%s)", (ids,)).fetchall()
    return {(m, c): float(v) for m, c, v in rows}


def _assert_bump(shown: dict[str, list[Any]], expected: dict[tuple[str, str], float]) -> None:
    """Every circle is one (model, class) with the read model's value, and in each class rank 1
    is the best value, down to the worst (ties in any order)."""
    rows = list(zip(shown["model_id"], shown["class_name"], shown["value"], shown["rank"],
                    strict=True))
    assert {(m, c) for m, c, _, _ in rows} == set(expected) and len(rows) == len(expected)
    for m, c, v, _ in rows:
        assert abs(float(v) - expected[m, c]) < 1e-9, (m, c, v, expected[m, c])
    for name in {c for _, c, _, _ in rows}:
        ranked = sorted((float(r), float(v)) for _, c, v, r in rows if c == name)
        assert [r for r, _ in ranked] == list(range(1, len(ranked) + 1)), (name, ranked)
        values = [v for _, v in ranked]
        assert values == sorted(values, reverse=True), (name, ranked)


def test_classes_ranks_the_read_models_per_class_values(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:
        top = [r[0] for r in conn.execute(
            "select id from models where dataset_id = 'synthetic' and test_acc is not null "
            "order by test_acc desc limit 8").fetchall()]
        pinned = [r[0] for r in conn.execute(
            "select id from models where dataset_id = 'synthetic' and test_acc is not null and "
            "pinned order by test_acc desc limit 8").fetchall()]
    assert len(top) == 8 and pinned and set(pinned) != set(top)
    _tab(page, "Classes")
    page.locator("select").filter(has=page.locator("option[value='query result']")).first \
        .select_option(value="top")
    title, glyph, names = _BUMP
    shown = _wait_models(page, title, glyph, names, top)
    _assert_bump(shown, _class_values(db, top, "accuracy"))
    # another choice of models draws those models
    page.locator("select").filter(has=page.locator("option[value='query result']")).first \
        .select_option(value="pinned")
    shown = _wait_models(page, title, glyph, names, pinned)
    _assert_bump(shown, _class_values(db, pinned, "accuracy"))
    # another metric draws that metric's values
    specificity = _class_values(db, pinned, "specificity")
    assert specificity != _class_values(db, pinned, "accuracy")
    page.locator(".bk-btn", has_text=re.compile(r"^\s*specificity\s*$")).first.click()
    page.wait_for_function(
        f"""(arg) => {{
          const c = ({COLUMNS})(arg.query);
          return c.value.length > 0 && c.value.every(v => Math.abs(v - arg.want) < 1e-9);
        }}""", arg={"query": [title, glyph, ["value"]],
                    "want": next(iter(specificity.values()))}, timeout=30_000)
    shown = _wait_models(page, title, glyph, names, pinned)
    _assert_bump(shown, specificity)
    shot(page, "classes")


def _pinned_row(page: Any, model: str) -> Any:
    return page.locator(".pinned-table .tabulator-row").filter(
        has=page.locator(".tabulator-cell[tabulator-field='id']",
                         has_text=re.compile(f"^{re.escape(model)}$")))


def _assert_card(page: Any, row: Any) -> None:
    """The model's compare card shows its id and its read-model values."""
    mid, test_acc, val_acc, params, latency = row
    card = page.locator(".compare-card").filter(has_text=re.compile(rf"^{mid}\b"))
    text = card.inner_text()
    assert f"acc (test) {test_acc:.3f}" in text and f"val_acc {val_acc:.3f}" in text, text
    shown = re.search(r"params ([\d.]+)([kM]?)", text)
    assert shown, text
    scale = {"": 1, "k": 1e3, "M": 1e6}[shown.group(2)]
    assert abs(float(shown.group(1)) * scale - params) <= 0.05 * scale + 0.5, (text, params)
    assert f"latency {latency:.3f} ms" in text, text


def _curves(db: Database, ids: list[str]) -> set[tuple[str, int, float]]:
    with db.connect() as conn:
        rows = conn.execute("select model_id, epoch, val_acc from epochs where model_id = any(%s)",
                            (ids,)).fetchall()
    return {(m, int(e), round(float(v), 9)) for m, e, v in rows}


def _wait_curves(page: Any, n: int) -> set[tuple[str, int, float]]:
    """(renderer, epoch, val_acc) of the compare chart once it has ``n`` curves."""
    query = ["validation accuracy", "Line", ["epoch", "val_acc"]]
    try:
        handle = page.wait_for_function(
            f"""(arg) => {{
              const c = ({COLUMNS})(arg);
              return new Set(c.renderer).size === {n} && c;
            }}""", arg=query, timeout=30_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the compare chart never had {n} curves: "
                             f"{page.evaluate(COLUMNS, query)}") from None
    c = handle.json_value()
    return {(str(r), int(e), round(float(v), 9))
            for r, e, v in zip(c["renderer"], c["epoch"], c["val_acc"], strict=True)}


def test_compare_shows_the_ticked_models_values_and_curves(browser: Any, ui_server: str,
                                                           ui_db: Any) -> None:
    db, _ = ui_db
    with db.connect() as conn:  # the newest trained models: the first rows of the pinned table
        rows = conn.execute(
            "select id, test_acc, best_val_acc, params, latency_ms, pinned from models m "
            "where test_acc is not null and best_val_acc is not null and exists "
            "(select 1 from epochs e where e.model_id = m.id) "
            "order by created_at desc, id desc limit 2").fetchall()
    assert len(rows) == 2 and rows[0][1] != rows[1][1]
    ids = [r[0] for r in rows]
    store = EventStore(db=db)
    for r in rows:
        if not r[5]:
            pin(store, r[0])
    Projector(db).catch_up()
    context, page = open_page(browser, ui_server)
    try:
        session = re.search(r"session (u[0-9a-f]{12})", _deep(page, ".log-position"))
        assert session
        for mid in ids:
            _pinned_row(page, mid).locator("input[type='checkbox']").first.check()
        _tab(page, "Compare")
        expect(page.locator(".compare-card")).to_have_count(2, timeout=30_000)
        for r in rows:
            _assert_card(page, r[:5])
        want = _curves(db, ids)
        shown = _wait_curves(page, 2)
        # each curve is one model's validation accuracy per epoch, as recorded
        by_curve = {k: {(e, v) for c, e, v in shown if c == k} for k in {c for c, _, _ in shown}}
        by_model = {m: {(e, v) for mm, e, v in want if mm == m} for m in ids}
        assert sorted(map(sorted, by_curve.values())) == sorted(map(sorted, by_model.values()))
        shot(page, "compare")
        recorded = _wait(lambda: [e.data["detail"]["models"] for e in
                                  _events(db, "UiAction", f"session-{session.group(1)}")
                                  if e.data["action"] == "compare"])
        assert recorded and sorted(recorded[-1]) == sorted(ids)
        # unticking one leaves the other alone on the page
        _pinned_row(page, ids[0]).locator("input[type='checkbox']").first.uncheck()
        expect(page.locator(".compare-card")).to_have_count(1, timeout=30_000)
        _assert_card(page, rows[1][:5])
        shown = _wait_curves(page, 1)
        assert {(e, v) for _, e, v in shown} == by_model[ids[1]]
    finally:
        context.close()
        for r in rows:
            if not r[5]:
                pin(store, r[0], False)
        store.close()
