"""The architecture and hyperparameter JSON contracts (docs/contracts.md), layers and glyphs."""

from __future__ import annotations

import json
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
    Hyperparameters,
    HyperparameterSpace,
    MaxPool2D,
    parse_layer,
)

CONTRACT_EXAMPLE = """{"layers": [
   {"type": "Conv2D", "filters": 32, "kernel": 3, "stride": 1, "padding": "valid"},
   {"type": "Activation", "fn": "relu"},
   {"type": "MaxPool2D", "size": 2, "stride": 2},
   {"type": "AvgPool2D", "size": 2, "stride": 2},
   {"type": "Dropout", "rate": 0.25},
   {"type": "BatchNorm"},
   {"type": "Flatten"},
   {"type": "GlobalAvgPool"},
   {"type": "Dense", "units": 128}
 ],
 "reference": null}"""

HYPERPARAMETERS_EXAMPLE = (
    '{"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0, "batch_size": 256, "epochs": 10, '
    '"schedule": "step", "step_gamma": 0.75, "seed": 0, "early_stop_patience": 3, '
    '"early_stop_delta": 0.005, "augment": "none", "label_smoothing": 0.0, '
    '"wd_norm_bias": true, "augment_from_steps": 2000}'
)


def test_contract_example_parses_to_the_layers_it_names_and_back() -> None:
    arch = Architecture.from_json(CONTRACT_EXAMPLE)
    assert arch.layers == (
        Conv2D(32, 3, 1, "valid"), Activation("relu"), MaxPool2D(2, 2), AvgPool2D(2, 2),
        Dropout(0.25), BatchNorm(), Flatten(), GlobalAvgPool(), Dense(128),
    )
    assert arch.reference is None
    assert arch.to_dict() == json.loads(CONTRACT_EXAMPLE)
    assert arch.to_json() == json.dumps(json.loads(CONTRACT_EXAMPLE), separators=(",", ":"))
    assert arch.layer_types == [
        "Conv2D", "Activation", "MaxPool2D", "AvgPool2D", "Dropout", "BatchNorm", "Flatten",
        "GlobalAvgPool", "Dense",
    ]


def test_reference_json() -> None:
    arch = Architecture.from_json('{"layers": [], "reference": "resnet18"}')
    assert arch == Architecture(reference="resnet18")
    assert arch.to_json() == '{"layers":[],"reference":"resnet18"}'
    assert arch.glyph(10) == "resnet18"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"layers": [{"type": "Activation", "fn": "relu"}, {"type": "Conv3D"}]}',
         "layer 1: unknown layer type 'Conv3D'; known types: Activation, AvgPool2D, BatchNorm, "
         "Conv2D, ConvBlock, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, Residual, "
         "SepConv"),
        ('{"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3, "size": 2}]}',
         "layer 0 (Conv2D): unknown key 'size'; Conv2D takes filters, kernel, stride, padding"),
        ('{"layers": [{"type": "BatchNorm", "momentum": 0.1}]}',
         "layer 0 (BatchNorm): unknown key 'momentum'; BatchNorm takes no parameters"),
        ('{"layers": [{"type": "Dense"}]}', "layer 0 (Dense): missing key 'units'"),
        ('{"layers": [{"type": "Dense", "units": 0}]}',
         "layer 0 (Dense): Dense units must be a positive integer, got 0"),
        ('{"layers": [{"type": "Dropout", "rate": 1.0}]}',
         "layer 0 (Dropout): Dropout rate must be a number in [0, 1), got 1.0"),
        ('{"layers": [{"type": "Activation", "fn": "swish"}]}',
         "layer 0 (Activation): Activation fn must be one of relu, tanh, sigmoid, elu, gelu, "
         "got 'swish'"),
        ('{"layers": [{"type": "Conv2D", "filters": 8, "kernel": 4, "padding": "same"}]}',
         "layer 0 (Conv2D): Conv2D padding 'same' needs an odd kernel, got kernel 4; use an odd "
         "kernel or padding 'valid'"),
        ('{"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3, "padding": "full"}]}',
         "layer 0 (Conv2D): Conv2D padding must be 'valid' or 'same', got 'full'"),
        ('{"layers": ["Dense"]}', "layer 0: expected a JSON object, got 'Dense'"),
        ('{"layers": [], "head": "softmax"}',
         "architecture has unknown key 'head'; it takes layers and reference"),
        ('{"layers": [], "reference": "lenet"}',
         "unknown reference classifier 'lenet'; known: cnn, vgg, alexnet, resnet18, densenet, "
         "mobilenet"),
        ('{"layers": [{"type": "Flatten"}], "reference": "cnn"}',
         "reference classifier 'cnn' cannot have layers; use either layers or a reference"),
        ('[1, 2]',
         'architecture must be a JSON object {"layers": [...], "reference": ...}, got [1, 2]'),
    ],
)
def test_bad_architecture_json_names_the_problem(data: str, message: str) -> None:
    with pytest.raises(InvalidArchitecture) as info:
        Architecture.from_json(data)
    assert str(info.value) == message


def test_booleans_are_not_integers() -> None:
    with pytest.raises(InvalidArchitecture, match="Dense units must be a positive integer"):
        Architecture.from_json('{"layers": [{"type": "Dense", "units": true}]}')


def test_optional_keys_take_their_defaults() -> None:
    arch = Architecture.from_json(
        {"layers": [{"type": "Conv2D", "filters": 8, "kernel": 3},
                    {"type": "MaxPool2D", "size": 3}]}
    )
    assert arch.layers == (Conv2D(8, 3, 1, "valid"), MaxPool2D(3, 2))


def test_glyph_codes() -> None:
    arch = Architecture.of(
        Conv2D(32, 3), Activation("relu"), MaxPool2D(2, 2), Conv2D(64, 3), Activation("relu"),
        GlobalAvgPool(),
    )
    assert arch.glyph(10) == "C32k3-relu-P2-C64k3-relu-GAP-D10"
    arch = Architecture.of(
        Conv2D(16, 5, 2, "same"), BatchNorm(), Activation("gelu"), AvgPool2D(3, 2),
        MaxPool2D(3, 3), Dropout(0.125), Flatten(), Dense(64),
    )
    assert arch.glyph(3) == "C16k5s2p-BN-gelu-A3s2-P3-Dr0.125-F-D64-D3"
    assert Architecture().glyph(2) == "D2"


def test_layer_text_reads_back() -> None:
    layer = Conv2D(32, 3, 1, "same")
    assert str(layer) == "Conv2D(filters=32, kernel=3, stride=1, padding=same)"
    assert parse_layer(str(layer)) == layer
    assert str(BatchNorm()) == "BatchNorm"
    assert parse_layer("Dropout(rate=0.375)") == Dropout(0.375)


_layers = st.one_of(
    st.builds(Conv2D, st.integers(1, 256), st.sampled_from([1, 3, 5, 7]), st.integers(1, 3),
              st.sampled_from(["valid", "same"])),
    st.builds(MaxPool2D, st.integers(1, 5), st.integers(1, 5)),
    st.builds(AvgPool2D, st.integers(1, 5), st.integers(1, 5)),
    st.builds(Dropout, st.floats(0, 0.99)),
    st.builds(Activation, st.sampled_from(["relu", "tanh", "sigmoid", "elu", "gelu"])),
    st.builds(Dense, st.integers(1, 4096)),
    st.just(BatchNorm()), st.just(Flatten()), st.just(GlobalAvgPool()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_layers, max_size=12))
def test_json_and_text_round_trip(layers: list) -> None:
    arch = Architecture(tuple(layers))
    assert Architecture.from_json(arch.to_json()) == arch
    assert Architecture.from_json(json.loads(arch.to_json())) == arch
    assert [parse_layer(str(layer)) for layer in layers] == layers


# ---- hyperparameters ---------------------------------------------------------------------------


def test_hyperparameter_defaults_are_the_contract_example() -> None:
    assert Hyperparameters().to_dict() == json.loads(HYPERPARAMETERS_EXAMPLE)
    assert list(Hyperparameters().to_dict()) == list(json.loads(HYPERPARAMETERS_EXAMPLE))
    assert Hyperparameters.from_json(HYPERPARAMETERS_EXAMPLE) == Hyperparameters()
    hp = Hyperparameters(optimizer="sgd", lr=0.1, batch_size=64, schedule="cosine")
    assert Hyperparameters.from_json(hp.to_json()) == hp
    assert Hyperparameters.from_json({"epochs": 3}) == Hyperparameters(epochs=3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optimizer": "lion"},
         "invalid hyperparameters: optimizer must be one of adam, adamw, sgd, rmsprop, "
         "sgd-nesterov, got 'lion'"),
        ({"lr": 0, "batch_size": 0},
         "invalid hyperparameters: lr must be a positive number, got 0; batch_size must be an "
         "integer >= 1, got 0"),
        ({"schedule": "linear"},
         "invalid hyperparameters: schedule must be one of none, step, cosine, onecycle, "
         "warmup-cosine, got 'linear'"),
        ({"step_gamma": 1.5}, "invalid hyperparameters: step_gamma must be in (0, 1], got 1.5"),
        ({"epochs": 2.5}, "invalid hyperparameters: epochs must be an integer >= 1, got 2.5"),
        ({"lr": float("nan")}, "invalid hyperparameters: lr must be a positive number, got nan"),
        ({"momentum": 0.9},
         "unknown hyperparameter 'momentum'; known: optimizer, lr, weight_decay, batch_size, "
         "epochs, schedule, step_gamma, seed, early_stop_patience, early_stop_delta, augment, "
         "label_smoothing, wd_norm_bias, augment_from_steps"),
    ],
)
def test_bad_hyperparameters_name_the_problem(data: dict, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        Hyperparameters.from_json(data)
    assert str(info.value) == message


def test_hyperparameter_space_samples_reproducibly_within_bounds() -> None:
    space = HyperparameterSpace(lr_range=(1e-4, 1e-2), batch_sizes=(32, 128),
                                optimizers=("adam", "sgd"))
    draws = [space.sample(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(300)]
    assert all(0.99e-4 <= hp.lr <= 1.01e-2 for hp in samples)
    assert {hp.batch_size for hp in samples} == {32, 128}
    assert {hp.optimizer for hp in samples} == {"adam", "sgd"}
    # log-uniform: about half the draws fall below the geometric midpoint 1e-3
    below = sum(hp.lr < 1e-3 for hp in samples) / len(samples)
    assert 0.4 < below < 0.6
    assert HyperparameterSpace.from_dict(space.to_dict()) == space
    with pytest.raises(InvalidRequest):
        HyperparameterSpace(optimizers=("lion",))
