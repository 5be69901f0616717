"""Fixtures for the web-app tests: one populated database and one app server per session, and
a real headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nasdb.schema import Database
from tests._prerequisites import missing
from tests.conftest import TEMPLATE, _with_dbname

from ._fixtures import fill, free_port, study, trained_model

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = os.environ.get("NASDB_CHROMIUM", "/usr/bin/chromium")


def _new_database(pg_admin_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{TEMPLATE}"')
    return name, _with_dbname(pg_admin_url, name)


def _drop(pg_admin_url: str, name: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def ui_db(pg_admin_url: str, template_url: str) -> Iterator[tuple[Database, str]]:
    """A database with 300 synthetic models, one trained model with a confusion matrix, and a
    study of 48 models varying several hyperparameters."""
    name, url = _new_database(pg_admin_url, "nasdb_ui")
    db = Database(url)
    store = fill(db, 300)
    mid = trained_model(db, store)
    study(db, store)
    yield db, mid
    db.engine.dispose()
    _drop(pg_admin_url, name)


@pytest.fixture(scope="session")
def ui_server(ui_db: tuple[Database, str]) -> Iterator[str]:
    from nasdb.ui.app import serve

    db, _ = ui_db
    port = free_port()
    server = serve(db, port=port, host="127.0.0.1", threaded=True, poll_ms=1000)
    assert server is not None
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu",
                                    "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, ui_server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(ui_server)
    pg.wait_for_selector(".query-input input", timeout=30_000)
    pg.wait_for_selector("canvas", timeout=30_000)
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
