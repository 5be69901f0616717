"""Distances between models: OTMANN-style structural distance and prediction (Hamming) distance.

Structural distance (REMAP's use of OTMANN): an optimal transport between the two layer lists where
each layer has mass 1, a layer left unmatched costs 1 (the non-assignment penalty), and two layers
may be matched only when they are of the same kind, at the cost of their mismatch:

- Conv2D: kernel 1<->3 0.2, 1<->5 0.3, 3<->5 0.2 (REMAP); other kernel pairs 0.1 per step of 2,
  capped at 0.4; plus 0.1 for each other differing hyperparameter (filters, stride, padding).
- MaxPool2D / AvgPool2D ("pools alike"): the same costs on the pool size; + 0.1 for the stride.
  Max and average pooling are different kinds.
- Activation: tanh<->relu 0.25, tanh<->sigmoid 0.1, relu<->sigmoid 0.25 (REMAP); elu and gelu are
  0.1 from relu and from each other and 0.25 from tanh and sigmoid.
- Dense: 0.1 when the units differ; Dropout: 0.1 when the rates differ.
- BatchNorm, Flatten, GlobalAvgPool: 0.
- ConvBlock, SepConv, Residual (composite blocks; each type is its own kind): the kernel costs
  above, plus 0.1 for each other differing hyperparameter (filters, stride, activation).

With unit masses the transport is an assignment problem, solved exactly with
`scipy.optimize.linear_sum_assignment`. The distance is symmetric and zero only on identical lists;
every mismatch cost is below 1 and the per-layer costs obey the triangle inequality, so the
distance does too. A reference classifier counts as one layer of its own kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from nasdb.schema.errors import InvalidRequest

from ._architecture import Architecture
from ._layers import Activation, Conv2D, Dense, Dropout, Layer, _Block, _Pool

NON_ASSIGNMENT_PENALTY = 1.0
_SIZE_COST = {frozenset({1, 3}): 0.2, frozenset({1, 5}): 0.3, frozenset({3, 5}): 0.2,
              frozenset({2, 3}): 0.2, frozenset({2, 5}): 0.3}
_ACTIVATION_COST = {
    frozenset({"tanh", "relu"}): 0.25,
    frozenset({"tanh", "sigmoid"}): 0.1,
    frozenset({"relu", "sigmoid"}): 0.25,
    frozenset({"relu", "elu"}): 0.1,
    frozenset({"relu", "gelu"}): 0.1,
    frozenset({"elu", "gelu"}): 0.1,
}
_UNMATCHABLE = 1e6


def _size_cost(a: int, b: int) -> float:
    if a == b:
        return 0.0
    return _SIZE_COST.get(frozenset({a, b}), min(0.4, 0.1 * ((abs(a - b) + 1) // 2)))


def layer_cost(a: Layer | str, b: Layer | str) -> float | None:
    """The cost of matching two layers; None when they are of different kinds."""
    if isinstance(a, str) or isinstance(b, str):
        return 0.0 if a == b else None
    if a.TYPE != b.TYPE:
        return None
    if isinstance(a, Conv2D) and isinstance(b, Conv2D):
        return (
            _size_cost(a.kernel, b.kernel)
            + 0.1 * (a.filters != b.filters)
            + 0.1 * (a.stride != b.stride)
            + 0.1 * (a.padding != b.padding)
        )
    if isinstance(a, _Block) and isinstance(b, _Block):
        return (
            _size_cost(a.kernel, b.kernel)
            + 0.1 * (a.filters != b.filters)
            + 0.1 * (a.stride != b.stride)
            + 0.1 * (a.fn != b.fn)
        )
    if isinstance(a, _Pool) and isinstance(b, _Pool):
        return _size_cost(a.size, b.size) + 0.1 * (a.stride != b.stride)
    if isinstance(a, Activation) and isinstance(b, Activation):
        if a.fn == b.fn:
            return 0.0
        return _ACTIVATION_COST.get(frozenset({a.fn, b.fn}), 0.25)
    if isinstance(a, Dense) and isinstance(b, Dense):
        return 0.1 * (a.units != b.units)
    if isinstance(a, Dropout) and isinstance(b, Dropout):
        return 0.1 * (a.rate != b.rate)
    return 0.0


def _items(arch: Architecture | Sequence[Layer]) -> list[Layer | str]:
    if isinstance(arch, Architecture):
        if arch.reference is not None:
            return [f"reference:{arch.reference}"]
        return list(arch.layers)
    return list(arch)


def structural_distance(
    a: Architecture | Sequence[Layer], b: Architecture | Sequence[Layer]
) -> float:
    """OTMANN-style distance between two architectures (or layer lists); see the module doc."""
    left, right = _items(a), _items(b)
    n, m = len(left), len(right)
    if n == 0 or m == 0:
        return NON_ASSIGNMENT_PENALTY * (n + m)
    # Augmented square assignment: rows are left layers then one "unmatched" slot per right
    # layer; columns are right layers then one "unmatched" slot per left layer.
    cost = np.zeros((n + m, m + n))
    for i, x in enumerate(left):
        for j, y in enumerate(right):
            c = layer_cost(x, y)
            cost[i, j] = _UNMATCHABLE if c is None else c
    cost[:n, m:] = _UNMATCHABLE
    cost[np.arange(n), m + np.arange(n)] = NON_ASSIGNMENT_PENALTY
    cost[n:, :m] = _UNMATCHABLE
    cost[n + np.arange(m), np.arange(m)] = NON_ASSIGNMENT_PENALTY
    rows, cols = linear_sum_assignment(cost)
    return round(float(cost[rows, cols].sum()), 9)


def prediction_distance(a: bytes | np.ndarray, b: bytes | np.ndarray) -> int:
    """Hamming distance between two predicted-label vectors (one label per test image).

    Raises `InvalidRequest` when the vectors have different lengths (different test splits).
    """
    x = np.frombuffer(a, dtype=np.uint8) if isinstance(a, bytes | bytearray | memoryview) else (
        np.asarray(a).ravel()
    )
    y = np.frombuffer(b, dtype=np.uint8) if isinstance(b, bytes | bytearray | memoryview) else (
        np.asarray(b).ravel()
    )
    if x.shape != y.shape:
        raise InvalidRequest(
            f"prediction vectors have different lengths ({x.size} and {y.size}); compare models "
            "evaluated on the same test split"
        )
    return int(np.count_nonzero(x != y))
