"""Ablations, variations, handcrafted edits and diffs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest
from nasdb.search import (
    Activation,
    Architecture,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    SearchSpace,
    ablations,
    count_params,
    diff,
    handcraft,
    infer_shapes,
    parse_change,
    replay,
    sample_architecture,
    structural_distance,
    variations,
)

SHAPE = (1, 28, 28)
PARENT = Architecture.of(
    Conv2D(32, 3), Activation("relu"), MaxPool2D(2, 2), Conv2D(64, 3), Activation("relu"),
    Dropout(0.25), Dense(128),
)


def _raises(kind: type[Exception], call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    return str(info.value)


# ---- ablations ---------------------------------------------------------------------------------


def test_one_ablation_per_layer() -> None:
    children, skipped = ablations(PARENT, SHAPE, 10)
    # Without the pool, Dense(128) sees 64x24x24 features: over REMAP's 3M cap for steering.
    assert skipped == [
        (2, "without it the model has 4738826 parameters, over the cap of 3000000"),
    ]
    assert [text for _, text in children] == [
        "removed Conv2D at index 0", "removed Activation at index 1",
        "removed Conv2D at index 3", "removed Activation at index 4",
        "removed Dropout at index 5", "removed Dense at index 6",
    ]
    for i, (child, _) in zip([0, 1, 3, 4, 5, 6], children, strict=True):
        assert child.layers == PARENT.layers[:i] + PARENT.layers[i + 1:]
        assert structural_distance(PARENT, child) == 1.0


def test_ablations_of_chosen_layers_and_the_size_cap() -> None:
    parent = Architecture.of(Conv2D(16, 3), MaxPool2D(2, 2), Dense(256))
    children, skipped = ablations(parent, SHAPE, 10, layers=[1, 2], max_params=1_000_000)
    assert [text for _, text in children] == ["removed Dense at index 2"]
    over = count_params(Architecture.of(Conv2D(16, 3), Dense(256)), SHAPE, 10)
    assert over == 2_771_882
    assert skipped == [
        (1, "without it the model has 2771882 parameters, over the cap of 1000000"),
    ]


def test_invalid_ablations_are_skipped_with_the_reason() -> None:
    parent = Architecture.of(Conv2D(8, 3), Conv2D(8, 9))  # itself too deep for 8x8
    children, skipped = ablations(parent, (1, 8, 8), 10)
    assert [text for _, text in children] == ["removed Conv2D at index 1"]
    assert skipped == [(0, "without it the model is invalid: layer 0 (Conv2D k9) does not fit its "
                           "input: kernel 9x9 is larger than the 8x8 feature map (input 1x8x8)")]


def test_ablation_requests_out_of_range_or_of_references() -> None:
    assert _raises(InvalidRequest, ablations, PARENT, SHAPE, 10, layers=[7]) == (
        "layer index 7 is out of range: the parent has 7 layers, so indices are 0..6"
    )
    assert _raises(InvalidRequest, ablations, Architecture(reference="vgg"), SHAPE, 10) == (
        "cannot make ablations of reference classifier 'vgg': it has no layer list; start from "
        "a sampled or handcrafted model"
    )


# ---- variations --------------------------------------------------------------------------------


def _new_layers_follow_the_chain(
    parent: Architecture, texts: list[str], space: SearchSpace
) -> None:
    """Rebuild the child, marking new layers, and check each was drawable after its predecessor."""
    changes = {c.index: c for c in (parse_change(parent, t) for t in texts)}
    child: list[tuple[Layer, bool]] = []
    for i in range(len(parent.layers) + 1):
        change = changes.get(i)
        old = parent.layers[i] if i < len(parent.layers) else None
        if change is not None and change.kind in ("prepend", "replace"):
            assert change.layer is not None
            child.append((change.layer, True))
            if change.kind == "replace":
                continue
        if change is not None and change.kind == "remove":
            continue
        if change is not None and change.kind == "reparameterize":
            old = change.layer
        if old is not None:
            child.append((old, False))
    for position, (layer, new) in enumerate(child):
        if new:
            previous = child[position - 1][0].TYPE if position else None
            after_dense = any(x.TYPE == "Dense" for x, _ in child[:position])
            assert layer.TYPE in space.transitions(previous, after_dense)


def _check_variations(
    parent: Architecture, shape: tuple[int, int, int], n: int, k: int, seed: int
) -> list[tuple[Architecture, list[str]]]:
    space = SearchSpace()
    kids = variations(parent, shape, 10, n=n, changes=k, seed=seed, space=space)
    assert len(kids) == n
    seen = {parent}
    for child, texts in kids:
        assert child not in seen  # distinct from the parent and the siblings
        seen.add(child)
        infer_shapes(child, shape, 10)
        assert count_params(child, shape, 10) <= 3_000_000
        assert len(texts) == min(k, len(parent.layers) + 1)
        indices = [parse_change(parent, t).index for t in texts]
        assert len(set(indices)) == len(indices)  # a layer changes at most once
        assert replay(parent, texts) == child  # the record is exactly what was applied
        assert structural_distance(parent, child) <= 2 * len(texts)
        _new_layers_follow_the_chain(parent, texts, space)
    return kids


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 5))
def test_variations_of_a_fixed_parent(seed: int, k: int) -> None:
    _check_variations(PARENT, SHAPE, n=5, k=k, seed=seed)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_variations_of_sampled_parents(seed: int) -> None:
    shape = random.Random(seed).choice([(1, 8, 8), (1, 28, 28), (3, 32, 32)])
    parent = sample_architecture(shape, 10, seed=seed)
    _check_variations(parent, shape, n=3, k=3, seed=seed)


def test_variations_are_reproducible() -> None:
    assert variations(PARENT, SHAPE, 10, seed=4) == variations(PARENT, SHAPE, 10, seed=4)
    assert variations(PARENT, SHAPE, 10, seed=4) != variations(PARENT, SHAPE, 10, seed=5)


def test_constraints_and_frozen_layers_are_respected() -> None:
    constraints = {1: {"reparameterize"}, 2: {"remove", "replace"}, 7: {"prepend"}}
    for seed in range(20):
        kids = variations(PARENT, SHAPE, 10, n=4, changes=2, seed=seed,
                          constraints=constraints, frozen={0, 3})
        for _, texts in kids:
            for text in texts:
                change = parse_change(PARENT, text)
                assert change.kind in constraints[change.index]
    for seed in range(10):
        for _, texts in variations(PARENT, SHAPE, 10, n=5, seed=seed, frozen={0, 2, 4, 6}):
            assert {parse_change(PARENT, t).index for t in texts} <= {1, 3, 5, 7}


def test_the_end_of_the_body_is_only_prepended_to() -> None:
    parent = Architecture.of(Activation("relu"))
    for _, texts in variations(parent, (1, 8, 8), 10, n=5, changes=1, seed=1,
                               constraints={1: {"prepend"}}):
        assert texts[0].startswith("prepended ") and texts[0].endswith(" before index 1")


def test_exhausted_neighbourhood_says_so() -> None:
    parent = Architecture.of(Activation("relu"))
    only = {0: {"reparameterize"}}
    kids = variations(parent, (1, 8, 8), 10, n=2, seed=0, constraints=only)
    assert {child for child, _ in kids} == {
        Architecture.of(Activation("tanh")), Architecture.of(Activation("sigmoid")),
    }
    assert sorted(texts[0] for _, texts in kids) == [
        "changed fn of Activation at index 0 from relu to sigmoid",
        "changed fn of Activation at index 0 from relu to tanh",
    ]
    assert _raises(InvalidRequest, variations, parent, (1, 8, 8), 10, n=3, seed=0,
                   constraints=only) == (
        "could not find 3 distinct valid variations in 600 attempts (found 2); allow more layers "
        "or change kinds, raise max_params (3000000), or ask for fewer"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"constraints": {1: {"remove"}}, "frozen": {1}},
         "layer 1 is frozen and cannot be changed; unfreeze it or leave it out of the allowed "
         "changes"),
        ({"constraints": {7: {"remove"}}},
         "position 7 is the end of the body (just before the head): it can only be prepended to"),
        ({"constraints": {9: {"remove"}}},
         "layer index 9 is out of range: the parent has 7 layers, so indices are 0..7 (7 is the "
         "position just before the head)"),
        ({"constraints": {0: {"swap"}}},
         "unknown change kind 'swap' for layer 0; use replace, reparameterize, remove, prepend"),
        ({"frozen": set(range(8))},
         "no layer may change: every position is frozen or has no allowed change kinds"),
        ({"n": 0}, "n must be a positive integer, got 0"),
    ],
)
def test_bad_variation_requests(kwargs: dict, message: str) -> None:
    assert _raises(InvalidRequest, variations, PARENT, SHAPE, 10, **kwargs) == message


# ---- handcrafted models and diffs --------------------------------------------------------------


def test_handcraft_edits_index_the_parent() -> None:
    child, texts = handcraft(PARENT, [
        {"op": "add", "index": 0, "layer": {"type": "BatchNorm"}},
        {"op": "remove", "index": 2},
        {"op": "reparameterize", "index": 3, "param": "filters", "value": 128},
        {"op": "replace", "index": 6, "layer": {"type": "Dense", "units": 64}},
        {"op": "add", "index": 7, "layer": {"type": "Dropout", "rate": 0.5}},
    ], input_shape=SHAPE, num_classes=10)
    assert child == Architecture.of(
        BatchNorm(), Conv2D(32, 3), Activation("relu"), Conv2D(128, 3), Activation("relu"),
        Dropout(0.25), Dense(64), Dropout(0.5),
    )
    assert texts == [
        "prepended BatchNorm before index 0",
        "removed MaxPool2D at index 2",
        "changed filters of Conv2D at index 3 from 64 to 128",
        "replaced Dense at index 6 with Dense(units=64)",
        "prepended Dropout(rate=0.5) before index 7",
    ]
    assert replay(PARENT, texts) == child


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([{"op": "remove", "index": 2},
          {"op": "reparameterize", "index": 2, "param": "size", "value": 3}],
         "conflicting changes at index 2: removed MaxPool2D at index 2 / changed size of "
         "MaxPool2D at index 2 from 2 to 3"),
        ([{"op": "reparameterize", "index": 1, "param": "units", "value": 3}],
         "layer 1 (Activation) has no hyperparameter 'units'; it has fn"),
        ([{"op": "reparameterize", "index": 0, "param": "kernel", "value": 0}],
         "layer 0 (Conv2D): Conv2D kernel must be a positive integer, got 0"),
        ([{"op": "remove", "index": 7}],
         "layer index 7 is out of range: the parent has 7 layers (indices 0..6)"),
        ([{"op": "add", "index": 8, "layer": {"type": "BatchNorm"}}],
         "cannot prepend at index 8: positions are 0..7 (7 is just before the head)"),
        ([{"op": "add", "index": 0, "layer": {"type": "Conv3D"}}],
         "layer 0: unknown layer type 'Conv3D'; known types: Activation, AvgPool2D, BatchNorm, "
         "Conv2D, ConvBlock, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, Residual, "
         "SepConv"),
        ([{"op": "swap", "index": 0}],
         "unknown edit op 'swap'; use add, remove, replace or reparameterize"),
    ],
)
def test_bad_handcraft_edits(edits: list, message: str) -> None:
    assert _raises(InvalidRequest, handcraft, PARENT, edits) == message


def test_handcraft_checks_shapes_when_given_the_input() -> None:
    edits = [{"op": "add", "index": 7, "layer": {"type": "GlobalAvgPool"}}]
    child, _ = handcraft(PARENT, edits)  # no input shape: not checked
    assert child.layers[-1] == GlobalAvgPool()
    assert _raises(InvalidArchitecture, handcraft, PARENT, edits, input_shape=SHAPE,
                   num_classes=10).startswith("layer 7 (GlobalAvgPool) needs a 3-D feature map")


def test_diff_of_a_list_written_from_scratch() -> None:
    child = Architecture.of(
        Conv2D(32, 3), Activation("tanh"), Conv2D(64, 5, padding="same"), Activation("relu"),
        Dropout(0.25), Dense(128), Dense(64),
    )
    assert diff(PARENT, child) == [
        "changed fn of Activation at index 1 from relu to tanh",
        "removed MaxPool2D at index 2",
        "replaced Conv2D at index 3 with Conv2D(filters=64, kernel=5, stride=1, padding=same)",
        "prepended Dense(units=64) before index 7",
    ]
    assert replay(PARENT, diff(PARENT, child)) == child
    assert diff(PARENT, PARENT) == []


_layers = st.sampled_from([
    Conv2D(16, 3), Conv2D(32, 3), Conv2D(16, 5, padding="same"), MaxPool2D(2, 2), AvgPool2D(3, 2),
    Dropout(0.25), Dropout(0.5), BatchNorm(), Activation("relu"), Activation("tanh"), Dense(64),
    Dense(128), Flatten(), GlobalAvgPool(),
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_layers, max_size=10), st.lists(_layers, max_size=10))
def test_diff_replays_to_the_child(a: list[Layer], b: list[Layer]) -> None:
    parent, child = Architecture(tuple(a)), Architecture(tuple(b))
    assert replay(parent, diff(parent, child)) == child
