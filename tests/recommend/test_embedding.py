"""2-D maps of architecture vectors and out-of-sample MDS placement."""

from __future__ import annotations

import numpy as np
import pytest

from nasdb.recommend import ArchitectureEncoder, embed_2d, place_new
from nasdb.schema.errors import InvalidRequest


def _clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, 8))
    return np.vstack([c + rng.normal(0, 0.3, (10, 8)) for c in centres])


def test_mds_and_tsne_layouts() -> None:
    x = _clusters()
    for method in ("mds", "tsne"):
        coords = embed_2d(x, method=method, seed=0)  # type: ignore[arg-type]
        assert coords.shape == (30, 2)
        np.testing.assert_array_equal(coords, embed_2d(x, method=method, seed=0))  # type: ignore[arg-type]
        # clusters stay together: each point's nearest neighbour is in its own cluster
        d = np.linalg.norm(coords[:, None] - coords[None], axis=2) + np.eye(30) * 1e9
        assert np.all(d.argmin(axis=1) // 10 == np.arange(30) // 10)
    assert embed_2d(x[:1]).shape == (1, 2)


def test_place_new_lands_on_its_twin_and_never_moves_old_points() -> None:
    x = _clusters()
    coords = embed_2d(x, method="mds", seed=0)
    before = coords.copy()
    new = np.vstack([x[4], x[25] + 0.05])
    placed = place_new(coords, x, new)
    np.testing.assert_array_equal(coords, before)
    spread = np.ptp(coords, axis=0).max()
    assert np.linalg.norm(placed[0] - coords[4]) < 0.05 * spread
    assert np.linalg.norm(placed[1] - coords[25]) < 0.05 * spread
    # a point between two clusters lands between them
    mid = (x[:10].mean(0) + x[10:20].mean(0)) / 2
    m = place_new(coords, x, mid[None])[0]
    a, b = coords[:10].mean(0), coords[10:20].mean(0)
    assert np.linalg.norm(m - (a + b) / 2) < 0.35 * np.linalg.norm(a - b)


def test_placing_encoded_architectures(encoder: ArchitectureEncoder, archgen: object) -> None:
    rng = np.random.default_rng(3)
    archs = [archgen.random(rng) for _ in range(20)]  # type: ignore[attr-defined]
    vectors = encoder.encode_many(archs)
    coords = embed_2d(vectors, seed=1)
    placed = place_new(coords, vectors, encoder.encode_many(archs[:2]))
    spread = np.ptp(coords, axis=0).max()
    assert np.all(np.linalg.norm(placed - coords[:2], axis=1) < 0.05 * spread)


def test_bad_inputs() -> None:
    with pytest.raises(InvalidRequest) as info:
        embed_2d(np.zeros((0, 4)))
    assert str(info.value) == "cannot embed an empty set of vectors"
    with pytest.raises(InvalidRequest) as info:
        embed_2d(np.zeros(4))
    assert str(info.value) == "vectors must be a 2-D array (n, dim); got shape (4,)"
    with pytest.raises(InvalidRequest) as info:
        embed_2d(np.zeros((3, 4)), method="umap")  # type: ignore[arg-type]
    assert str(info.value) == "unknown embedding method 'umap'; choose 'mds' or 'tsne'"
    with pytest.raises(InvalidRequest) as info:
        place_new(np.zeros((3, 2)), np.zeros((3, 4)), np.zeros((1, 5)))
    assert str(info.value) == "new_vectors have dimension (5,), existing_vectors (4,)"
    with pytest.raises(InvalidRequest) as info:
        place_new(np.zeros((2, 2)), np.zeros((3, 4)), np.zeros((1, 4)))
    assert str(info.value) == (
        "existing_coords (2, 2) must be (n, 2) with n = 3 existing vectors (n >= 1)"
    )
