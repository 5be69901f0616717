"""Steering generators: ablations and variations of a parent architecture (pure functions)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence, Set

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from ._architecture import Architecture
from ._changes import CHANGE_KINDS, Change, apply_changes, remove
from ._layers import Layer
from ._sampler import next_layer
from ._shapes import Shape, check_input_shape, count_params, layer_output
from ._space import SearchSpace

#: REMAP's size cap for ablations and variations.
STEERING_MAX_PARAMS = 3_000_000


def _no_reference(parent: Architecture, what: str) -> None:
    if parent.reference is not None:
        raise InvalidRequest(
            f"cannot make {what} of reference classifier {parent.reference!r}: it has no layer "
            "list; start from a sampled or handcrafted model"
        )


def _check_index(parent: Architecture, index: object, *, allow_end: bool = False) -> int:
    last = len(parent.layers) if allow_end else len(parent.layers) - 1
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= last:
        end = f" ({last} is the position just before the head)" if allow_end else ""
        raise InvalidRequest(
            f"layer index {index!r} is out of range: the parent has {len(parent.layers)} layers, "
            f"so indices are 0..{last}{end}"
        )
    return index


def ablations(
    arch: Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    layers: Sequence[int] | None = None,
    *,
    max_params: int = STEERING_MAX_PARAMS,
) -> tuple[list[tuple[Architecture, str]], list[tuple[int, str]]]:
    """One child per removed layer (all layers, or the ``layers`` asked for, in that order).

    Returns ``(children, skipped)``: each child with its change text (``removed MaxPool2D at
    index 0``), and each index whose child is invalid or over ``max_params`` with the reason.
    Raises `InvalidRequest` for a reference parent or an index out of range.
    """
    _no_reference(arch, "ablations")
    shape = check_input_shape(input_shape, num_classes)
    indices = list(range(len(arch.layers))) if layers is None else list(dict.fromkeys(layers))
    for index in indices:
        _check_index(arch, index)
    children: list[tuple[Architecture, str]] = []
    skipped: list[tuple[int, str]] = []
    for index in indices:
        change = remove(arch, index)
        child = apply_changes(arch, [change])
        try:
            params = count_params(child, shape, num_classes)
        except InvalidArchitecture as e:
            skipped.append((index, f"without it the model is invalid: {e}"))
            continue
        if params > max_params:
            skipped.append(
                (index, f"without it the model has {params} parameters, over the cap of "
                        f"{max_params}")
            )
            continue
        children.append((child, str(change)))
    return children, skipped


def _allowed_changes(
    parent: Architecture,
    space: SearchSpace,
    constraints: Mapping[int, Set[str]] | None,
    frozen: Set[int] | None,
) -> dict[int, list[str]]:
    """Per parent position, the change kinds that are allowed and possible (sorted)."""
    n = len(parent.layers)
    frozen_set = set(frozen or ())
    for index in sorted(frozen_set):
        _check_index(parent, index, allow_end=True)
    if constraints is None:
        asked: dict[int, set[str]] = {i: set(CHANGE_KINDS) for i in range(n)}
        asked[n] = {"prepend"}
    else:
        asked = {}
        for index, kinds in constraints.items():
            _check_index(parent, index, allow_end=True)
            unknown = sorted(set(kinds) - set(CHANGE_KINDS))
            if unknown:
                raise InvalidRequest(
                    f"unknown change kind {unknown[0]!r} for layer {index}; use "
                    f"{', '.join(CHANGE_KINDS)}"
                )
            if index == n and set(kinds) - {"prepend"}:
                raise InvalidRequest(
                    f"position {n} is the end of the body (just before the head): it can only be "
                    "prepended to"
                )
            if index in frozen_set and kinds:
                raise InvalidRequest(
                    f"layer {index} is frozen and cannot be changed; unfreeze it or leave it out "
                    "of the allowed changes"
                )
            asked[index] = set(kinds)
    allowed: dict[int, list[str]] = {}
    for index in sorted(asked):
        if index in frozen_set:
            continue
        kinds = set(asked[index])
        if index < n and not _reparameterizable(parent.layers[index], space):
            kinds.discard("reparameterize")
        if kinds:
            allowed[index] = sorted(kinds)
    return allowed


def _alternatives(layer: Layer, space: SearchSpace) -> dict[str, list[object]]:
    """For each tunable hyperparameter, the grid values different from the layer's."""
    out: dict[str, list[object]] = {}
    for name in space.tunable(layer.TYPE):
        values = [v for v in space.grid(layer.TYPE, name) if v != getattr(layer, name)]
        if values:
            out[name] = values
    return out


def _reparameterizable(layer: Layer, space: SearchSpace) -> bool:
    return bool(_alternatives(layer, space))


def _draw_new(
    space: SearchSpace,
    rng: random.Random,
    previous: str | None,
    after_dense: bool,
    shape: Shape,
    index: int,
    unlike: Layer | None = None,
) -> tuple[Layer, Shape] | None:
    """A new layer from the chain given the previous layer; Softmax and ``unlike`` are redrawn."""
    for _ in range(20):
        drawn = next_layer(space, rng, previous, after_dense, shape, index)
        if drawn is not None and drawn[0] != unlike:
            return drawn
    return None


def _one_variation(
    parent: Architecture,
    space: SearchSpace,
    rng: random.Random,
    shape: Shape,
    allowed: dict[int, list[str]],
    k: int,
) -> list[Change] | None:
    """Draw k changes at distinct positions; None when a drawn layer could not be placed."""
    n = len(parent.layers)
    positions = sorted(rng.sample(sorted(allowed), k))
    kinds = {p: rng.choice(allowed[p]) for p in positions}
    changes: list[Change] = []
    previous: str | None = None
    after_dense = False
    emitted = 0

    def emit(layer: Layer) -> bool:
        nonlocal shape, previous, after_dense, emitted
        try:
            shape, _, _ = layer_output(layer, emitted, shape)
        except InvalidArchitecture:
            return False
        previous, emitted = layer.TYPE, emitted + 1
        after_dense = after_dense or layer.TYPE == "Dense"
        return True

    for i in range(n + 1):
        kind = kinds.get(i)
        old = parent.layers[i] if i < n else None
        if kind in ("prepend", "replace"):
            drawn = _draw_new(space, rng, previous, after_dense, shape, emitted,
                              unlike=old if kind == "replace" else None)
            if drawn is None:
                return None
            changes.append(Change("replace", i, old, drawn[0]) if kind == "replace"
                           else Change("prepend", i, None, drawn[0]))
            emit(drawn[0])
            if kind == "replace" or old is None:
                continue
        elif kind == "remove":
            changes.append(Change("remove", i, old))
            continue
        elif kind == "reparameterize" and old is not None:
            options = _alternatives(old, space)
            param = rng.choice(sorted(options))
            value = rng.choice(options[param])
            try:
                new = apply_changes(Architecture((old,)), [
                    Change("reparameterize", 0, old, None, param, value)
                ]).layers[0]
            except InvalidArchitecture:  # e.g. same padding with an even kernel
                return None
            changes.append(Change("reparameterize", i, old, new, param, value))
            old = new
        if old is not None and not emit(old):
            return None
    return changes


def variations(
    arch: Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    n: int = 5,
    changes: int = 3,
    *,
    seed: int | None = None,
    rng: random.Random | None = None,
    constraints: Mapping[int, Set[str]] | None = None,
    frozen: Set[int] | None = None,
    max_params: int = STEERING_MAX_PARAMS,
    space: SearchSpace | None = None,
) -> list[tuple[Architecture, list[str]]]:
    """``n`` distinct valid children with ``changes`` random changes each, and their change texts.

    Each change picks a not-yet-changed allowed position and a kind from {replace,
    reparameterize, remove, prepend}; position ``len(arch.layers)`` (just before the head) can
    only be prepended to. ``constraints`` maps a position to the kinds allowed there (positions
    not in it do not change); ``frozen`` positions never change. Replace/prepend draw from the
    Markov chain of ``space`` given the previous layer; reparameterize picks one hyperparameter
    and a different grid value. When fewer positions may change than ``changes``, each child
    changes all of them. Every child passes shape inference, has at most ``max_params``
    parameters, and differs from the parent and its siblings. Change indices refer to the
    parent, and `replay` of a child's texts on the parent gives exactly the child.

    Raises `InvalidRequest` for bad arguments, a frozen layer named in ``constraints``, or when
    ``n`` distinct valid children are not found within a bounded number of attempts.
    Reproducible for a given ``seed`` (or ``rng`` state).
    """
    _no_reference(arch, "variations")
    shape = check_input_shape(input_shape, num_classes)
    for name, value in (("n", n), ("changes", changes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{name} must be a positive integer, got {value!r}")
    space = space or SearchSpace()
    rng = rng if rng is not None else random.Random(seed)
    allowed = _allowed_changes(arch, space, constraints, frozen)
    if not allowed:
        raise InvalidRequest(
            "no layer may change: every position is frozen or has no allowed change kinds"
        )
    k = min(changes, len(allowed))
    seen: set[Architecture] = {arch}
    children: list[tuple[Architecture, list[str]]] = []
    attempts = 200 * n
    for _ in range(attempts):
        if len(children) == n:
            break
        drawn = _one_variation(arch, space, rng, shape, allowed, k)
        if drawn is None:
            continue
        child = apply_changes(arch, drawn)
        if child in seen:
            continue
        try:
            params = count_params(child, shape, num_classes)
        except InvalidArchitecture:
            continue
        if params > max_params:
            continue
        seen.add(child)
        children.append((child, [str(c) for c in drawn]))
    if len(children) < n:
        raise InvalidRequest(
            f"could not find {n} distinct valid variations in {attempts} attempts (found "
            f"{len(children)}); allow more layers or change kinds, raise max_params "
            f"({max_params}), or ask for fewer"
        )
    return children
