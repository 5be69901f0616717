"""The Recommend tab in a real headless Chromium: fit the recommenders from the page, see the
ranked models, queue one, and check the events that resulted."""

from __future__ import annotations

import re
from typing import Any

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.recommend import MIN_TRAINED_MODELS
from nasdb.schema import Database
from nasdb.search import Architecture, Dense, Hyperparameters
from nasdb.steer import Proposal, propose

from .conftest import shot
from .test_browser import _events, _tab, _text, _wait

pytestmark = pytest.mark.timeout(420)


def _trained(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("select count(*) from models where status = 'done' "
                           "and test_acc is not null").fetchone()
    assert row is not None
    return int(row[0])


def _row(page: Any, model: str) -> Any:
    return page.locator(".recommend-table .tabulator-cell[tabulator-field='model_id']",
                        has_text=re.compile(f"^{re.escape(model)}$")).first


def test_fit_recommend_and_queue_from_the_page(page: Any, ui_db: Any) -> None:
    db, _ = ui_db
    assert _trained(db) >= MIN_TRAINED_MODELS  # the fixture has enough to fit
    # an untrained architecture, proposed but not queued: a "predicted" recommendation to queue
    dataset = get_dataset(db, "synthetic")
    [model] = propose(EventStore(db=db), dataset, [Proposal(Architecture.of(Dense(16)),
                                                       Hyperparameters(), "handcrafted")],
                      queue=False)
    Projector(db).catch_up()
    with db.connect() as conn:
        row = conn.execute("select params from models where id = %s", (model,)).fetchone()
    assert row is not None
    params = int(row[0])

    _tab(page, "Recommend")
    page.wait_for_selector(".fit-recommenders button")
    fitted_before = len(_events(db, "RecommenderTrained"))
    if fitted_before == 0:
        page.wait_for_selector(".recommend-message:has-text('no recommenders are fitted yet')")
        assert "press “Fit recommenders”" in _text(page)
        # a small encoder corpus keeps the test quick (the defaults are the CLI's)
        page.locator(".fit-settings .card-header").first.click()
        page.locator(".fit-corpus input").fill("100")
        page.locator(".fit-corpus input").press("Enter")
        page.locator(".fit-epochs input").fill("1")
        page.locator(".fit-epochs input").press("Enter")
        page.wait_for_timeout(300)
        page.locator(".fit-recommenders button").click()
        assert _wait(lambda: len(_events(db, "RecommenderTrained")) == 3, timeout=300)
        kinds = [e.data["kind"] for e in _events(db, "RecommenderTrained")]
        assert kinds == ["encoder", "similarity", "predictor"]
        page.wait_for_selector(".recommend-message:has-text('fitted encoder')", timeout=60_000)
    page.wait_for_selector(".recommend-table .tabulator-row", timeout=60_000)
    assert page.locator(".recommend-table .tabulator-row").count() == 10
    page.wait_for_selector(".recommend-fit-status:has-text('Predictor predictor-')")
    text = _text(page)
    assert "recommendations for" in text and "measured test accuracy" in text
    page.wait_for_selector(".recommend-map canvas", timeout=60_000)
    shot(page, "recommend")

    # error paths become messages on the page
    page.locator(".queue-recommended button").click()
    page.wait_for_selector(
        ".recommend-message:has-text('⚠ select a recommendation first (click its row)')")
    page.locator(".recommend-max-params input").fill("12x")
    page.locator(".recommend-max-params input").press("Enter")
    page.wait_for_selector(".recommend-message:has-text(\"⚠ '12x' is not a parameter count\")")

    # narrow to untrained models no larger than ours, pick ours, queue it
    page.locator(".recommend-max-params input").fill(str(params))
    page.locator(".recommend-max-params input").press("Enter")
    page.locator(".recommend-untrained input").click()
    _row(page, model).wait_for(timeout=30_000)
    cells = page.locator(".recommend-table .tabulator-cell[tabulator-field='source']")
    assert {cells.nth(i).inner_text().strip() for i in range(cells.count())} == {"predicted"}
    _row(page, model).click()
    page.wait_for_selector(f".recommend-selected:has-text('{model}')")
    before = len(_events(db, "TrainingRequested", f"model-{model}"))
    assert before == 0
    page.locator(".queue-recommended button").click()
    page.wait_for_selector(f".recommend-message:has-text('queued {model} for training')")
    assert _wait(lambda: len(_events(db, "TrainingRequested", f"model-{model}")) == 1)
    with db.connect() as conn:
        job = conn.execute("select state from jobs where model_id = %s", (model,)).fetchone()
    assert job is not None and job[0] == "queued"
    actions = [e for e in _events(db, "UiAction") if e.data["action"] == "recommend_queue"]
    assert actions and actions[-1].data["detail"]["queued"] == model
    shot(page, "recommend-queued")
