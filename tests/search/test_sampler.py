"""REMAP's Markov-chain sampler: the tables, reproducibility, and every transition taken."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from nasdb.schema.errors import InvalidRequest
from nasdb.search import (
    REMAP_TABLE,
    REMAP_TABLE_AFTER_DENSE,
    SOFTMAX,
    START,
    Architecture,
    Hyperparameters,
    HyperparameterSpace,
    SearchSpace,
    count_params,
    infer_shapes,
    sample,
    sample_architecture,
)


def test_tables_are_remaps_published_lists() -> None:
    """DESIGN.md's appendix, transcribed independently of the implementation."""
    expected = {
        START: {"Conv2D": 6, "Dense": 1, "AvgPool2D": 1, "MaxPool2D": 1, "Dropout": 1,
                "Activation": 1, SOFTMAX: 1},
        "Conv2D": {"Activation": 3, "Conv2D": 1, "Dropout": 1, "AvgPool2D": 1, "Dense": 1,
                   SOFTMAX: 1},
        "Dense": {"Activation": 3, "Dropout": 1, "AvgPool2D": 1, "Dense": 1, SOFTMAX: 1},
        "AvgPool2D": {"Conv2D": 2, "Dense": 1, "Dropout": 1, "AvgPool2D": 1, "Activation": 1,
                      SOFTMAX: 1},
        "Dropout": {"AvgPool2D": 1, "Conv2D": 2, "Dense": 1, SOFTMAX: 1},
        "Activation": {"AvgPool2D": 1, "Conv2D": 3, "Dense": 1, "Dropout": 1, SOFTMAX: 1},
    }
    expected["MaxPool2D"] = expected["AvgPool2D"]
    assert {k: dict(Counter(v)) for k, v in REMAP_TABLE.items()} == expected
    after = {k: set(v) for k, v in REMAP_TABLE_AFTER_DENSE.items()}
    assert after["Dropout"] == {"Dense", SOFTMAX}
    assert after["Activation"] == {"Dense", "Dropout", SOFTMAX}
    assert after["AvgPool2D"] == after["MaxPool2D"] == {"Dense", "Dropout", "Activation", SOFTMAX}
    space = SearchSpace()
    assert space.transitions(None, False) == REMAP_TABLE[START]
    assert space.transitions("Dropout", True) == REMAP_TABLE_AFTER_DENSE["Dropout"]


def _walk_is_allowed(arch: Architecture, space: SearchSpace) -> None:
    previous: str | None = None
    after_dense = False
    for layer in arch.layers:
        assert layer.TYPE in space.transitions(previous, after_dense), (previous, arch)
        previous, after_dense = layer.TYPE, after_dense or layer.TYPE == "Dense"
    if len(arch.layers) < space.max_layers:
        assert SOFTMAX in space.transitions(previous, after_dense)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_transition_is_in_the_table_and_every_value_on_the_grid(shape: tuple) -> None:
    space = SearchSpace()
    rng = random.Random(11)
    kinds: Counter[str] = Counter()
    for _ in range(150):
        arch = sample_architecture(shape, 10, rng=rng)
        infer_shapes(arch, shape, 10)  # valid
        assert count_params(arch, shape, 10) <= 1_000_000
        _walk_is_allowed(arch, space)
        for layer in arch.layers:
            kinds[layer.TYPE] += 1
            for name in space.tunable(layer.TYPE):
                assert getattr(layer, name) in space.grid(layer.TYPE, name)
    assert set(kinds) <= {"Conv2D", "Dense", "AvgPool2D", "MaxPool2D", "Dropout", "Activation"}
    assert {"Conv2D", "Dense", "Activation", "Dropout"} <= set(kinds)


def test_first_layer_follows_the_start_weights() -> None:
    """On 28x28 every first layer fits, so Conv2D (6 of 12 entries) starts about half the time."""
    rng = random.Random(5)
    space = SearchSpace(max_params=10**12)
    firsts: Counter[str] = Counter()
    for _ in range(1200):
        arch = sample_architecture((1, 28, 28), 10, rng=rng, space=space)
        firsts[arch.layer_types[0] if arch.layers else SOFTMAX] += 1
    assert 0.45 < firsts["Conv2D"] / 1200 < 0.55
    assert 0.05 < firsts[SOFTMAX] / 1200 < 0.12  # Softmax first: the empty body


def test_same_seed_same_architectures() -> None:
    first = [sample_architecture((1, 28, 28), 10, seed=s) for s in range(20)]
    again = [sample_architecture((1, 28, 28), 10, seed=s) for s in range(20)]
    assert first == again
    assert len(set(first)) > 10
    batch = sample((1, 28, 28), 10, 8, seed=3, hyperparameters=HyperparameterSpace())
    assert batch == sample((1, 28, 28), 10, 8, seed=3, hyperparameters=HyperparameterSpace())
    assert batch != sample((1, 28, 28), 10, 8, seed=4, hyperparameters=HyperparameterSpace())
    assert all(hp == Hyperparameters() for _, hp in sample((1, 8, 8), 10, 3, seed=0))


def test_size_cap_redraws_whole_architectures() -> None:
    space = SearchSpace(max_params=20_000)
    rng = random.Random(1)
    for _ in range(50):
        assert count_params(sample_architecture((3, 32, 32), 10, rng=rng, space=space),
                            (3, 32, 32), 10) <= 20_000
    with pytest.raises(InvalidRequest) as info:
        sample_architecture((3, 32, 32), 10, space=SearchSpace(max_params=10), seed=0,
                            max_attempts=20)
    assert str(info.value) == (
        "could not sample an architecture with at most 10 parameters in 20 attempts; raise "
        "max_params (or max_mflops) or shrink the filter/unit grids"
    )


def test_extended_space_uses_its_additions_and_stays_valid() -> None:
    space = SearchSpace.extended()
    rng = random.Random(9)
    kinds: Counter[str] = Counter()
    paddings: Counter[str] = Counter()
    for _ in range(300):
        arch = sample_architecture((1, 28, 28), 10, rng=rng, space=space)
        infer_shapes(arch, (1, 28, 28), 10)
        _walk_is_allowed(arch, space)
        kinds.update(arch.layer_types)
        paddings.update(layer.padding for layer in arch.layers if layer.TYPE == "Conv2D")
    assert {"BatchNorm", "GlobalAvgPool", "Flatten", "MaxPool2D"} <= set(kinds)
    assert paddings["same"] > 0 and paddings["valid"] > 0
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_bad_spaces_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="search space filters must not be empty"):
        SearchSpace(filters=())
    with pytest.raises(InvalidRequest, match="unknown value 'swish'"):
        SearchSpace(activations=("swish",))
    with pytest.raises(InvalidRequest, match="unknown search space setting 'depth'"):
        SearchSpace.from_dict({"depth": 3})
