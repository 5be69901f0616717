"""Layer dicts -> tokens, and the vocabulary's UNK handling."""

from __future__ import annotations

import pytest

from nasdb.recommend import UNK, Vocabulary, layer_token, tokenize
from nasdb.schema.errors import InvalidRequest


def test_every_layer_type_has_its_documented_token() -> None:
    layers = [
        {"type": "Conv2D", "filters": 64, "kernel": 3, "stride": 1, "padding": "same"},
        {"type": "Activation", "fn": "relu"},
        {"type": "MaxPool2D", "size": 2, "stride": 2},
        {"type": "AvgPool2D", "size": 3, "stride": 2},
        {"type": "Dropout", "rate": 0.25},
        {"type": "BatchNorm"},
        {"type": "Flatten"},
        {"type": "GlobalAvgPool"},
        {"type": "Dense", "units": 128},
        {"type": "Activation", "fn": "gelu"},
    ]
    assert tokenize(layers) == [
        "Conv2D_64_3_1_same",
        "relu",
        "MaxPool2D_2_2",
        "AvgPool2D_3_2",
        "Dropout_0.25",
        "BatchNorm",
        "Flatten",
        "GlobalAvgPool",
        "Dense_128",
        "gelu",
    ]


def test_architecture_dict_and_reference_classifier() -> None:
    body = [{"type": "Dense", "units": 16}]
    assert tokenize({"layers": body, "reference": None}) == ["Dense_16"]
    assert tokenize({"layers": [], "reference": "resnet18"}) == ["REF_resnet18"]
    assert tokenize([]) == []


def test_unknown_layer_type_is_unk_not_an_error() -> None:
    assert layer_token({"type": "LSTM", "units": 8}) == UNK
    assert tokenize([{"type": "Conv3D"}, {"type": "Dense", "units": 16}]) == [UNK, "Dense_16"]


def test_float_values_format_stably() -> None:
    assert layer_token({"type": "Dropout", "rate": 0.125}) == "Dropout_0.125"
    assert layer_token({"type": "Dense", "units": 64.0}) == "Dense_64"


def test_known_layer_missing_a_field_is_an_error_naming_it() -> None:
    with pytest.raises(InvalidRequest) as info:
        tokenize([{"type": "Dense", "units": 8}, {"type": "Conv2D", "filters": 8, "kernel": 3}])
    assert str(info.value) == (
        "layer 1 (Conv2D) is missing 'stride', 'padding'; "
        "see docs/contracts.md, 'Architecture JSON'"
    )


def test_malformed_inputs_are_errors() -> None:
    with pytest.raises(InvalidRequest) as info:
        tokenize(["Conv2D"])  # type: ignore[list-item]
    assert str(info.value) == (
        "layer 0 is not a layer dict with a 'type' (got 'Conv2D'); "
        "see docs/contracts.md, 'Architecture JSON'"
    )
    with pytest.raises(InvalidRequest) as info:
        tokenize({"reference": None})
    assert str(info.value) == (
        "an architecture dict needs 'layers' (and optionally 'reference'); got keys ['reference']"
    )
    with pytest.raises(InvalidRequest) as info:
        tokenize("Conv2D")  # type: ignore[arg-type]
    assert str(info.value) == "an architecture is a list of layer dicts; got str"


def test_vocabulary_maps_unseen_combinations_to_unk_and_round_trips() -> None:
    vocab = Vocabulary.build([["Conv2D_32_3_1_same", "relu"], ["Dense_16"]])
    assert vocab.tokens[:4] == ("<pad>", "UNK", "<s>", "</s>")
    assert vocab.index("Conv2D_999_7_1_same") == vocab.index(UNK) == 1
    assert vocab.encode(["relu", "tanh"]) == [vocab.index("relu"), 1]
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    with pytest.raises(InvalidRequest) as info:
        Vocabulary.from_json(["relu"])
    assert str(info.value) == (
        "a saved vocabulary must start with the special tokens "
        "['<pad>', 'UNK', '<s>', '</s>']; this one starts with ['relu']"
    )
