"""The Pareto front: the one definition, its tie rule, and its two implementations.

**The rule.** Each objective is maximised or minimised. A model is on the front iff no other model
is at least as good on every objective and strictly better on at least one. Models missing any
objective (not trained yet, no value for the class) take no part.

**Ties.** Models with exactly the same values on every objective as a front model are all on the
front (a duplicate never hides another: the front is a set of models, not of points). A model tied
with another on some objectives and worse on one is off it.

**Per dataset.** Accuracies of different datasets do not compare, so callers rank one dataset at a
time (`nasdb.query` refuses a ranking over several; the web app ranks the selected dataset).

Two implementations of that one rule, proved equal on random data full of ties, duplicates and
missing values by a property test (tests/query/test_pareto_rule.py, hypothesis, on a real
PostgreSQL):

- in the database, for the query language (`skyline2_sql` and `dominates_sql`, used by
  `nasdb.query._compiler`), so that ``pareto`` over a million models reads a few index pages;
- in memory (`pareto_mask`), for what already holds its rows: a study's trials, the timeline's
  replay at a past step.

The web app's overview asks the database (`front_ids`), so it draws exactly what ``pareto`` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["dominates_sql", "front_ids", "pareto_mask", "skyline2_sql"]


def pareto_mask(values: Any, maximise: Sequence[bool]) -> np.ndarray:
    """True for the rows of ``values`` (n x k; NaN = missing) on the front (module docstring).

    Two objectives: O(n log n) by sorting (the same method as `skyline2_sql`); more: O(n^2).
    Raises `ValueError` when ``maximise`` does not give a direction per column.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(maximise):
        raise ValueError(f"values must be n x {len(maximise)} (one column per objective), got "
                         f"shape {v.shape}")
    n, k = v.shape
    mask = np.zeros(n, dtype=bool)
    valid = ~np.isnan(v).any(axis=1) if n else np.zeros(0, dtype=bool)
    idx = np.nonzero(valid)[0]
    if not len(idx):
        return mask
    o = v[idx] * np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)  # all to minimise
    if k == 2:
        mask[idx] = _front2(o[:, 0], o[:, 1])
        return mask
    on = np.ones(len(idx), dtype=bool)
    for i in range(len(idx)):
        better_eq = (o <= o[i]).all(axis=1)
        strictly = (o < o[i]).any(axis=1)
        on[i] = not (better_eq & strictly).any()
    mask[idx] = on
    return mask


def _front2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`skyline2_sql` in numpy: group by ``a``; a row is on the front iff its ``b`` is its group's
    best and strictly below the best ``b`` of every group with a smaller ``a``."""
    keys, group = np.unique(a, return_inverse=True)
    best = np.full(len(keys), np.inf)
    np.minimum.at(best, group, b)
    before = np.concatenate(([np.inf], np.minimum.accumulate(best)[:-1]))
    return (b == best[group]) & (b < before[group])


def skyline2_sql(source: str, a: str, b: str, select: str) -> str:
    """SQL for the rows of ``source`` on the front of its two to-minimise columns ``a``, ``b``.

    O(n log n): group by `a` and take each group's best `b`; a running minimum over the groups in
    `a` order (``ROWS UNBOUNDED PRECEDING .. 1 PRECEDING``: the frame start never moves, so
    PostgreSQL updates the aggregate row by row) is the best `b` among rows strictly better on `a`.
    A row is on the front iff its `b` is its group's best and strictly below that running minimum;
    duplicates of such a point all qualify (the tie rule). ``select`` lists the columns to return.
    """
    return (
        f"SELECT {', '.join(f'c.{c.strip()}' for c in select.split(','))} FROM {source} AS c\n"
        f"JOIN (SELECT g.k, g.best, min(g.best) OVER (ORDER BY g.k ROWS BETWEEN UNBOUNDED "
        f"PRECEDING AND 1 PRECEDING) AS before\n"
        f"      FROM (SELECT {a} AS k, min({b}) AS best FROM {source} GROUP BY {a}) AS g) AS s\n"
        f"  ON c.{a} = s.k\n"
        f"WHERE c.{b} = s.best AND (s.before IS NULL OR c.{b} < s.before)"
    )


def dominates_sql(q: str, p: str, k: int) -> str:
    """SQL: row ``q`` dominates row ``p`` on to-minimise columns o1..ok (the rule, literally)."""
    le = " AND ".join(f"{q}.o{i} <= {p}.o{i}" for i in range(1, k + 1))
    lt = " OR ".join(f"{q}.o{i} < {p}.o{i}" for i in range(1, k + 1))
    return f"{le} AND ({lt})"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def front_ids(db: Any, dataset: str, classes: Sequence[str] = ()) -> list[str]:
    """The models ``pareto`` puts on the front of accuracy vs params in ``dataset`` (accuracy: the
    mean accuracy of ``classes`` when given), in the query language's order."""
    from nasdb.query._run import run

    text = f"pareto dataset={_quoted(dataset)}"
    if classes:
        text += " class=" + ",".join(_quoted(c) for c in classes)
    return [str(r["id"]) for r in run(text, db).rows]
