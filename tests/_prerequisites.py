"""What a test does when something it needs from the machine is missing.

Outside CI a missing prerequisite (Chromium, a dataset, an optional tool) skips the test with the
command that installs it. When the ``CI`` environment variable is set, the same call fails the test
instead: a CI run without Chromium must not go green with no browser coverage.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# Skips that are choices, not missing prerequisites: they stay skips under CI too.
DELIBERATE_SKIPS = ("no CUDA device", "NASDB_UI_LARGE=0")


def under_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip the calling test because ``what`` is missing, or fail it under CI."""
    if under_ci():
        pytest.fail(f"{what}; CI must provide it (this run has CI set, so it is not skipped)",
                    pytrace=False)
    pytest.skip(what)
