"""The reference classifiers (AutoCl) on small inputs, and their measured counts."""

from __future__ import annotations

import pytest
import torch

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest
from nasdb.search import REFERENCE_NAMES, Architecture, infer_shapes
from nasdb.trainers.build import REFERENCES, build_module, reference_stats
from nasdb.trainers.measure import count_flops, count_params, layer_table


def test_registry_names_are_stable() -> None:
    assert tuple(REFERENCES) == REFERENCE_NAMES == (
        "cnn", "vgg", "alexnet", "resnet18", "densenet", "mobilenet",
    )


@pytest.mark.parametrize("name", REFERENCE_NAMES)
@pytest.mark.parametrize(("shape", "classes"), [((1, 8, 8), 10), ((1, 28, 28), 10),
                                                ((3, 32, 32), 7)])
def test_reference_builds_and_runs(name: str, shape: tuple[int, int, int], classes: int) -> None:
    module = build_module(Architecture(reference=name), shape, classes).eval()
    with torch.no_grad():
        assert module(torch.randn(2, *shape)).shape == (2, classes)


def _densenet_expected() -> int:
    """The docstring's DenseNet-BC (growth 12, blocks 3-6-12-8, 24 stem filters) as torchvision
    builds it for 10 classes, with its 3-channel 7x7 stem swapped for a 1-channel 3x3 one."""
    from torchvision.models import DenseNet

    model = DenseNet(growth_rate=12, block_config=(3, 6, 12, 8), num_init_features=24,
                     num_classes=10)
    return sum(p.numel() for p in model.parameters()) - 24 * 3 * 7 * 7 + 24 * 1 * 3 * 3


# Parameters of each reference on 1x8x8 digits with 10 classes, counted without nasdb:
EXPECTED_PARAMS = {
    # conv 1->32 k3 (320), conv 32->64 k3 (18,496), Dense 256->128 (32,896), head 128->10 (1,290)
    "cnn": 320 + 18_496 + 32_896 + 1_290,
    # three blocks of two conv3x3+BN (32, 64, 128 filters), Dense 128->128, head
    "vgg": (320 + 64 + 9_248 + 64) + (18_496 + 128 + 36_928 + 128)
    + (73_856 + 256 + 147_584 + 256) + 16_512 + 1_290,
    # conv 1->64 k5, 64->192, 192->384, 384->256, 256->256 (k3), Dense 1024->512, 512->512, head
    "alexnet": 1_664 + 110_784 + 663_936 + 884_992 + 590_080 + 524_800 + 262_656 + 5_130,
    # torchvision's published ResNet-18: 11,689,512 with 1000 classes; 10 classes (-513,000
    # +5,130) and a 1-channel 3x3 stem instead of 3-channel 7x7 (-9,408 +576)
    "resnet18": 11_689_512 - 513_000 + 5_130 - 9_408 + 576,
    # MobileNetV2 1.0's published 3,504,872; 10 classes (-1,281,000 +12,810); 1-channel stem
    # (-864 +288); strides do not change the count
    "mobilenet": 3_504_872 - 1_281_000 + 12_810 - 864 + 288,
}


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_counts_match_an_independent_count(name: str) -> None:
    shape = (1, 8, 8)
    expected = EXPECTED_PARAMS[name] if name != "densenet" else _densenet_expected()
    arch = Architecture(reference=name)
    assert count_params(arch, shape, 10) == expected
    assert sum(p.numel() for p in build_module(arch, shape, 10).parameters()) == expected
    assert count_flops(arch, shape, 10) > 0
    assert layer_table(arch, shape, 10)[0].type == name


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_learns_digits(name: str) -> None:
    """Thirty Adam steps over 128 real digits images bring the training loss well down."""
    from nasdb.trainers.datasets import load_dataset

    data = load_dataset("digits")
    torch.manual_seed(0)
    module = build_module(Architecture(reference=name), data.input_shape, 10).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x, y = data.x_train[:128], data.y_train[:128]
    losses = []
    for step in range(30):
        batch = torch.arange(step * 32, step * 32 + 32) % len(x)
        loss = torch.nn.functional.cross_entropy(module(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.75 * first, (first, last)


def test_the_model_space_sends_reference_classifiers_to_be_measured() -> None:
    with pytest.raises(InvalidArchitecture, match=r"nasdb\.trainers\.measure\.layer_table"):
        infer_shapes(Architecture(reference="vgg"), (1, 8, 8), 10)


def test_reference_flops_match_a_fresh_count() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    module = build_module(Architecture(reference="cnn"), (1, 28, 28), 10).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.zeros(3, 1, 28, 28))
    assert counter.get_total_flops() == 3 * reference_stats("cnn", (1, 28, 28), 10)[1]


def test_measuring_a_reference_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    reference_stats("vgg", (1, 9, 9), 4)
    assert torch.equal(torch.rand(3), expected)


def test_reference_input_is_validated() -> None:
    with pytest.raises(InvalidRequest, match="num_classes must be an integer >= 2, got 1"):
        build_module(Architecture(reference="cnn"), (1, 28, 28), 1)
