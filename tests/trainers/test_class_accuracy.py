"""A class's accuracy is its recall: in the pure definition, and in what training reports (test
metrics and the per-epoch metric) on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasdb.schema.metrics import class_accuracy, per_class_metrics
from nasdb.trainers.datasets import LoadedDataset, load_dataset
from nasdb.trainers.loop import EpochResult, evaluate, train


def test_a_class_never_predicted_has_accuracy_zero() -> None:
    # 3 classes; class 2 (10 images) is never predicted: one-vs-rest would give it 0.9.
    cm = [[45, 0, 0], [0, 45, 0], [5, 5, 0]]
    m = per_class_metrics(cm, ["a", "b", "c"])
    assert [x.accuracy for x in m] == [1.0, 1.0, 0.0]
    assert [x.recall for x in m] == [1.0, 1.0, 0.0]
    assert m[2].one_vs_rest_accuracy == pytest.approx(0.9)
    assert [x.precision for x in m] == pytest.approx([0.9, 0.9, 0.0])
    assert [x.support for x in m] == [45, 45, 10]
    assert class_accuracy(cm, ["a", "b", "c"]) == {"a": 1.0, "b": 1.0, "c": 0.0}


def test_a_class_without_images_gets_zero_not_an_error() -> None:
    m = per_class_metrics([[3, 1], [0, 0]], ["x", "y"])
    assert (m[1].accuracy, m[1].support, m[1].one_vs_rest_accuracy) == (0.0, 0, 0.75)
    with pytest.raises(ValueError, match="2x2"):
        per_class_metrics([[1, 2, 3]], ["x", "y"])


@pytest.fixture(scope="module")
def digits() -> LoadedDataset:
    return load_dataset("digits")


def recall(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    mine = y_true == k
    return float((y_pred[mine] == k).mean()) if mine.any() else 0.0


def test_training_reports_each_class_recall(digits: LoadedDataset) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    seen: list[EpochResult] = []
    result = train(module, digits, {"epochs": 1, "batch_size": 64, "lr": 1e-3,
                                    "early_stop_patience": 0}, on_epoch=seen.append)
    y_test = digits.y_test.numpy()
    preds = np.frombuffer(result.predictions, dtype=np.uint8)
    for m in result.class_metrics:
        assert m.accuracy == pytest.approx(recall(y_test, preds, m.class_index))
    # one epoch of a linear model is far from perfect: recall and one-vs-rest differ
    assert any(abs(m.accuracy - m.one_vs_rest_accuracy) > 0.05 for m in result.class_metrics)
    # the per-epoch metric: the same definition on the validation split (last epoch's weights)
    val = evaluate(module, digits.x_val, digits.y_val, num_classes=digits.num_classes)
    y_val = digits.y_val.numpy()
    want = {name: recall(y_val, val.predictions, i) for i, name in enumerate(digits.class_names)}
    assert seen[-1].class_acc == pytest.approx(want)
    assert set(seen[-1].class_ovr_acc) == set(digits.class_names)
