"""The training loop on real data (scikit-learn digits) with small real torch modules."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from nasdb.schema.errors import InvalidRequest, TrainingError
from nasdb.search import Architecture, Hyperparameters
from nasdb.trainers.build import build_module
from nasdb.trainers.datasets import LoadedDataset, load_dataset
from nasdb.trainers.loop import (
    EpochResult,
    class_metrics,
    confusion_matrix,
    evaluate,
    select_device,
    train,
)

FAST = {"batch_size": 64, "lr": 3e-3, "schedule": "step", "early_stop_patience": 0}


@pytest.fixture(scope="module")
def digits() -> LoadedDataset:
    return load_dataset("digits")


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.1),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


def test_training_on_digits_learns(digits: LoadedDataset) -> None:
    seen: list[EpochResult] = []
    result = train(small_cnn(), digits, {**FAST, "epochs": 3}, on_epoch=seen.append)
    assert [e.epoch for e in seen] == [1, 2, 3] and result.history == seen
    assert result.stop_reason == "completed" and result.epochs_trained == 3
    assert seen[-1].train_loss < seen[0].train_loss
    assert seen[-1].val_acc > 0.5 and result.test_acc > 0.5  # chance is 0.1
    assert [e.lr for e in seen] == pytest.approx([3e-3, 3e-3 * 0.75, 3e-3 * 0.75**2])
    assert set(seen[0].class_acc) == set(digits.class_names)
    assert all(e.seconds > 0 for e in seen)
    assert result.train_seconds == pytest.approx(sum(e.seconds for e in seen))
    # test-split outputs: predictions in test order, digest, confusion matrix, metrics
    n_test = digits.split_sizes["test"]
    preds = np.frombuffer(result.predictions, dtype=np.uint8)
    assert preds.shape == (n_test,)
    assert result.predictions_digest == hashlib.sha256(result.predictions).hexdigest()
    assert (preds == digits.y_test.numpy()).mean() == pytest.approx(result.test_acc)
    cm = np.array(result.confusion_matrix)
    assert cm.shape == (10, 10) and cm.sum() == n_test
    assert [m.support for m in result.class_metrics] == np.bincount(
        digits.y_test.numpy(), minlength=10
    ).tolist()
    assert result.latency_ms > 0
    assert set(result.state_dict) == {"0.weight", "0.bias", "5.weight", "5.bias"}
    assert result.state_dict["0.weight"].device.type == "cpu"


def test_same_seed_same_losses(digits: LoadedDataset) -> None:
    hp = {**FAST, "epochs": 2, "seed": 11}
    a = train(small_cnn(), digits, hp)
    b = train(small_cnn(), digits, hp)
    c = train(small_cnn(), digits, {**hp, "seed": 12})
    assert [e.train_loss for e in a.history] == [e.train_loss for e in b.history]
    assert [e.val_loss for e in a.history] == [e.val_loss for e in b.history]
    assert a.predictions == b.predictions
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert [e.train_loss for e in a.history] != [e.train_loss for e in c.history]


def test_train_does_not_disturb_the_callers_rng(digits: LoadedDataset) -> None:
    module = small_cnn()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train(module, digits, {**FAST, "epochs": 1})
    assert torch.equal(torch.rand(3), expected)


def test_early_stopping_when_val_loss_stalls(digits: LoadedDataset) -> None:
    # Epoch 1 sets the best validation loss; with a huge delta epochs 2 and 3 do not count as
    # improvements, so patience 2 runs out after epoch 3.
    hp = {**FAST, "epochs": 10, "early_stop_patience": 2, "early_stop_delta": 100.0}
    result = train(small_cnn(), digits, hp)
    assert result.stop_reason == "early_stop"
    assert result.epochs_trained == 3
    # with a normal delta the same model keeps improving and trains all its epochs
    steady = train(small_cnn(), digits, {**hp, "epochs": 4, "early_stop_delta": 0.0})
    assert steady.stop_reason == "completed" and steady.epochs_trained == 4
    assert 0.0 < result.test_acc <= 1.0


def test_cancel_from_on_epoch_stops_at_that_boundary(digits: LoadedDataset) -> None:
    result = train(small_cnn(), digits, {**FAST, "epochs": 5}, on_epoch=lambda e: e.epoch == 2)
    assert result.stop_reason == "cancelled" and result.epochs_trained == 2


def test_should_stop_is_checked_between_epochs(digits: LoadedDataset) -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2  # before epoch 1 -> False, after epoch 1 -> False, then True

    result = train(small_cnn(), digits, {**FAST, "epochs": 5}, should_stop=should_stop)
    assert result.stop_reason == "cancelled" and result.epochs_trained == 1
    before = train(small_cnn(), digits, {**FAST, "epochs": 5}, should_stop=lambda: True)
    assert before.epochs_trained == 0 and before.stop_reason == "cancelled"
    assert len(before.predictions) == digits.split_sizes["test"]


def test_divergence_names_epoch_and_lr(digits: LoadedDataset) -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x.flatten(1)) * float("nan")

    with pytest.raises(TrainingError) as err:
        train(Exploding(), digits, {**FAST, "epochs": 3, "lr": 0.1})
    assert str(err.value) == "training diverged at epoch 1: loss is nan (lr 0.1 may be too high)"


def test_sgd_at_absurd_lr_diverges_with_a_clear_message(digits: LoadedDataset) -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    hp = {"optimizer": "sgd", "lr": 1e6, "epochs": 5, "batch_size": 32, "schedule": "none"}
    with pytest.raises(TrainingError, match=r"^training diverged at epoch \d: (validation )?loss is "):
        train(mlp, digits, hp)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("schedule", ["none", "cosine"])
def test_every_optimizer_and_schedule_trains(digits: LoadedDataset, optimizer: str, schedule: str) -> None:
    lr = {"adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3}[optimizer]
    hp = {**FAST, "optimizer": optimizer, "schedule": schedule, "epochs": 2, "lr": lr}
    result = train(small_cnn(), digits, hp)
    assert result.test_acc > 0.3
    if schedule == "none":
        assert [e.lr for e in result.history] == pytest.approx([lr, lr])
    else:
        assert result.history[1].lr < lr


def test_invalid_hyperparameters_are_refused_before_training(digits: LoadedDataset) -> None:
    module = small_cnn()
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(InvalidRequest) as err:
        train(module, digits, {"optimizer": "lion", "batch_size": 0})
    assert str(err.value) == (
        "invalid hyperparameters: optimizer must be one of adam, adamw, sgd, rmsprop, got 'lion'; "
        "batch_size must be an integer >= 1, got 0"
    )
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    with pytest.raises(InvalidRequest, match="unknown hyperparameter 'momentum'"):
        train(small_cnn(), digits, {"momentum": 0.9})


def test_the_loop_trains_with_the_one_hyperparameters_class(digits: LoadedDataset) -> None:
    hp = Hyperparameters(**{**FAST, "epochs": 1})
    assert Hyperparameters.of(hp) is hp
    assert Hyperparameters.of(hp.to_dict()) == hp
    assert Hyperparameters.of(None) == Hyperparameters()
    assert train(small_cnn(), digits, hp).config == hp


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TrainingError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError) as err:
            select_device("cuda")
        assert str(err.value) == (
            "device 'cuda' was requested but CUDA is not available on this machine "
            f"(torch {torch.__version__}); use --device cpu"
        )


def test_metrics_from_a_hand_made_confusion_matrix() -> None:
    # rows: true class, columns: predicted class; N = 20
    cm = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 4]])
    m = class_metrics(cm, ["a", "b", "c"])
    # a class's accuracy is its recall; one-vs-rest accuracy keeps its own name
    assert [x.accuracy for x in m] == [x.recall for x in m] == pytest.approx([5 / 6, 6 / 10, 1.0])
    # class a: TP 5, FP 2, FN 1, TN 12
    assert (m[0].one_vs_rest_accuracy, m[0].precision, m[0].recall, m[0].specificity, m[0].support) == (
        pytest.approx(17 / 20),
        pytest.approx(5 / 7),
        pytest.approx(5 / 6),
        pytest.approx(12 / 14),
        6,
    )
    # class b: TP 6, FP 1, FN 4, TN 9
    assert (m[1].one_vs_rest_accuracy, m[1].precision, m[1].recall, m[1].specificity, m[1].support) == (
        pytest.approx(15 / 20),
        pytest.approx(6 / 7),
        pytest.approx(6 / 10),
        pytest.approx(9 / 10),
        10,
    )
    # class c: TP 4, FP 2, FN 0, TN 14
    assert (m[2].one_vs_rest_accuracy, m[2].precision, m[2].recall, m[2].specificity, m[2].support) == (
        pytest.approx(18 / 20),
        pytest.approx(4 / 6),
        1.0,
        pytest.approx(14 / 16),
        4,
    )
    # a class never predicted and never present: undefined ratios are 0.0, not NaN
    empty = class_metrics(np.array([[3, 0], [0, 0]]), ["x", "y"])[1]
    assert (empty.precision, empty.recall, empty.specificity, empty.support) == (0.0, 0.0, 1.0, 0)


def test_confusion_matrix_and_evaluate_agree(digits: LoadedDataset) -> None:
    assert confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3).tolist() == [
        [1, 0, 0],
        [0, 1, 1],
        [0, 0, 1],
    ]
    module = small_cnn()
    module.train()
    ev = evaluate(module, digits.x_val, digits.y_val, num_classes=10, batch_size=50)
    assert module.training  # mode restored
    assert ev.support == digits.split_sizes["val"]
    assert ev.confusion.sum() == ev.support
    assert ev.accuracy == pytest.approx(np.trace(ev.confusion) / ev.support)
    with torch.no_grad():
        module.eval()
        logits = module(digits.x_val)
    expected = nn.functional.cross_entropy(logits, digits.y_val).item()
    assert ev.loss == pytest.approx(expected, rel=1e-5)


def test_out_of_memory_becomes_a_training_error(digits: LoadedDataset) -> None:
    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:  # what torch's CPU allocator raises when malloc fails
                raise RuntimeError(
                    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                    "memory: you tried to allocate 1099511627776 bytes."
                )
            return self.linear(x.flatten(1))

    with pytest.raises(TrainingError) as err:
        train(Hungry(), digits, {**FAST, "epochs": 2})
    assert str(err.value) == (
        "out of memory on cpu at epoch 1 with batch_size 64: try a smaller batch_size or a smaller model"
    )
    assert isinstance(err.value.__cause__, RuntimeError)


def test_other_errors_are_not_mistaken_for_out_of_memory(digits: LoadedDataset) -> None:
    bad = nn.Sequential(nn.Flatten(), nn.Linear(63, 10))  # wrong input size: a shape error
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        train(bad, digits, {**FAST, "epochs": 1})


def test_search_hyperparameters_and_built_modules(digits: LoadedDataset) -> None:
    arch = Architecture.from_json(
        {
            "layers": [
                {"type": "Conv2D", "filters": 16, "kernel": 3, "stride": 1, "padding": "same"},
                {"type": "Activation", "fn": "relu"},
                {"type": "MaxPool2D", "size": 2, "stride": 2},
            ]
        }
    )
    torch.manual_seed(0)
    module = build_module(arch, digits.input_shape, digits.num_classes)
    hp = Hyperparameters(epochs=3, batch_size=64, lr=3e-3, early_stop_patience=0)
    result = train(module, digits, hp)
    assert result.config.to_dict() == hp.to_dict()
    assert result.epochs_trained == 3 and result.test_acc > 0.5
