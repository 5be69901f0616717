"""Small typing shims over Panel's API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn

#: `pn.bind`, typed loosely (Panel's own annotation only admits generator functions).
bind: Any = pn.bind


def action(fn: Callable[[], object]) -> Callable[[Any], None]:
    """A button callback that runs ``fn`` and drops its result (Panel wants None back)."""

    def callback(_: Any) -> None:
        fn()

    return callback
