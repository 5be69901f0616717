"""The Pareto front of accuracy against parameters: the overview's rule, and the interaction
analysis' (one definition; no web-app import, so the CLI stays quick to start)."""

from __future__ import annotations

import numpy as np


def pareto_mask(params: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """True for models no other model beats (fewer or equal params and higher accuracy)."""
    n = len(params)
    mask = np.zeros(n, dtype=bool)
    valid = ~np.isnan(acc)
    if not valid.any():
        return mask
    idx = np.nonzero(valid)[0]
    order = idx[np.lexsort((-acc[idx], params[idx]))]
    # in order of params (ties: best first), a model is on the front when it beats every
    # model before it
    ordered = acc[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ordered)[:-1]))
    mask[order] = ordered > best_before
    return mask
