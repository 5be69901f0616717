"""Shape inference, and exact parameter / FLOP counts against the built torch modules."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

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
    LayerInfo,
    MaxPool2D,
    SearchSpace,
    count_flops,
    count_params,
    infer_shapes,
    sample_architecture,
)
from nasdb.trainers.build import build_module


def _error(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int = 10) -> str:
    with pytest.raises(InvalidArchitecture) as info:
        infer_shapes(arch, input_shape, num_classes)
    return str(info.value)


def test_kernel_larger_than_the_feature_map() -> None:
    arch = Architecture.of(Conv2D(16, 3), MaxPool2D(2, 2), Activation("relu"), Conv2D(32, 5))
    assert _error(arch, (1, 9, 9)) == (
        "layer 3 (Conv2D k5) does not fit its input: kernel 5x5 is larger than the 3x3 feature "
        "map (input 16x3x3)"
    )


def test_pool_larger_than_the_feature_map() -> None:
    arch = Architecture.of(Conv2D(8, 5), AvgPool2D(5, 2))
    assert _error(arch, (1, 8, 8)) == (
        "layer 1 (AvgPool2D 5) does not fit its input: pool 5x5 is larger than the 4x4 feature "
        "map (input 8x4x4)"
    )


def test_spatial_layer_after_a_dense_layer() -> None:
    arch = Architecture.of(Conv2D(8, 3), Dense(128), Activation("relu"), Conv2D(8, 3))
    assert _error(arch, (1, 8, 8)) == (
        "layer 3 (Conv2D k3) needs a 3-D feature map but its input is a flat vector of 128 "
        "features (flattened at layer 1, Dense); spatial layers must come before the first "
        "Dense, Flatten or GlobalAvgPool"
    )


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((Conv2D(8, 3), GlobalAvgPool(), MaxPool2D(2, 2)),
         "layer 2 (MaxPool2D 2) needs a 3-D feature map but its input is a flat vector of 8 "
         "features (flattened at layer 1, GlobalAvgPool); spatial layers must come before the "
         "first Dense, Flatten or GlobalAvgPool"),
        ((Flatten(), GlobalAvgPool()),
         "layer 1 (GlobalAvgPool) needs a 3-D feature map but its input is a flat vector of 64 "
         "features (flattened at layer 0, Flatten); spatial layers must come before the first "
         "Dense, Flatten or GlobalAvgPool"),
        ((Conv2D(4, 9),),
         "layer 0 (Conv2D k9) does not fit its input: kernel 9x9 is larger than the 8x8 feature "
         "map (input 1x8x8)"),
    ],
)
def test_more_misfits(layers: tuple, message: str) -> None:
    assert _error(Architecture(layers), (1, 8, 8)) == message


def test_bad_input_shape_or_class_count() -> None:
    with pytest.raises(InvalidRequest) as info:
        infer_shapes(Architecture(), (8, 8), 10)
    assert str(info.value) == (
        "input shape must be three positive integers (channels, height, width), got (8, 8)"
    )
    with pytest.raises(InvalidRequest) as info:
        infer_shapes(Architecture(), (1, 8, 8), 1)
    assert str(info.value) == "num_classes must be an integer >= 2, got 1"


def test_per_layer_rows_including_the_head() -> None:
    arch = Architecture.of(
        Conv2D(32, 3), Activation("relu"), MaxPool2D(2, 2), Conv2D(64, 3, padding="same"),
        BatchNorm(), Dropout(0.25),
    )
    rows = infer_shapes(arch, (1, 28, 28), 10)
    assert rows == [
        LayerInfo(0, "Conv2D", (1, 28, 28), (32, 26, 26), 32 * 9 + 32, 2 * 32 * 26 * 26 * 9),
        LayerInfo(1, "Activation", (32, 26, 26), (32, 26, 26), 0, 0),
        LayerInfo(2, "MaxPool2D", (32, 26, 26), (32, 13, 13), 0, 0),
        LayerInfo(3, "Conv2D", (32, 13, 13), (64, 13, 13), 64 * 32 * 9 + 64,
                  2 * 64 * 13 * 13 * 32 * 9),
        LayerInfo(4, "BatchNorm", (64, 13, 13), (64, 13, 13), 128, 0),
        LayerInfo(5, "Dropout", (64, 13, 13), (64, 13, 13), 0, 0),
        LayerInfo(6, "Flatten", (64, 13, 13), (10816,), 0, 0, head=True),
        LayerInfo(6, "Dense", (10816,), (10,), 10816 * 10 + 10, 2 * 10816 * 10, head=True),
    ]
    assert count_params(arch, (1, 28, 28), 10) == sum(r.params for r in rows)
    assert count_flops(arch, (1, 28, 28), 10) == sum(r.flops for r in rows)


def test_strided_same_convolution_rounds_up() -> None:
    rows = infer_shapes(Architecture.of(Conv2D(4, 3, 2, "same")), (3, 7, 8), 2)
    assert rows[0].output_shape == (4, 4, 4)


def _torch_counts(arch: Architecture, shape: tuple[int, int, int], classes: int) -> tuple[int, int]:
    module = build_module(arch, shape, classes).eval()
    params = sum(p.numel() for p in module.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = module(torch.randn(1, *shape))
    assert out.shape == (1, classes)
    return params, int(counter.get_total_flops())


SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def test_counts_are_exact_for_sampled_architectures() -> None:
    rng = random.Random(2024)
    spaces = [SearchSpace(), SearchSpace.extended(conv_strides=(1, 2))]
    checked = 0
    for i in range(200):
        shape = SHAPES[i % 3]
        arch = sample_architecture(shape, 10, space=spaces[i % 2], rng=rng)
        params, flops = _torch_counts(arch, shape, 10)
        assert count_params(arch, shape, 10) == params, arch
        assert count_flops(arch, shape, 10) == flops, arch
        checked += bool(arch.layers)
    assert checked > 150


def test_built_module_layout() -> None:
    arch = Architecture.of(
        Conv2D(4, 3), BatchNorm(), Dropout(0.5), Dense(16), BatchNorm(), Dropout(0.5),
    )
    module = build_module(arch, (1, 8, 8), 3)
    assert isinstance(module, torch.nn.Sequential)
    assert [name for name, _ in module.named_children()] == ["0", "1", "2", "3", "4", "5", "head"]
    assert isinstance(module[1], torch.nn.BatchNorm2d)
    assert isinstance(module[4], torch.nn.BatchNorm1d)
    assert isinstance(module[3], torch.nn.Linear) and module[3].in_features == 4 * 6 * 6
    module.train()
    assert module(torch.randn(5, 1, 8, 8)).shape == (5, 3)  # Dense flattens implicitly


def test_builder_refuses_what_shape_inference_refuses() -> None:
    with pytest.raises(InvalidArchitecture, match="layer 0 \\(Conv2D k9\\) does not fit"):
        build_module(Architecture.of(Conv2D(4, 9)), (1, 8, 8), 10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_builds_on_cuda() -> None:
    arch = Architecture.of(Conv2D(8, 3), BatchNorm(), Activation("relu"), GlobalAvgPool())
    module = build_module(arch, (3, 32, 32), 10, device="cuda")
    assert module(torch.randn(2, 3, 32, 32, device="cuda")).shape == (2, 10)
