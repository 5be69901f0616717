"""Dataset similarity ranker (Sankaran et al., section 3.2).

Each image is reduced to 32x32 grayscale (colour statistics are taken before that) and described by
hand-made features: an intensity histogram and per-channel colour histograms, a uniform LBP
histogram, HOG, mean-pooled DAISY descriptors and GIST-like Gabor energies on a 4x4 grid. An
ensemble of scikit-learn classifiers (Gaussian naive Bayes, random forest, histogram gradient
boosting, MLP, linear SVM) learns which registered dataset an image came from. The similarity of
a new dataset is the vote share: each classifier votes once per sampled image, and a dataset's
share is its votes divided by all votes, so the shares sum to 1.

The classifiers fit and predict with native thread pools limited to one thread: the models are
small, and on a shared machine OpenMP/BLAS threads made fitting up to ten times slower.

Image arrays are ``(N, C, H, W)`` with any ``C >= 1``. Integer arrays are divided by 255 (by their
dtype's maximum for other integer types); float arrays already in ``[0, 1]`` are used as they are,
other float arrays are min-max scaled over the whole array.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import joblib
import numpy as np
from scipy.signal import fftconvolve
from skimage.feature import daisy, hog, local_binary_pattern
from skimage.filters import gabor_kernel
from skimage.transform import resize
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from nasdb.schema.errors import DatasetError, InvalidRequest, NotFound

__all__ = ["SIMILARITY_FORMAT", "DatasetSimilarity", "image_features", "prepare_images"]

#: Format string stored with every saved ranker; `DatasetSimilarity.load` refuses others.
SIMILARITY_FORMAT = "nasdb-similarity/1"

SIDE = 32
_LBP_POINTS = 8
_GABOR_FREQUENCIES = (0.15, 0.3)
_GABOR_ORIENTATIONS = 4
_GRID = 4


def prepare_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and normalise an ``(N, C, H, W)`` array.

    Returns ``(gray, colour)``: gray ``(N, 32, 32)`` float64 in ``[0, 1]`` and colour
    ``(N, 3, H, W)`` in ``[0, 1]`` (a grayscale image repeated on three channels; more than three
    channels keep the first three). Raises `DatasetError` naming the shape when it is not a
    non-empty 4-D array.
    """
    array = np.asarray(images)
    if array.ndim != 4 or min(array.shape) < 1:
        raise DatasetError(
            f"images must be a non-empty array of shape (N, C, H, W); got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
        raise DatasetError(f"images must be numeric; got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.integer):
        top = 255.0 if array.dtype == np.uint8 else float(max(np.iinfo(array.dtype).max, 1))
        scaled = array.astype(np.float64) / top
    else:
        scaled = array.astype(np.float64)
        if not np.all(np.isfinite(scaled)):
            raise DatasetError(f"images of shape {array.shape} contain NaN or infinite values")
        low, high = float(scaled.min()), float(scaled.max())
        if low < 0.0 or high > 1.0:
            scaled = (scaled - low) / (high - low) if high > low else np.zeros_like(scaled)
    channels = scaled.shape[1]
    if channels >= 3:
        colour = scaled[:, :3]
        gray_full = 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    else:
        gray_full = scaled.mean(axis=1)
        colour = np.repeat(gray_full[:, None], 3, axis=1)
    gray = np.stack(
        [resize(g, (SIDE, SIDE), anti_aliasing=True, preserve_range=True) for g in gray_full]
    )
    return np.clip(gray, 0.0, 1.0), colour


def _gabor_bank() -> list[np.ndarray]:
    return [
        np.asarray(gabor_kernel(f, theta=np.pi * k / _GABOR_ORIENTATIONS))
        for f in _GABOR_FREQUENCIES
        for k in range(_GABOR_ORIENTATIONS)
    ]


def _gist(gray: np.ndarray) -> np.ndarray:
    """GIST-like energies: |Gabor response| averaged over a 4x4 grid, per filter. (N, 8*16)."""
    cell = SIDE // _GRID
    parts = []
    for kernel in _gabor_bank():
        response = np.abs(fftconvolve(gray, kernel[None], mode="same", axes=(1, 2)))
        pooled = response.reshape(len(gray), _GRID, cell, _GRID, cell).mean(axis=(2, 4))
        parts.append(pooled.reshape(len(gray), -1))
    return np.concatenate(parts, axis=1)


def image_features(images: np.ndarray) -> np.ndarray:
    """One feature row per image, ``(N, F)`` float64; ``F`` does not depend on the input shape.

    Columns: 16-bin intensity histogram, 3 x 8-bin colour histograms, 10-bin uniform LBP (P=8,
    R=1), HOG (9 orientations, 8x8 cells, 2x2 blocks: 324), DAISY (mean over a 2x2 grid: 104),
    Gabor energies (2 frequencies x 4 orientations x 4x4 grid: 128). Raises `DatasetError` for
    arrays that are not ``(N, C, H, W)``.
    """
    gray, colour = prepare_images(images)
    n = len(gray)
    intensity = np.stack([np.histogram(g, bins=16, range=(0, 1))[0] for g in gray]) / gray[0].size
    colour_hist = np.stack(
        [
            np.concatenate([np.histogram(c, bins=8, range=(0, 1))[0] / c.size for c in image])
            for image in colour
        ]
    )
    lbp_rows, hog_rows, daisy_rows = [], [], []
    for g in gray:
        codes = local_binary_pattern((g * 255).astype(np.uint8), _LBP_POINTS, 1, method="uniform")
        lbp_rows.append(np.bincount(codes.astype(int).ravel(), minlength=_LBP_POINTS + 2))
        hog_rows.append(hog(g, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)))
        descriptors = daisy(g, step=16, radius=7, rings=2, histograms=6, orientations=8)
        daisy_rows.append(np.asarray(descriptors).reshape(-1, descriptors.shape[-1]).mean(axis=0))
    lbp = np.stack(lbp_rows) / (SIDE * SIDE)
    features = np.concatenate(
        [intensity, colour_hist, lbp, np.stack(hog_rows), np.stack(daisy_rows), _gist(gray)],
        axis=1,
    )
    assert features.shape[0] == n
    return features


def _ensemble(seed: int) -> dict[str, Pipeline]:
    return {
        "naive_bayes": make_pipeline(StandardScaler(), GaussianNB()),
        "random_forest": make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=100, random_state=seed)
        ),
        "gradient_boosting": make_pipeline(
            StandardScaler(), HistGradientBoostingClassifier(
                max_iter=30, max_bins=32, random_state=seed
            )
        ),
        "mlp": make_pipeline(
            StandardScaler(),
            MLPClassifier(hidden_layer_sizes=(128,), max_iter=400, random_state=seed),
        ),
        "linear_svm": make_pipeline(
            StandardScaler(), LinearSVC(C=0.1, max_iter=5000, random_state=seed)
        ),
    }


class DatasetSimilarity:
    """Votes which known dataset a sample of images resembles. Build with `fit` or `load`.

    A fitted ranker is read-only; `similarity` may be called from several threads.
    """

    def __init__(
        self, names: list[str], classifiers: dict[str, Pipeline], sample_size: int, seed: int
    ) -> None:
        self.names = names
        self.classifiers = classifiers
        self.sample_size = sample_size
        self.seed = seed

    @classmethod
    def fit(
        cls, datasets: Mapping[str, np.ndarray], seed: int = 0, sample_size: int = 256
    ) -> DatasetSimilarity:
        """Fit the ensemble on up to ``sample_size`` images drawn (seeded) from each dataset.

        Raises `InvalidRequest` for fewer than two datasets or a bad ``sample_size`` and
        `DatasetError` (naming the dataset and shape) for a malformed image array.
        """
        if len(datasets) < 2:
            raise InvalidRequest(
                "dataset similarity needs at least 2 registered datasets to tell apart; "
                f"got {len(datasets)}"
            )
        if sample_size < 2:
            raise InvalidRequest(f"sample_size must be at least 2; got {sample_size}")
        rng = np.random.default_rng(seed)
        names = sorted(datasets)
        rows, labels = [], []
        for label, name in enumerate(names):
            images = np.asarray(datasets[name])
            if images.ndim != 4 or min(images.shape) < 1:
                raise DatasetError(
                    f"dataset {name!r}: images must be a non-empty array of shape (N, C, H, W); "
                    f"got shape {images.shape}"
                )
            take = rng.choice(len(images), size=min(sample_size, len(images)), replace=False)
            rows.append(image_features(images[np.sort(take)]))
            labels.append(np.full(len(take), label))
        x, y = np.concatenate(rows), np.concatenate(labels)
        classifiers = _ensemble(seed)
        with threadpool_limits(1):
            for classifier in classifiers.values():
                classifier.fit(x, y)
        return cls(names, classifiers, sample_size, seed)

    def votes(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per classifier, the dataset index it votes for on each of (a sample of) ``images``."""
        images = np.asarray(images)
        if images.ndim == 4 and len(images) > self.sample_size:
            rng = np.random.default_rng(self.seed)
            images = images[np.sort(rng.choice(len(images), self.sample_size, replace=False))]
        x = image_features(images)
        with threadpool_limits(1):
            return {
                name: np.asarray(c.predict(x), dtype=int) for name, c in self.classifiers.items()
            }

    def similarity(self, images: np.ndarray) -> dict[str, float]:
        """Vote shares ``{dataset name: share}`` over all known datasets; they sum to 1.

        Raises `DatasetError` naming the shape when ``images`` is not ``(N, C, H, W)``.
        """
        counts = np.zeros(len(self.names))
        for predicted in self.votes(images).values():
            counts += np.bincount(predicted, minlength=len(self.names))
        shares = counts / counts.sum()
        return {name: float(s) for name, s in zip(self.names, shares, strict=True)}

    def save(self, path: str | Path) -> None:
        """Write the ranker with joblib, tagged with `SIMILARITY_FORMAT`."""
        joblib.dump({"format": SIMILARITY_FORMAT, "ranker": self}, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> DatasetSimilarity:
        """Read a ranker written by `save` (a trusted file: joblib unpickles it).

        Raises `NotFound` for a missing file, `InvalidRequest` for another format.
        """
        path = Path(path)
        if not path.exists():
            raise NotFound(
                f"no dataset-similarity file at {path}; fit one with `nasdb recommend fit`"
            )
        blob = joblib.load(path)
        found = blob.get("format") if isinstance(blob, dict) else None
        if found != SIMILARITY_FORMAT or not isinstance(blob.get("ranker"), cls):
            raise InvalidRequest(
                f"{path} holds dataset-similarity format {found!r}, this code reads "
                f"{SIMILARITY_FORMAT!r}; refit it with `nasdb recommend fit`"
            )
        ranker: DatasetSimilarity = blob["ranker"]
        return ranker
