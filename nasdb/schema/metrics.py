"""Per-class metrics from a confusion matrix: the one definition of "a class's accuracy".

A class's **accuracy** is its recall: the share of that class's test images classified correctly,
``TP / (TP + FN)`` (REMAP's "high accuracy on birds", AutoCl's class-level comparison). A model
that never predicts class k gets 0 for k, however rare k is.

AutoCl's one-vs-rest accuracy, ``(TP + TN) / N``, is kept under its own explicit name,
``one_vs_rest_accuracy``: it rewards a model for *not* predicting a class (a model that never says
"Shirt" scores 0.90 on Shirt in a ten-class set), so nothing ranks by it.

The other ratios are the usual ones: precision ``TP / (TP + FP)``, specificity ``TN / (TN + FP)``.
Rows of the matrix are the true class, columns the predicted class. A ratio whose denominator is 0
(a class with no test images, or never predicted) is reported as 0.0.

Pure Python (no numpy): the trainers, the event upcasters and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ClassMetrics", "class_accuracy", "per_class_metrics"]


@dataclass(frozen=True)
class ClassMetrics:
    """One class's metrics on one split (module docstring for the definitions)."""

    class_index: int
    class_name: str
    accuracy: float
    precision: float
    recall: float
    specificity: float
    one_vs_rest_accuracy: float
    support: int


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def per_class_metrics(
    confusion: Sequence[Sequence[int | float]], class_names: Sequence[str]
) -> list[ClassMetrics]:
    """Each class's metrics from a square confusion matrix (rows: true, columns: predicted).

    Raises `ValueError` when the matrix is not square or its size differs from the class count.
    """
    rows = [[float(v) for v in row] for row in confusion]
    n = len(rows)
    if any(len(row) != n for row in rows) or n != len(class_names):
        raise ValueError(f"a confusion matrix for {len(class_names)} classes must be "
                         f"{len(class_names)}x{len(class_names)}, got {n} rows")
    total = sum(sum(row) for row in rows)
    out = []
    for i in range(n):
        tp = rows[i][i]
        fn = sum(rows[i]) - tp
        fp = sum(row[i] for row in rows) - tp
        tn = total - tp - fn - fp
        out.append(ClassMetrics(
            class_index=i,
            class_name=str(class_names[i]),
            accuracy=_ratio(tp, tp + fn),
            precision=_ratio(tp, tp + fp),
            recall=_ratio(tp, tp + fn),
            specificity=_ratio(tn, tn + fp),
            one_vs_rest_accuracy=_ratio(tp + tn, total),
            support=int(tp + fn),
        ))
    return out


def class_accuracy(confusion: Sequence[Sequence[int | float]],
                   class_names: Sequence[str]) -> dict[str, float]:
    """{class name: the class's accuracy (its recall)}."""
    return {m.class_name: m.accuracy for m in per_class_metrics(confusion, class_names)}
