"""Running a call on a thread of its own, away from an event loop that another test left running.

The browser tests' session-wide Playwright (sync API) keeps an asyncio loop running on the main
thread from their first test on. In a run that orders tests differently (pytest-xdist), a later
test on that worker that calls ``asyncio.run`` - directly, or through prompt_toolkit - would fail
with "cannot be called from a running event loop"; a fresh thread has no loop.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def on_own_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a new thread; its result, or its exception raised here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()
