"""The word2vec + LSTM architecture encoder, trained for real on small generated corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasdb.recommend import ENCODER_FORMAT, ArchitectureEncoder, tokenize
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.search import sample


def _cosine(a: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return 1.0 - a @ a.T


def test_vgg_variants_sit_closer_to_each_other_than_to_random_architectures(
    encoder: ArchitectureEncoder, archgen: Any
) -> None:
    rng = np.random.default_rng(2024)  # fresh draws, not the training corpus's
    vgg = encoder.encode_many([archgen.vgg(rng) for _ in range(30)])
    rnd = encoder.encode_many([archgen.random(rng) for _ in range(30)])
    distances = _cosine(np.vstack([vgg, rnd]))
    n = len(vgg)
    within = distances[:n, :n][np.triu_indices(n, 1)].mean()
    across = distances[:n, n:].mean()
    masked = distances + np.eye(2 * n) * 10
    nearest_is_vgg = (masked[:n].argmin(axis=1) < n).mean()
    print(f"VGG within {within:.3f}, VGG-random {across:.3f}, 1-NN purity {nearest_is_vgg:.2f}")
    assert within * 3 < across
    assert nearest_is_vgg >= 0.9


def test_vectors_have_fixed_length_for_any_architecture(
    encoder: ArchitectureEncoder, archgen: Any
) -> None:
    for architecture in (
        [],
        [{"type": "Dense", "units": 16}],
        {"layers": [], "reference": "resnet18"},
        archgen.vgg(np.random.default_rng(0)),
    ):
        vector = encoder.encode(architecture)  # type: ignore[arg-type]
        assert vector.shape == (32,)
        assert np.all(np.isfinite(vector))
    assert encoder.encode_many([]).shape == (0, 32)


def test_unknown_layers_and_unseen_combinations_encode_as_unk(encoder: ArchitectureEncoder) -> None:
    base = [{"type": "Conv2D", "filters": 32, "kernel": 3, "stride": 1, "padding": "same"}]
    a = encoder.encode([*base, {"type": "LSTM", "units": 3}])
    b = encoder.encode([*base, {"type": "Conv2D", "filters": 999, "kernel": 7, "stride": 3,
                                "padding": "same"}])
    c = encoder.encode([*base, {"type": "Dense", "units": 64}])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fitting_is_deterministic_given_the_seed(corpus: list[Any], archgen: Any) -> None:
    tokens = [tokenize(a) for a in corpus[:150]]
    probe = [archgen.vgg(np.random.default_rng(1)), corpus[0]]
    state_before = torch.random.get_rng_state()
    first = ArchitectureEncoder.fit(tokens, dim=16, seed=3, epochs=2).encode_many(probe)
    assert torch.equal(torch.random.get_rng_state(), state_before)  # global RNG untouched
    again = ArchitectureEncoder.fit(tokens, dim=16, seed=3, epochs=2).encode_many(probe)
    other = ArchitectureEncoder.fit(tokens, dim=16, seed=4, epochs=2).encode_many(probe)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_language_model_loss_falls(encoder: ArchitectureEncoder) -> None:
    assert len(encoder.history) == 8
    assert encoder.history[-1] < encoder.history[0]


def test_save_and_load_round_trip(
    encoder: ArchitectureEncoder, archgen: Any, tmp_path: Path
) -> None:
    path = tmp_path / "encoder.pt"
    encoder.save(path)
    loaded = ArchitectureEncoder.load(path)
    probe = [archgen.vgg(np.random.default_rng(9)), [{"type": "Dense", "units": 64}]]
    np.testing.assert_array_equal(loaded.encode_many(probe), encoder.encode_many(probe))
    assert loaded.vocabulary == encoder.vocabulary
    assert loaded.corpus_fingerprint == encoder.corpus_fingerprint
    assert len(encoder.corpus_fingerprint) == 64


def test_load_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(NotFound) as info:
        ArchitectureEncoder.load(missing)
    assert str(info.value) == (
        f"no encoder file at {missing}; fit one with `nasdb recommend fit-encoder`"
    )
    old = tmp_path / "old.pt"
    torch.save({"format": "nasdb-encoder/0"}, old)
    with pytest.raises(InvalidRequest) as info:
        ArchitectureEncoder.load(old)
    assert str(info.value) == (
        f"{old} holds encoder format 'nasdb-encoder/0', this code reads {ENCODER_FORMAT!r}; "
        "refit it with `nasdb recommend fit-encoder`"
    )


def test_empty_corpus_is_an_error() -> None:
    with pytest.raises(InvalidRequest) as info:
        ArchitectureEncoder.fit([[], []])
    assert str(info.value) == (
        "cannot fit the architecture encoder on an empty corpus; "
        "give at least one non-empty architecture"
    )
    with pytest.raises(InvalidRequest) as info:
        ArchitectureEncoder.fit_architectures([])
    assert str(info.value) == (
        "cannot fit the architecture encoder on an empty list of architectures; "
        "sample some first (nasdb recommend fit-encoder does)"
    )
    with pytest.raises(InvalidRequest) as info:
        ArchitectureEncoder.fit([["relu"]], unk_rate=1.0)
    assert str(info.value) == "unk_rate must be in [0, 1); got 1.0"


def test_fits_on_nasdb_search_samples_with_every_sampled_layer_known() -> None:
    pairs = sample((1, 28, 28), 10, 200, seed=0)
    architectures = [arch.to_dict() for arch, _ in pairs]
    encoder = ArchitectureEncoder.fit_architectures(architectures, dim=16, seed=0, epochs=2)
    tokens = [tokenize(a) for a in architectures]
    assert all(t != "UNK" and t in encoder.vocabulary for seq in tokens for t in seq)
    vectors = encoder.encode_many(architectures)
    assert vectors.shape == (200, 16) and np.all(np.isfinite(vectors))
