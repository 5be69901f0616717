"""Structural (OTMANN-style) and prediction (Hamming) distances."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from nasdb.schema.errors import InvalidRequest
from nasdb.search import (
    Activation,
    Architecture,
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    MaxPool2D,
    SearchSpace,
    prediction_distance,
    sample_architecture,
    structural_distance,
)


def test_published_mismatch_costs() -> None:
    d = structural_distance
    assert d([Conv2D(32, 1)], [Conv2D(32, 3)]) == pytest.approx(0.2)
    assert d([Conv2D(32, 1)], [Conv2D(32, 5)]) == pytest.approx(0.3)
    assert d([Conv2D(32, 3)], [Conv2D(32, 5)]) == pytest.approx(0.2)
    assert d([MaxPool2D(2, 2)], [MaxPool2D(3, 2)]) == pytest.approx(0.2)
    assert d([Activation("tanh")], [Activation("relu")]) == pytest.approx(0.25)
    assert d([Activation("tanh")], [Activation("sigmoid")]) == pytest.approx(0.1)
    assert d([Activation("relu")], [Activation("sigmoid")]) == pytest.approx(0.25)


def test_non_assignment_and_unmatchable_kinds() -> None:
    d = structural_distance
    assert d([], []) == 0
    assert d([Conv2D(32, 3)], []) == 1
    assert d([Conv2D(32, 3)], [Dense(32)]) == 2  # different kinds: both left unassigned
    assert d([MaxPool2D(2, 2)], [AvgPool2D(2, 2)]) == 2
    # a layer moved to another place costs nothing: the transport ignores order
    assert d([Conv2D(8, 3), Dropout(0.5)], [Dropout(0.5), Conv2D(8, 3)]) == 0
    assert d(Architecture(reference="vgg"), Architecture(reference="vgg")) == 0
    assert d(Architecture(reference="vgg"), Architecture(reference="cnn")) == 2
    assert d(Architecture(reference="vgg"), Architecture.of(Dense(8))) == 2


def test_metric_properties_on_sampled_architectures() -> None:
    rng = random.Random(3)
    archs = [
        sample_architecture((1, 28, 28), 10, rng=rng, space=SearchSpace.extended())
        for _ in range(18)
    ]
    for a, b in itertools.combinations(archs, 2):
        assert structural_distance(a, b) == structural_distance(b, a)
        assert (structural_distance(a, b) == 0) == (a.layers == b.layers or
                                                    sorted(map(str, a.layers)) ==
                                                    sorted(map(str, b.layers)))
    for a in archs:
        assert structural_distance(a, a) == 0
    for a, b, c in itertools.permutations(archs[:10], 3):
        assert structural_distance(a, c) <= structural_distance(a, b) + structural_distance(
            b, c) + 1e-9


def test_prediction_distance_is_hamming() -> None:
    a = bytes([0, 1, 2, 3, 4])
    b = bytes([0, 1, 9, 3, 0])
    assert prediction_distance(a, b) == 2
    assert prediction_distance(np.frombuffer(a, np.uint8), b) == 2
    assert prediction_distance(a, a) == 0
    assert prediction_distance(np.array([1, 2, 3]), np.array([3, 2, 1])) == 2
    with pytest.raises(InvalidRequest) as info:
        prediction_distance(a, b[:3])
    assert str(info.value) == (
        "prediction vectors have different lengths (5 and 3); compare models evaluated on the "
        "same test split"
    )
