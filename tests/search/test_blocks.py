"""The modern space's composite blocks (ConvBlock, SepConv, Residual) through every piece that
reads layers: shape inference against torch, the builder, the glyph, OTMANN, the encoder's tokens,
variations, ablations, handcraft and the query language."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasdb.query._fields import FIELDS, LAYER_TYPES
from nasdb.recommend._tokens import tokenize
from nasdb.schema.errors import InvalidArchitecture
from nasdb.search import (
    BLOCK_TYPES,
    Architecture,
    ConvBlock,
    Dense,
    GlobalAvgPool,
    MaxPool2D,
    Residual,
    SearchSpace,
    SepConv,
    ablations,
    count_flops,
    count_params,
    handcraft,
    infer_shapes,
    layer_cost,
    replay,
    sample_architecture,
    structural_distance,
    variations,
)
from nasdb.search.strategies import StudySpace
from nasdb.trainers.build import build_module
from nasdb.ui.app._glyph import chips

BLOCKS = [
    ConvBlock(8, 3), ConvBlock(16, 5, 2, "gelu"), SepConv(8, 3), SepConv(16, 5, 2, "elu"),
    Residual(8, 3), Residual(16, 3, 2), Residual(4, 5, 1, "tanh"),
]


def _torch_counts(arch: Architecture, shape: tuple[int, int, int]) -> tuple[int, int, tuple]:
    module = build_module(arch, shape, 10).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = module(torch.zeros(2, *shape))
    params = sum(p.numel() for p in module.parameters())
    return params, int(counter.get_total_flops()) // 2, tuple(out.shape)


@pytest.mark.parametrize("block", BLOCKS, ids=str)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 9, 9), (8, 8, 8)])
def test_block_params_and_flops_equal_torch(block: ConvBlock, shape: tuple[int, int, int]) -> None:
    arch = Architecture.of(block, GlobalAvgPool())
    params, flops, out = _torch_counts(arch, shape)
    assert count_params(arch, shape, 10) == params
    assert count_flops(arch, shape, 10) == flops  # the torch pass ran on a batch of two
    assert out == (2, 10)
    info = infer_shapes(arch, shape, 10)[0]
    side = (shape[1] - 1) // block.stride + 1
    assert info.output_shape == (block.filters, side, side)


def test_sampled_modern_architectures_equal_torch() -> None:
    space = SearchSpace.modern()
    rng = random.Random(3)
    for shape in ((1, 28, 28), (1, 8, 8), (3, 32, 32)):
        for _ in range(6):
            arch = sample_architecture(shape, 10, space=space, rng=rng)
            params, flops, _ = _torch_counts(arch, shape)
            assert count_params(arch, shape, 10) == params
            assert count_flops(arch, shape, 10) == flops


def test_residual_shortcut_is_identity_only_when_the_shape_is_kept() -> None:
    same = build_module(Architecture.of(ConvBlock(8, 3), Residual(8, 3)), (1, 8, 8), 10)
    wider = build_module(Architecture.of(ConvBlock(8, 3), Residual(16, 3)), (1, 8, 8), 10)
    assert isinstance(same[1].shortcut, torch.nn.Identity)
    assert not isinstance(wider[1].shortcut, torch.nn.Identity)
    # the shortcut carries the input: zeroing the residual branch leaves relu(x)
    block = same[1].eval()
    for p in block.body.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 8, 8, 8)
    assert torch.allclose(block(x), torch.relu(x))


def test_separable_conv_is_depthwise_then_pointwise() -> None:
    module = build_module(Architecture.of(ConvBlock(8, 3), SepConv(16, 5)), (1, 8, 8), 10)
    depthwise, pointwise = module[1][0], module[1][3]
    assert (depthwise.groups, depthwise.kernel_size, depthwise.bias) == (8, (5, 5), None)
    assert (pointwise.in_channels, pointwise.out_channels, pointwise.kernel_size) == (8, 16,
                                                                                       (1, 1))


def test_block_json_round_trip_and_refusals() -> None:
    arch = Architecture.of(*BLOCKS)
    assert Architecture.from_json(arch.to_json()) == arch
    assert arch.to_dict()["layers"][1] == {"type": "ConvBlock", "filters": 16, "kernel": 5,
                                           "stride": 2, "fn": "gelu"}
    with pytest.raises(InvalidArchitecture) as info:
        Architecture.from_json({"layers": [{"type": "Residual", "filters": 8, "kernel": 4}]})
    assert str(info.value) == ("layer 0 (Residual): Residual uses same padding, which needs an odd "
                               "kernel; got kernel 4")
    with pytest.raises(InvalidArchitecture) as info:
        infer_shapes(Architecture.of(Dense(8), SepConv(8)), (1, 8, 8), 10)
    assert "layer 1 (SepConv 8k3) needs a 3-D feature map" in str(info.value)


def test_glyph_codes_and_chips() -> None:
    arch = Architecture.of(ConvBlock(16, 3), SepConv(32, 5, 2, "gelu"), Residual(32, 3),
                           MaxPool2D(2, 2), GlobalAvgPool())
    assert arch.glyph(10) == "CB16k3-SC32k5s2/gelu-R32k3-P2-GAP-D10"
    drawn = chips(arch, (1, 28, 28), 10)
    assert [c["symbol"] for c in drawn[:3]] == ["B", "S", "R"]
    assert [c["code"] for c in drawn[:3]] == ["CB16k3", "SC32k5s2/gelu", "R32k3"]
    assert drawn[1]["size"] == 32 * 14 * 14


def test_otmann_matches_blocks_of_a_kind_only() -> None:
    assert layer_cost(ConvBlock(16, 3), ConvBlock(16, 3)) == 0.0
    assert layer_cost(ConvBlock(16, 3), ConvBlock(32, 5, 2, "gelu")) == pytest.approx(0.5)
    assert layer_cost(ConvBlock(16, 3), Residual(16, 3)) is None
    a = Architecture.of(ConvBlock(16, 3), Residual(16, 3), GlobalAvgPool())
    b = Architecture.of(ConvBlock(16, 3), SepConv(16, 3), GlobalAvgPool())
    assert structural_distance(a, a) == 0.0
    assert structural_distance(a, b) == pytest.approx(2.0)  # Residual and SepConv unmatched
    c = Architecture.of(ConvBlock(16, 3), Residual(32, 3), GlobalAvgPool())
    assert structural_distance(a, c) == pytest.approx(0.1)


def test_tokens_carry_the_block_hyperparameters() -> None:
    arch = Architecture.of(ConvBlock(16, 3), SepConv(32, 5, 2, "gelu"), Residual(32, 3))
    assert tokenize(arch.to_dict()) == ["ConvBlock_16_3_1_relu", "SepConv_32_5_2_gelu",
                                        "Residual_32_3_1_relu"]


def test_variations_ablations_and_handcraft_on_a_modern_parent() -> None:
    parent = Architecture.of(ConvBlock(16, 3), Residual(16, 3), SepConv(32, 3, 2),
                             GlobalAvgPool())
    space = SearchSpace.modern()
    children = variations(parent, (1, 28, 28), 10, n=6, changes=2, seed=1, space=space)
    assert len(children) == 6
    for child, texts in children:
        infer_shapes(child, (1, 28, 28), 10)
        assert replay(parent, texts) == child
    changed = {layer.TYPE for child, _ in children for layer in child.layers}
    assert changed & set(BLOCK_TYPES)
    kept, skipped = ablations(parent, (1, 28, 28), 10)
    assert [text for _, text in kept][1] == "removed Residual at index 1"
    assert skipped == []
    edited, _ = handcraft(parent, [{"op": "replace", "index": 1,
                                    "layer": {"type": "SepConv", "filters": 24}}])
    assert edited.layers[1] == SepConv(24, 3, 1, "relu")


def test_query_language_knows_the_block_layer_types() -> None:
    from nasdb.query import compile, parse

    has = compile(parse("has:Residual"))
    assert "m.layer_types && %(p1)s::text[]" in has.sql and has.params["p1"] == ["Residual"]
    count = compile(parse("block>=4"))
    assert all(t in count.sql for t in ("ConvBlock", "SepConv", "Residual"))
    assert LAYER_TYPES["residual"] == ("Residual",)
    assert LAYER_TYPES["block"] == ("ConvBlock", "SepConv", "Residual")
    assert "sepconv" in FIELDS and "convblock" in FIELDS
    assert "sgd-nesterov" in FIELDS["optimizer"].choices


def test_modern_samples_keep_to_the_bounds_and_widths_follow_the_input() -> None:
    space = SearchSpace.modern(max_params=50_000, max_mflops=4.0)
    rng = random.Random(0)
    for shape in ((1, 28, 28), (1, 8, 8)):
        for _ in range(30):
            arch = sample_architecture(shape, 10, space=space, rng=rng)
            assert count_params(arch, shape, 10) <= 50_000
            assert count_flops(arch, shape, 10) <= 4e6
            assert isinstance(arch.layers[0], ConvBlock)
            assert arch.layers[0].filters in (16, 24, 32)
            widths = [x.filters for x in arch.layers if x.TYPE in BLOCK_TYPES]
            assert all(a <= b <= 2 * a for a, b in itertools.pairwise(widths))
            assert "GlobalAvgPool" in arch.layer_types
            infos = infer_shapes(arch, shape, 10)
            gap = arch.layer_types.index("GlobalAvgPool")
            assert min(infos[gap].input_shape[1:]) <= 8


def test_remap_space_is_unchanged_by_the_modern_one() -> None:
    assert SearchSpace.remap() == SearchSpace()
    assert SearchSpace().blocks == () and SearchSpace().max_mflops == 0.0
    rng = random.Random(5)
    for _ in range(30):
        arch = sample_architecture((1, 8, 8), 10, rng=rng)
        assert not set(arch.layer_types) & set(BLOCK_TYPES)
    assert StudySpace.remap() == StudySpace()


def test_optuna_encoding_covers_the_modern_blocks() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = StudySpace.modern()
    dists = space.optuna_distributions()
    assert set(dists["block_0"].choices) == set(BLOCK_TYPES)
    assert set(dists["down_0"].choices) == {"stride", "pool", "none"}
    from nasdb.search import DatasetInfo

    fmnist = DatasetInfo("f", (1, 28, 28), tuple("abcdefghij"), hflip=True)
    digits = DatasetInfo("d", (1, 8, 8), tuple("abcdefghij"), hflip=False)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[str] = set()
    built = 0
    for _ in range(150):
        params = study.ask(dists).params
        for ds in (fmnist, digits):
            try:
                arch, hp = space.build_from_params(params, ds)
            except InvalidArchitecture:
                continue
            built += 1
            seen |= set(arch.layer_types)
            assert count_params(arch, ds.input_shape, 10) <= 100_000
            assert count_flops(arch, ds.input_shape, 10) <= 12e6
            assert hp.augment == "auto"  # resolved by the run's length and the dataset's flip
    assert built > 30
    assert {"ConvBlock", "SepConv", "Residual", "MaxPool2D", "GlobalAvgPool"} <= seen
