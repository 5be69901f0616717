"""Dataset similarity from real image features and a real scikit-learn ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.transform import resize
from sklearn.datasets import load_digits

from nasdb.recommend import DatasetSimilarity, image_features
from nasdb.schema.errors import DatasetError, InvalidRequest, NotFound

_RNG = np.random.default_rng(0)


def _digits() -> np.ndarray:
    images = load_digits().images / 16.0
    return np.stack([resize(x, (28, 28)) for x in images])[:, None]


def _stripes(n: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:28, 0:28]
    out = []
    for _ in range(n):
        theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.1, 0.5), rng.uniform(0, 6.3)
        out.append(0.5 + 0.5 * np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase))
    return np.stack(out)[:, None]


def _textures(n: int, rng: np.random.Generator) -> np.ndarray:
    """Colour (3-channel, 32x32) smooth-noise textures folded into [0, 1]."""
    return np.stack([gaussian_filter(rng.random((3, 32, 32)), (0, 2, 2)) * 3 % 1 for _ in range(n)])


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return _digits()


@pytest.fixture(scope="module")
def ranker(digits: np.ndarray) -> DatasetSimilarity:
    rng = np.random.default_rng(1)
    return DatasetSimilarity.fit(
        {
            "digits": digits[:1000],
            "noise": rng.random((120, 1, 28, 28)),
            "stripes": _stripes(120, rng),
            "textures": _textures(120, rng),
        },
        seed=0,
        sample_size=100,
    )


def test_held_out_digits_are_most_similar_to_digits(
    ranker: DatasetSimilarity, digits: np.ndarray
) -> None:
    shares = ranker.similarity(digits[1000:1100])
    print("held-out digits:", shares)
    assert set(shares) == {"digits", "noise", "stripes", "textures"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["digits"] >= 0.9
    shares = ranker.similarity(digits[1000:1100])
    assert max(shares, key=shares.__getitem__) == "digits"


def test_channels_sizes_and_dtypes_do_not_matter(
    ranker: DatasetSimilarity, digits: np.ndarray
) -> None:
    rgb_uint8 = np.repeat((digits[1200:1260] * 255).astype(np.uint8), 3, axis=1)
    small = np.stack([resize(x, (1, 20, 20)) for x in digits[1300:1360]])
    shares_rgb, shares_small = ranker.similarity(rgb_uint8), ranker.similarity(small)
    print("RGB uint8 digits:", shares_rgb, "20x20 digits:", shares_small)
    assert max(shares_rgb, key=shares_rgb.__getitem__) == "digits"
    assert max(shares_small, key=shares_small.__getitem__) == "digits"
    assert image_features(rgb_uint8[:3]).shape == image_features(small[:3]).shape


def test_new_stripes_are_most_similar_to_stripes(ranker: DatasetSimilarity) -> None:
    shares = ranker.similarity(_stripes(40, np.random.default_rng(7)))
    assert max(shares, key=shares.__getitem__) == "stripes"


def test_wrong_image_shapes_name_the_shape(ranker: DatasetSimilarity) -> None:
    with pytest.raises(DatasetError) as info:
        ranker.similarity(np.zeros((10, 28, 28)))
    assert str(info.value) == (
        "images must be a non-empty array of shape (N, C, H, W); got shape (10, 28, 28)"
    )
    with pytest.raises(DatasetError) as info:
        ranker.similarity(np.zeros((0, 1, 28, 28)))
    assert str(info.value) == (
        "images must be a non-empty array of shape (N, C, H, W); got shape (0, 1, 28, 28)"
    )
    with pytest.raises(DatasetError) as info:
        ranker.similarity(np.full((2, 1, 8, 8), np.nan))
    assert str(info.value) == "images of shape (2, 1, 8, 8) contain NaN or infinite values"


def test_fit_errors(digits: np.ndarray) -> None:
    with pytest.raises(InvalidRequest) as info:
        DatasetSimilarity.fit({"digits": digits[:10]})
    assert str(info.value) == (
        "dataset similarity needs at least 2 registered datasets to tell apart; got 1"
    )
    with pytest.raises(DatasetError) as info:
        DatasetSimilarity.fit({"digits": digits[:10], "flat": np.zeros((5, 784))})
    assert str(info.value) == (
        "dataset 'flat': images must be a non-empty array of shape (N, C, H, W); "
        "got shape (5, 784)"
    )


def test_save_load_round_trip(
    ranker: DatasetSimilarity, digits: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "similarity.joblib"
    ranker.save(path)
    loaded = DatasetSimilarity.load(path)
    assert loaded.similarity(digits[1500:1530]) == ranker.similarity(digits[1500:1530])
    with pytest.raises(NotFound) as info:
        DatasetSimilarity.load(tmp_path / "missing")
    assert str(info.value) == (
        f"no dataset-similarity file at {tmp_path / 'missing'}; fit one with `nasdb recommend fit`"
    )
