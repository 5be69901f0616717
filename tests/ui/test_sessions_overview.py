"""The overview stays right however many browser sessions the server has served."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ._bokeh import axes
from .conftest import open_page

pytestmark = pytest.mark.timeout(400)

SESSIONS = 8


def test_eight_sessions_one_after_another_each_labels_the_axes(browser: Any,
                                                                ui_server: str) -> None:
    """Every session's overview labels its log-params axis (10k, 100k, 1.0M ...) and its
    accuracy axis; page errors in any session fail the test (the shared `_no_page_errors`)."""
    for n in range(SESSIONS):
        context, page = open_page(browser, ui_server)
        try:
            page.wait_for_timeout(1000)
            [plot] = axes(page).values()
            x, y = plot["x"]["labels"], plot["y"]["labels"]
            assert len(x) >= 3 and all(re.fullmatch(r"\d+(\.\d)?[kMG]?", t) for t in x), (n, x)
            assert len(y) >= 3 and all(re.fullmatch(r"[01](\.\d+)?", t) for t in y), (n, y)
        finally:
            context.close()
