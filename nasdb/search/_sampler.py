"""REMAP's Markov-chain sampler of architectures (and, on request, hyperparameters)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from ._architecture import Architecture
from ._hyperparameters import Hyperparameters, HyperparameterSpace
from ._layers import Layer
from ._shapes import Shape, check_input_shape, infer_shapes, layer_output
from ._space import SOFTMAX, SearchSpace

#: How often a layer that does not fit is redrawn before the body is ended instead.
_FIT_ATTEMPTS = 50


def next_layer(
    space: SearchSpace,
    rng: random.Random,
    previous: str | None,
    after_dense: bool,
    shape: Shape,
    index: int,
) -> tuple[Layer, Shape] | None:
    """Draw the layer after ``previous`` that fits ``shape``; None means Softmax (end the body).

    A drawn layer that does not fit is redrawn from the same list (type and hyperparameters);
    if none fits after a bounded number of draws, the body ends.
    """
    choices = space.transitions(previous, after_dense)
    for _ in range(_FIT_ATTEMPTS):
        kind = rng.choice(choices)
        if kind == SOFTMAX:
            return None
        try:
            layer = space.draw(kind, rng, shape)
            out, _, _ = layer_output(layer, index, shape)
        except InvalidArchitecture:
            continue
        if not space.fits(layer, shape, out, index):
            continue
        return layer, out
    return None


def sample_body(
    space: SearchSpace, rng: random.Random, input_shape: Shape
) -> tuple[Layer, ...]:
    """One walk of the chain from the start state to Softmax (or ``space.max_layers``)."""
    layers: list[Layer] = []
    shape = input_shape
    previous: str | None = None
    after_dense = False
    while len(layers) < space.max_layers:
        drawn = next_layer(space, rng, previous, after_dense, shape, len(layers))
        if drawn is None:
            break
        layer, shape = drawn
        layers.append(layer)
        previous = layer.TYPE
        after_dense = after_dense or layer.TYPE == "Dense"
    return tuple(layers)


def sample_architecture(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    space: SearchSpace | None = None,
    seed: int | None = None,
    rng: random.Random | None = None,
    max_attempts: int = 1000,
) -> Architecture:
    """Sample one valid architecture from REMAP's chain (or ``space``) within ``space.max_params``
    (and ``space.max_mflops`` FLOPs per image when set).

    Reproducible: the same ``seed`` (or ``rng`` state) gives the same architecture. An
    architecture over a cap is redrawn whole; `InvalidRequest` after ``max_attempts``.
    """
    space = space or SearchSpace()
    rng = rng if rng is not None else random.Random(seed)
    shape = check_input_shape(input_shape, num_classes)
    for _ in range(max_attempts):
        arch = Architecture(sample_body(space, rng, shape))
        if within_bounds(arch, space, shape, num_classes):
            return arch
    cost = f" and {space.max_mflops:g} MFLOPs" if space.max_mflops else ""
    raise InvalidRequest(
        f"could not sample an architecture with at most {space.max_params} parameters{cost} in "
        f"{max_attempts} attempts; raise max_params (or max_mflops) or shrink the filter/unit "
        "grids"
    )


def within_bounds(arch: Architecture, space: SearchSpace, input_shape: Sequence[int],
                  num_classes: int) -> bool:
    """Whether ``arch`` keeps to the space's parameter cap and cost bound (MFLOPs per image)."""
    infos = infer_shapes(arch, input_shape, num_classes)
    if sum(i.params for i in infos) > space.max_params:
        return False
    return not space.max_mflops or sum(i.flops for i in infos) <= space.max_mflops * 1e6


def sample(
    input_shape: Sequence[int],
    num_classes: int,
    n: int,
    *,
    seed: int = 0,
    space: SearchSpace | None = None,
    hyperparameters: HyperparameterSpace | None = None,
) -> list[tuple[Architecture, Hyperparameters]]:
    """``n`` sampled (architecture, hyperparameters) pairs from one ``random.Random(seed)``.

    Without a hyperparameter space every pair gets the REMAP defaults (`Hyperparameters()`).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidRequest(f"n must be a positive integer, got {n!r}")
    rng = random.Random(seed)
    out: list[tuple[Architecture, Hyperparameters]] = []
    for _ in range(n):
        arch = sample_architecture(input_shape, num_classes, space=space, rng=rng)
        hp = hyperparameters.sample(rng) if hyperparameters is not None else Hyperparameters()
        out.append((arch, hp))
    return out
