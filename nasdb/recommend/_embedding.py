"""2-D maps of architecture vectors for the UI's projections.

`embed_2d` lays out vectors with metric MDS on Euclidean distances (scale-preserving, so new points
can be added later) or t-SNE (local structure only). `place_new` adds points to an existing MDS
layout without moving the old ones (out-of-sample MDS, as REMAP does): each new point independently
minimises a weighted stress ``sum_i w_i (|y - x_i| - d_i)^2`` over the existing points, with
Sammon-style weights ``w_i = 1 / (d_i + eps)^2`` so that near neighbours dominate, starting from the
inverse-distance-weighted mean of its 5 nearest existing points (scipy L-BFGS-B).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.distance import cdist
from sklearn.manifold import MDS, TSNE
from threadpoolctl import threadpool_limits

from nasdb.schema.errors import InvalidRequest

__all__ = ["embed_2d", "place_new"]

_NEIGHBOURS = 5


def _matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidRequest(f"{name} must be a 2-D array (n, dim); got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InvalidRequest(f"{name} contains NaN or infinite values")
    return array


def embed_2d(
    vectors: np.ndarray, method: Literal["mds", "tsne"] = "mds", seed: int = 0
) -> np.ndarray:
    """Coordinates ``(n, 2)`` for ``vectors`` ``(n, dim)``; deterministic given ``seed``.

    One vector maps to the origin. t-SNE's perplexity is ``min(30, (n - 1) / 3)`` (at least 1).
    Raises `InvalidRequest` for an empty or non-2-D input or an unknown method.
    """
    x = _matrix(vectors, "vectors")
    if method not in ("mds", "tsne"):
        raise InvalidRequest(f"unknown embedding method {method!r}; choose 'mds' or 'tsne'")
    if len(x) == 0:
        raise InvalidRequest("cannot embed an empty set of vectors")
    if len(x) == 1:
        return np.zeros((1, 2))
    if method == "mds":
        mds = MDS(
            n_components=2,
            metric="precomputed",
            metric_mds=True,
            init="classical_mds",
            n_init=1,
            random_state=seed,
            normalized_stress="auto",
        )
        with threadpool_limits(1):
            return np.asarray(mds.fit_transform(cdist(x, x)), dtype=np.float64)
    perplexity = max(1.0, min(30.0, (len(x) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
    with threadpool_limits(1):
        return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def place_new(
    existing_coords: np.ndarray, existing_vectors: np.ndarray, new_vectors: np.ndarray
) -> np.ndarray:
    """Coordinates ``(m, 2)`` for ``new_vectors`` in the layout of the existing points.

    The existing coordinates are never changed (the inputs are only read). Raises `InvalidRequest`
    when the shapes disagree or there are no existing points.
    """
    coords = _matrix(existing_coords, "existing_coords")
    old = _matrix(existing_vectors, "existing_vectors")
    new = _matrix(new_vectors, "new_vectors")
    if coords.shape != (len(old), 2) or len(old) == 0:
        raise InvalidRequest(
            f"existing_coords {coords.shape} must be (n, 2) with n = {len(old)} existing vectors "
            "(n >= 1)"
        )
    if new.shape[1:] != old.shape[1:]:
        raise InvalidRequest(
            f"new_vectors have dimension {new.shape[1:]}, existing_vectors {old.shape[1:]}"
        )
    distances = cdist(new, old)
    scale = float(np.median(distances)) if distances.size else 1.0
    eps = 1e-3 * (scale if scale > 0 else 1.0)
    placed = np.zeros((len(new), 2))
    for row, d in enumerate(distances):
        nearest = np.argsort(d, kind="stable")[:_NEIGHBOURS]
        weights = 1.0 / (d[nearest] + eps)
        start = (weights[:, None] * coords[nearest]).sum(0) / weights.sum()
        w = 1.0 / (d + eps) ** 2

        def stress(y: np.ndarray, d: np.ndarray = d, w: np.ndarray = w) -> tuple[float, np.ndarray]:
            diff = y[None, :] - coords
            r = np.maximum(np.linalg.norm(diff, axis=1), 1e-12)
            err = r - d
            value = float(np.sum(w * err**2))
            grad = np.sum((2.0 * w * err / r)[:, None] * diff, axis=0)
            return value, grad

        result = minimize(stress, start, jac=True, method="L-BFGS-B")
        placed[row] = result.x
    return placed
