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


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_trains_on_digits_and_counts_match(name: str) -> None:
    shape = (1, 8, 8)
    torch.manual_seed(0)
    arch = Architecture(reference=name)
    module = build_module(arch, shape, 10).train()
    out = module(torch.randn(4, *shape))
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters())
    params = sum(p.numel() for p in module.parameters())
    assert count_params(arch, shape, 10) == params
    assert count_flops(arch, shape, 10) > 0
    assert layer_table(arch, shape, 10)[0].type == name
    assert params < 12_000_000  # small enough for CPU


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
