"""2-D layouts of the model space: landmark MDS that never moves old points.

Structural (OTMANN) and prediction (Hamming) distances are laid out with landmark MDS (de Silva
and Tenenbaum): classical MDS on a fixed set of landmark models, then every other model is placed
from its distances to the landmarks alone (an out-of-sample projection). A model placed once keeps
its coordinates, so new models join the layout without re-laying-out the old ones (REMAP's
incremental MDS). Landmarks are the first models seen; they are chosen once per layout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from nasdb.search import Architecture, structural_distance


def classical_mds(d: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classical MDS of a distance matrix; returns (coordinates, eigenvectors, eigenvalues)."""
    d2 = np.asarray(d, dtype=float) ** 2
    k = d2.shape[0]
    j = np.eye(k) - np.ones((k, k)) / k
    b = -0.5 * j @ d2 @ j
    values, vectors = np.linalg.eigh(b)
    order = np.argsort(values)[::-1][:dims]
    values = np.clip(values[order], 1e-9, None)
    vectors = vectors[:, order]
    return vectors * np.sqrt(values), vectors, values


class LandmarkLayout:
    """An incremental 2-D layout: `place` gives stable coordinates for any model ids.

    Thread-safe. ``distances(ids_a, ids_b)`` returns the |a| x |b| distance matrix.
    """

    def __init__(
        self,
        distances: Callable[[Sequence[str], Sequence[str]], np.ndarray],
        n_landmarks: int = 48,
    ) -> None:
        self._distances = distances
        self._n_landmarks = n_landmarks
        self._landmarks: list[str] = []
        self._pinv: np.ndarray | None = None
        self._mean_sq: np.ndarray | None = None
        self._coords: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def landmarks(self) -> list[str]:
        return list(self._landmarks)

    def _init_landmarks(self, ids: Sequence[str]) -> None:
        self._landmarks = list(ids[: self._n_landmarks])
        d = self._distances(self._landmarks, self._landmarks)
        coords, vectors, values = classical_mds(d)
        self._pinv = (vectors / np.sqrt(values)).T  # (2, k)
        self._mean_sq = (np.asarray(d, dtype=float) ** 2).mean(axis=0)
        for mid, xy in zip(self._landmarks, coords, strict=True):
            self._coords[mid] = (float(xy[0]), float(xy[1]))

    def place(self, ids: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Coordinates for ``ids``; models not yet placed are placed now (old ones never move)."""
        with self._lock:
            if not self._landmarks:
                if not ids:
                    return {}
                self._init_landmarks(ids)
            new = [i for i in ids if i not in self._coords]
            if new:
                assert self._pinv is not None and self._mean_sq is not None
                d = np.asarray(self._distances(new, self._landmarks), dtype=float)
                xy = -0.5 * (d**2 - self._mean_sq) @ self._pinv.T
                for mid, (x, y) in zip(new, xy, strict=True):
                    self._coords[mid] = (float(x), float(y))
            return {i: self._coords[i] for i in ids}


def structural_matrix(archs: dict[str, Architecture]) -> Callable[[Sequence[str], Sequence[str]], np.ndarray]:
    """A distance function over OTMANN distances of the given architectures (memoised)."""
    memo: dict[tuple[str, str], float] = {}

    def distances(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(a), len(b)))
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                if x == y:
                    continue
                key = (x, y) if x < y else (y, x)
                if key not in memo:
                    memo[key] = structural_distance(archs[x], archs[y])
                out[i, j] = memo[key]
        return out

    return distances


def hamming_matrix(labels: dict[str, bytes]) -> Callable[[Sequence[str], Sequence[str]], np.ndarray]:
    """A distance function over Hamming distances between predicted-label vectors."""

    def vectors(ids: Sequence[str]) -> np.ndarray:
        return np.stack([np.frombuffer(labels[i], dtype=np.uint8) for i in ids])

    def distances(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        va, vb = vectors(a), vectors(b)
        out = np.empty((len(a), len(b)))
        for start in range(0, len(a), 2048):
            chunk = va[start : start + 2048]
            out[start : start + 2048] = (chunk[:, None, :] != vb[None, :, :]).sum(axis=2)
        return out

    return distances
