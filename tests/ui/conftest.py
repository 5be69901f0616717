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


class PageErrors:
    """Every uncaught exception of every page opened through `WatchedBrowser` (JavaScript errors
    such as BokehJS's "Offset is outside the bounds of the DataView"): each browser test fails on
    any of them (`_no_page_errors`), and so on
    any error BokehJS logs to the console."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, context: Any) -> Any:
        context.on("page", self._watch_page)
        return context

    def _watch_page(self, pg: Any) -> None:
        pg.on("pageerror", lambda e: self.errors.append(f"{pg.url}: {e}\n{e.stack}"))
        pg.on("console", lambda m: self._console(pg, m))

    def _console(self, pg: Any, message: Any) -> None:
        """Errors BokehJS catches and logs (a failed message, a failed render) count too."""
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"{pg.url}: console: {message.text}")


class WatchedBrowser:
    """The Playwright browser, with every new context's pages watched for page errors."""

    def __init__(self, browser: Any, errors: PageErrors) -> None:
        self._browser = browser
        self._errors = errors

    def new_context(self, **kwargs: Any) -> Any:
        return self._errors.watch(self._browser.new_context(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture(scope="session")
def browser(page_errors: PageErrors) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu",
                                    "--disable-background-networking"])
        yield WatchedBrowser(b, page_errors)
        b.close()


@pytest.fixture(autouse=True)
def _no_page_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that opened a page on which a script error was thrown."""
    if "browser" not in request.fixturenames:
        yield
        return
    errors: PageErrors = request.getfixturevalue("page_errors")
    before = len(errors.errors)
    yield
    new = errors.errors[before:]
    assert not new, "page errors:\n" + "\n".join(new)


def open_page(browser: Any, url: str, width: int = 1500, height: int = 1000) -> tuple[Any, Any]:
    """A new context and page on ``url``, loaded up to the overview's plot."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(url)
    pg.wait_for_selector(".query-input input", timeout=30_000)
    pg.wait_for_selector("canvas", timeout=30_000)
    return context, pg


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
