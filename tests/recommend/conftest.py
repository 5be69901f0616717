"""Fixtures for nasdb.recommend: a small self-contained architecture generator and real data.

The generator is deliberately independent of nasdb.search (written concurrently): a REMAP-like
Markov chain over layer types with the design's grids, plus VGG-like block stacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nasdb.recommend import ArchitectureEncoder, tokenize

Layer = dict[str, Any]

_NEXT: dict[str, list[str]] = {
    "start": ["Conv2D"] * 6 + ["Dense", "AvgPool2D", "MaxPool2D", "Dropout", "Activation", "end"],
    "Conv2D": ["Activation"] * 3 + ["Conv2D", "Dropout", "AvgPool2D", "Dense", "end"],
    "Dense": ["Activation"] * 3 + ["Dropout", "Dense", "end"],
    "AvgPool2D": ["Conv2D"] * 2 + ["Dense", "Dropout", "AvgPool2D", "Activation", "end"],
    "MaxPool2D": ["Conv2D"] * 2 + ["Dense", "Dropout", "MaxPool2D", "Activation", "end"],
    "Dropout": ["AvgPool2D", "Conv2D", "Conv2D", "Dense", "end"],
    "Activation": ["AvgPool2D", "Conv2D", "Conv2D", "Conv2D", "Dense", "Dropout", "end"],
    "BatchNorm": ["Activation", "Conv2D", "end"],
}


def _layer(kind: str, rng: np.random.Generator) -> Layer:
    if kind == "Conv2D":
        return {
            "type": "Conv2D",
            "filters": int(rng.choice([16, 32, 64, 128])),
            "kernel": int(rng.choice([1, 3, 5])),
            "stride": 1,
            "padding": str(rng.choice(["valid", "same"])),
        }
    if kind in ("MaxPool2D", "AvgPool2D"):
        return {"type": kind, "size": int(rng.choice([2, 3, 5])), "stride": 2}
    if kind == "Dense":
        return {"type": "Dense", "units": int(rng.choice([16, 64, 128, 256]))}
    if kind == "Dropout":
        return {"type": "Dropout", "rate": float(rng.choice(np.arange(1, 8) * 0.125))}
    if kind == "Activation":
        return {"type": "Activation", "fn": str(rng.choice(["relu", "tanh", "sigmoid"]))}
    return {"type": kind}


def random_architecture(rng: np.random.Generator, max_len: int = 12) -> list[Layer]:
    """A REMAP-style Markov-chain architecture (at least one layer)."""
    layers: list[Layer] = []
    previous = "start"
    while len(layers) < max_len:
        kind = str(rng.choice(_NEXT[previous]))
        if kind == "end":
            if layers:
                break
            continue
        layers.append(_layer(kind, rng))
        previous = kind
        if kind == "Dense":  # after the first Dense only dense-side layers follow
            _NEXT_after = ["Activation", "Dropout", "Dense", "end"]
            while len(layers) < max_len:
                nxt = str(rng.choice(_NEXT_after))
                if nxt == "end":
                    break
                layers.append(_layer(nxt, rng))
            break
    return layers


def vgg_architecture(rng: np.random.Generator) -> list[Layer]:
    """A VGG-like body: 1-3 blocks of Conv3x3-relu-Conv3x3-relu-MaxPool, then Dense-relu."""
    layers: list[Layer] = []
    filters = int(rng.choice([16, 32, 64]))
    for _ in range(int(rng.integers(1, 4))):
        for _ in range(2):
            layers.append(
                {"type": "Conv2D", "filters": filters, "kernel": 3, "stride": 1, "padding": "same"}
            )
            layers.append({"type": "Activation", "fn": "relu"})
        layers.append({"type": "MaxPool2D", "size": 2, "stride": 2})
        filters = min(filters * 2, 128)
    if rng.random() < 0.7:
        layers += [{"type": "Dense", "units": int(rng.choice([64, 128, 256]))},
                   {"type": "Activation", "fn": "relu"}]
    return layers


class ArchGen:
    """The generators, handed to tests as the `archgen` fixture (tests cannot import conftest)."""

    random = staticmethod(random_architecture)
    vgg = staticmethod(vgg_architecture)


@pytest.fixture(scope="session")
def archgen() -> type[ArchGen]:
    return ArchGen


@pytest.fixture(scope="session")
def corpus() -> list[list[Layer]]:
    """The encoder's training corpus: random chain architectures plus VGG-like ones."""
    rng = np.random.default_rng(123)
    archs = [random_architecture(rng) for _ in range(600)]
    archs += [vgg_architecture(rng) for _ in range(150)]
    return archs


@pytest.fixture(scope="session")
def encoder(corpus: list[list[Layer]]) -> ArchitectureEncoder:
    """One encoder fitted once per session (a few seconds)."""
    return ArchitectureEncoder.fit([tokenize(a) for a in corpus], dim=32, seed=0)


def synthetic_accuracy(layers: list[Layer], lr: float, rng: np.random.Generator) -> float:
    """A made-up, structured ground truth: convolutions and relu help, sigmoid and bad lr hurt."""
    convs = sum(1 for layer in layers if layer["type"] == "Conv2D")
    relus = sum(1 for layer in layers if layer.get("fn") == "relu")
    sigmoids = sum(1 for layer in layers if layer.get("fn") == "sigmoid")
    score = 0.5 + 0.08 * min(convs, 4) + 0.04 * min(relus, 3) - 0.06 * sigmoids
    score -= 0.08 * abs(np.log10(lr) + 3.0)
    return float(np.clip(score + rng.normal(0, 0.02), 0.05, 0.99))


def params_of(layers: list[Layer]) -> int:
    """A rough parameter count (good enough as a feature for these tests)."""
    total, channels = 0, 1
    for layer in layers:
        if layer["type"] == "Conv2D":
            total += layer["kernel"] ** 2 * channels * layer["filters"] + layer["filters"]
            channels = layer["filters"]
        elif layer["type"] == "Dense":
            total += channels * 16 * layer["units"] + layer["units"]
            channels = layer["units"]
    return total + channels * 10 + 10


@pytest.fixture(scope="session")
def predictor_data(encoder: ArchitectureEncoder) -> tuple[list[Any], list[float], list[Layer]]:
    """80 (row, accuracy) pairs over random architectures and learning rates, and their layers."""
    from nasdb.recommend import PredictorRow

    rng = np.random.default_rng(5)
    rows, targets, layer_lists = [], [], []
    for i in range(80):
        layers = vgg_architecture(rng) if i % 4 == 0 else random_architecture(rng)
        lr = float(10 ** rng.uniform(-4.5, -1.5))
        params = params_of(layers)
        rows.append(
            PredictorRow(
                similarity={"digits": 1.0, "fashion-mnist": 0.0},
                architecture=encoder.encode(layers),
                hyperparameters={"optimizer": str(rng.choice(["adam", "sgd"])), "lr": lr,
                                 "batch_size": 128, "weight_decay": 0.0, "epochs": 5},
                params=params,
                flops=params * 100,
                model_id=f"m{i + 1}",
            )
        )
        targets.append(synthetic_accuracy(layers, lr, rng))
        layer_lists.append(layers)
    return rows, targets, layer_lists


@pytest.fixture(scope="session")
def predictor(predictor_data: tuple[list[Any], list[float], list[Layer]]) -> Any:
    """An AccuracyPredictor fitted once per session on `predictor_data`."""
    from nasdb.recommend import AccuracyPredictor

    rows, targets, _ = predictor_data
    return AccuracyPredictor.fit(rows, targets, seed=0)
