"""Selections as query text: a brushed range, a box or a lasso becomes clauses of the query
language (`nasdb.query`), so that any selection can be shown, edited and run in the console, and
the selection *is* what its query returns.

Ranges are written with six significant digits, the low end rounded down and the high end up, so
the query never drops a model at the edge of the brush. A selection that no field can say (a box
on a distance layout, a lasso, a hyperparameter the language has no field for) is written as the
models it holds: ``id in (m1, m2, ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

#: Study hyperparameters (`StudiesState` frame columns ``hp_<name>``) -> query field.
HYPERPARAMETER_FIELDS = {"lr": "lr", "batch_size": "batch_size", "weight_decay": "weight_decay"}


def bound(value: float, up: bool) -> str:
    """``value`` with six significant digits, rounded down (or ``up``)."""
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    scale = 10.0 ** (math.floor(math.log10(abs(v))) - 5)
    steps = v / scale
    if abs(steps - round(steps)) < 1e-6:  # already six digits (0.91 / 1e-6 = 910000.0000001)
        steps = round(steps)
    q = (math.ceil if up else math.floor)(steps) * scale
    return f"{q:.6g}"


def range_clause(field: str, low: float, high: float, *, whole: bool = False) -> str:
    """``field>=low field<=high``; ``whole`` numbers (counts) are rounded outwards to integers."""
    if whole:
        return f"{field}>={math.floor(low)} {field}<={math.ceil(high)}"
    return f"{field}>={bound(low, up=False)} {field}<={bound(high, up=True)}"


def ids_clause(ids: Iterable[str]) -> str:
    """``id in (m1, m2, ...)``; an empty selection matches nothing (``id in ("")``)."""
    ids = list(dict.fromkeys(str(i) for i in ids))
    return "id in (" + (", ".join(ids) if ids else '""') + ")"


def box_clause(x0: float, x1: float, y0: float, y1: float) -> str:
    """A box on the accuracy-vs-params overview (x = log10 params, y = accuracy)."""
    lo, hi = sorted((x0, x1))
    a, b = sorted((y0, y1))
    return " ".join([range_clause("params", 10 ** lo, 10 ** hi, whole=True),
                     range_clause("acc", max(a, 0.0), min(b, 1.0))])


def inside_polygon(xs: np.ndarray, ys: np.ndarray, polygon: Sequence[tuple[float, float]]
                   ) -> np.ndarray:
    """Which points (xs, ys) lie inside ``polygon`` (even-odd rule)."""
    inside = np.zeros(len(xs), dtype=bool)
    n = len(polygon)
    if n < 3:
        return inside
    for i in range(n):
        ax, ay = polygon[i]
        bx, by = polygon[(i + 1) % n]
        crosses = (ay > ys) != (by > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (bx - ax) * (ys - ay) / (by - ay) + ax
        inside ^= crosses & (xs < at)
    return inside


def join(clauses: Iterable[str]) -> str:
    """The clauses of every selection, ANDed (the query language's whitespace)."""
    return " ".join(c for c in clauses if c)
