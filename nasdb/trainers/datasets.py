"""Datasets as tensors: load once, normalise once, split deterministically.

Four kinds of source are supported, each read from local files only (nothing is ever downloaded):

| kind            | source                                                   | shape (C,H,W) |
| --------------- | -------------------------------------------------------- | ------------- |
| `digits`        | scikit-learn's bundled `load_digits`                     | 1x8x8         |
| `fashion-mnist` | the four IDX files (`.gz` or plain), Debian's layout     | 1x28x28       |
| `cifar10`       | a local `cifar-10-batches-py` directory (python pickles) | 3x32x32       |
| `imagefolder`   | one sub-directory of images per class                    | common size   |

Contract of every loaded dataset (`LoadedDataset`):

- `x_*` are float32 NCHW tensors, normalised per channel to mean 0 / std 1 with statistics computed
  on the *train* split only (`mean`, `std` keep them); `y_*` are int64 class indices.
- Splits are a pure function of the source data, `val_seed` and `limit`: the test split never
  depends on `val_seed` (the official test set where the source has one, else a fixed-seed
  draw); the validation split is drawn from the training data with `val_seed`.
- `limit` caps the split sizes for fast runs: at most `limit` training images, at most
  `ceil(limit * val_fraction / (1 - val_fraction))` validation images and at most `limit` test
  images, each a deterministic subsample.
- `fingerprint` is the sha256 of the raw source bytes (decompressed for `.gz` files, so a gzipped
  and a plain copy agree); it does not depend on `val_seed` or `limit`.

Every problem with a source (missing directory or file, bad IDX magic number, truncated file,
corrupt pickle, empty ImageFolder) raises one `DatasetError` whose message names the path and what
was expected. Loaded datasets are cached in-process by `(kind, resolved path, val_seed, limit)`;
the cached tensors are shared, so callers must treat them as read-only. The cache is thread-safe
(functools.lru_cache).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import pickle
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasdb.schema.errors import DatasetError

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "HFLIP",
    "KINDS",
    "DatasetSpec",
    "LoadedDataset",
    "clear_cache",
    "default_dataset",
    "describe",
    "load_dataset",
    "read_idx",
]

KINDS: tuple[str, ...] = ("digits", "fashion-mnist", "cifar10", "imagefolder")
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

HFLIP: dict[str, bool] = {"digits": False, "fashion-mnist": True, "cifar10": True,
                          "imagefolder": False}
"""Whether a horizontal flip keeps an image's class (digits: no; clothes and CIFAR-10 objects:
yes; an unknown ImageFolder: no). Recorded with the dataset (DatasetRegistered.hflip)."""

VAL_FRACTION = 0.1
"""Share of the training data held out for validation (every kind)."""
TEST_FRACTION = 0.2
"""Share held out for testing when the source has no official test split (digits, imagefolder)."""
_TEST_SPLIT_SEED = 20_231_123
"""Fixed seed of the test draw: the test split must not move when `val_seed` changes."""
_LIMIT_SEED = 7_919
"""Fixed seed of the test subsample under `limit`."""


# --------------------------------------------------------------------------------------------------
# public types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """What to load: `load_dataset`'s arguments, as a value that can travel in a job payload."""

    kind: str
    path: str | None = None
    val_seed: int = 0
    limit: int | None = None

    def load(self) -> LoadedDataset:
        """Load (or fetch from the cache) the dataset this spec names; raises `DatasetError`."""
        return load_dataset(self.kind, self.path, val_seed=self.val_seed, limit=self.limit)


@dataclass(frozen=True, eq=False)
class LoadedDataset:
    """A dataset in memory, split and normalised; see the module docstring for the contract."""

    kind: str
    source: str
    fingerprint: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    val_seed: int = 0
    limit: int | None = None
    spec: DatasetSpec = field(default_factory=lambda: DatasetSpec("digits"))

    @property
    def num_classes(self) -> int:
        """Number of classes (labels are 0..num_classes-1)."""
        return len(self.class_names)

    @property
    def hflip(self) -> bool:
        """Whether training may flip images horizontally (`HFLIP`)."""
        return HFLIP.get(self.kind, False)

    @property
    def split_sizes(self) -> dict[str, int]:
        """Images per split: {"train": n, "val": n, "test": n}."""
        return {
            "train": int(self.y_train.shape[0]),
            "val": int(self.y_val.shape[0]),
            "test": int(self.y_test.shape[0]),
        }

    def describe(self, name: str | None = None) -> dict[str, Any]:
        """The DatasetRegistered payload for this dataset (see `describe`)."""
        return describe(self, name)


def describe(data: LoadedDataset, name: str | None = None) -> dict[str, Any]:
    """Metadata for the DatasetRegistered event: plain JSON types only.

    Keys: name (defaults to the kind), kind, source, fingerprint, shape [C, H, W], channels, height,
    width, classes, num_classes, train_size, val_size, test_size, val_seed, limit, mean, std.
    """
    c, h, w = data.input_shape
    sizes = data.split_sizes
    return {
        "name": name or data.kind,
        "kind": data.kind,
        "source": data.source,
        "fingerprint": data.fingerprint,
        "shape": [c, h, w],
        "channels": c,
        "height": h,
        "width": w,
        "classes": list(data.class_names),
        "num_classes": data.num_classes,
        "train_size": sizes["train"],
        "val_size": sizes["val"],
        "test_size": sizes["test"],
        "val_seed": data.val_seed,
        "limit": data.limit,
        "hflip": data.hflip,
        "mean": list(data.mean),
        "std": list(data.std),
    }


def default_dataset() -> DatasetSpec:
    """Fashion-MNIST when Debian's files are installed, else the bundled digits."""
    if (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists() or (
        DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte"
    ).exists():
        return DatasetSpec("fashion-mnist", str(DEFAULT_FASHION_MNIST_DIR))
    return DatasetSpec("digits")


def load_dataset(
    kind: str, path: str | Path | None = None, val_seed: int = 0, limit: int | None = None
) -> LoadedDataset:
    """Load a dataset of `kind` from `path` (see the module docstring); cached in-process.

    `path` is ignored for digits, defaults to /usr/share/datasets/fashion-mnist for fashion-mnist
    and is required for cifar10 and imagefolder. Raises `DatasetError` for an unknown kind, a bad
    `limit` or any problem with the source.
    """
    kind = kind.strip().lower().replace("_", "-")
    if kind in ("fmnist", "fashionmnist"):
        kind = "fashion-mnist"
    if kind in ("cifar-10", "cifar"):
        kind = "cifar10"
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    if limit is not None and limit < 1:
        raise DatasetError(f"{kind}: limit must be a positive number of images, got {limit}")
    if kind == "digits":
        resolved = None
    elif path is None and kind == "fashion-mnist":
        resolved = str(DEFAULT_FASHION_MNIST_DIR)
    elif path is None:
        raise DatasetError(f"{kind}: a path is required (no default location for {kind})")
    else:
        resolved = str(Path(path).expanduser().resolve())
    return _load_cached(kind, resolved, int(val_seed), limit)


def clear_cache() -> None:
    """Forget every cached dataset (e.g. after the files on disk changed)."""
    _load_cached.cache_clear()


# --------------------------------------------------------------------------------------------------
# splitting and normalising (shared by every kind)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _load_cached(kind: str, path: str | None, val_seed: int, limit: int | None) -> LoadedDataset:
    loader = {
        "digits": _load_digits,
        "fashion-mnist": _load_fashion_mnist,
        "cifar10": _load_cifar10,
        "imagefolder": _load_imagefolder,
    }[kind]
    return loader(path, val_seed, limit)


@dataclass
class _Raw:
    """Source images as uint8 NCHW (or float NCHW already in [0, 1]) before normalisation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _val_size(n_train_pool: int) -> int:
    return max(1, round(n_train_pool * VAL_FRACTION)) if n_train_pool > 1 else 0


def _split_train_val(n: int, val_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of train and val drawn from `n` training images with `val_seed`."""
    perm = np.random.default_rng(val_seed).permutation(n)
    n_val = _val_size(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _split_three(n: int, val_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / val / test indices for sources without an official test split."""
    perm = np.random.default_rng(_TEST_SPLIT_SEED).permutation(n)
    n_test = max(1, round(n * TEST_FRACTION))
    test, pool = np.sort(perm[:n_test]), perm[n_test:]
    train_rel, val_rel = _split_train_val(len(pool), val_seed)
    pool = np.sort(pool)
    return pool[train_rel], pool[val_rel], test


def _limit_indices(
    train: np.ndarray, val: np.ndarray, test: np.ndarray, limit: int | None, val_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply `limit` (module docstring) to already-split index arrays."""
    if limit is None:
        return train, val, test
    max_val = math.ceil(limit * VAL_FRACTION / (1 - VAL_FRACTION))

    def take(idx: np.ndarray, k: int, seed: int) -> np.ndarray:
        if len(idx) <= k:
            return idx
        return np.sort(idx[np.random.default_rng(seed).permutation(len(idx))[:k]])

    return (
        take(train, limit, val_seed + 1),
        take(val, max_val, val_seed + 2),
        take(test, limit, _LIMIT_SEED),
    )


def _finish(
    raw: _Raw,
    *,
    kind: str,
    source: str,
    fingerprint: str,
    class_names: Sequence[str],
    val_seed: int,
    limit: int | None,
    scale: float,
    spec_path: str | None,
) -> LoadedDataset:
    """Scale to [0, 1], normalise per channel with train statistics, wrap as tensors."""
    x_train = torch.from_numpy(np.ascontiguousarray(raw.x_train)).float().div_(scale)
    if x_train.shape[0] == 0:
        raise DatasetError(f"{kind}: {source} gives an empty training split")
    mean = x_train.mean(dim=(0, 2, 3))
    std = x_train.std(dim=(0, 2, 3))
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    m, s = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)

    def norm(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(scale)
        return t.sub_(m).div_(s).contiguous()

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))

    c, h, w = (int(d) for d in raw.x_train.shape[1:])
    return LoadedDataset(
        kind=kind,
        source=source,
        fingerprint=fingerprint,
        class_names=tuple(class_names),
        input_shape=(c, h, w),
        x_train=x_train.sub_(m).div_(s).contiguous(),
        y_train=labels(raw.y_train),
        x_val=norm(raw.x_val),
        y_val=labels(raw.y_val),
        x_test=norm(raw.x_test),
        y_test=labels(raw.y_test),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        val_seed=val_seed,
        limit=limit,
        spec=DatasetSpec(kind, spec_path, val_seed, limit),
    )


def _require_dir(kind: str, path: str, expected: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{kind}: {p} does not exist; expected {expected}")
    if not p.is_dir():
        raise DatasetError(f"{kind}: {p} is not a directory; expected {expected}")
    return p


# --------------------------------------------------------------------------------------------------
# digits (scikit-learn, bundled)
# --------------------------------------------------------------------------------------------------


def _load_digits(path: str | None, val_seed: int, limit: int | None) -> LoadedDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images).astype(np.uint8)[:, None, :, :]  # values 0..16
    target = np.asarray(bunch.target).astype(np.int64)
    digest = hashlib.sha256()
    digest.update(images.tobytes())
    digest.update(target.astype(np.uint8).tobytes())
    train, val, test = _limit_indices(*_split_three(len(target), val_seed), limit, val_seed)
    raw = _Raw(images[train], target[train], images[val], target[val], images[test], target[test])
    return _finish(
        raw,
        kind="digits",
        source="sklearn.datasets.load_digits",
        fingerprint=digest.hexdigest(),
        class_names=[str(i) for i in range(10)],
        val_seed=val_seed,
        limit=limit,
        scale=16.0,
        spec_path=None,
    )


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------------------------------

_FMNIST_EXPECTED = "the four IDX files from Debian's dataset-fashion-mnist package"
_FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_UBYTE = 0x08


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"fashion-mnist: {directory} has no {stem}(.gz); expected {_FMNIST_EXPECTED}")


def _read_bytes(kind: str, path: Path, expected: str) -> bytes:
    """The file's content, gunzipped when it ends in .gz; unreadable -> DatasetError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DatasetError(f"{kind}: {path} is truncated or not gzip data; expected {expected}") from e
    except OSError as e:
        raise DatasetError(f"{kind}: cannot read {path} ({e.strerror}); expected {expected}") from e


def read_idx(path: Path, ndim: int, kind: str = "fashion-mnist") -> np.ndarray:
    """Parse an unsigned-byte IDX file (gzipped or plain) into a uint8 array of `ndim` dimensions.

    The magic number must be 0x0000080N with N == `ndim`; the file must hold exactly the bytes its
    header promises. Raises `DatasetError` naming the path otherwise.
    """
    data = _read_bytes(kind, path, f"an IDX file with {ndim} dimension(s)")
    expected_magic = (_IDX_UBYTE << 8) | ndim
    if len(data) < 4:
        raise DatasetError(f"{kind}: {path} is truncated: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DatasetError(
            f"{kind}: {path} has IDX magic number 0x{magic:08x}; "
            f"expected 0x{expected_magic:08x} (unsigned bytes, {ndim} dimension(s))"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{kind}: {path} is truncated: {len(data)} bytes, too short for an IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    need = math.prod(dims)
    have = len(data) - header
    if have != need:
        shape = "x".join(str(d) for d in dims)
        word = "truncated" if have < need else "too long"
        raise DatasetError(
            f"{kind}: {path} is {word}: its header promises {shape} = {need} bytes of data, found {have}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _load_fashion_mnist(path: str | None, val_seed: int, limit: int | None) -> LoadedDataset:
    assert path is not None
    directory = _require_dir("fashion-mnist", path, f"a directory holding {_FMNIST_EXPECTED}")
    files = [_find_idx(directory, stem) for stem in _FMNIST_FILES]
    digest = hashlib.sha256()
    arrays: list[np.ndarray] = []
    for stem, file, ndim in zip(_FMNIST_FILES, files, (3, 1, 3, 1), strict=True):
        arr = read_idx(file, ndim)
        digest.update(stem.encode() + b"\n")
        digest.update(arr.tobytes())
        arrays.append(arr)
    x_all, y_all, x_test, y_test = arrays
    for xs, ys, fx, fy in (
        (x_all, y_all, files[0], files[1]),
        (x_test, y_test, files[2], files[3]),
    ):
        if len(xs) != len(ys):
            raise DatasetError(
                f"fashion-mnist: {fx} has {len(xs)} images but {fy} has {len(ys)} labels; "
                f"expected {_FMNIST_EXPECTED}"
            )
    if x_all.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"fashion-mnist: {files[0]} holds {x_all.shape[1]}x{x_all.shape[2]} images but "
            f"{files[2]} holds {x_test.shape[1]}x{x_test.shape[2]}; expected {_FMNIST_EXPECTED}"
        )
    for file, ys in ((files[1], y_all), (files[3], y_test)):
        if ys.size and int(ys.max()) >= len(FASHION_MNIST_CLASSES):
            raise DatasetError(f"fashion-mnist: {file} holds label {int(ys.max())}; expected labels 0..9")
    train, val = _split_train_val(len(y_all), val_seed)
    train, val, test = _limit_indices(train, val, np.arange(len(y_test)), limit, val_seed)
    raw = _Raw(
        x_all[train][:, None], y_all[train], x_all[val][:, None], y_all[val],
        x_test[test][:, None], y_test[test],
    )  # fmt: skip
    return _finish(
        raw,
        kind="fashion-mnist",
        source=str(directory),
        fingerprint=digest.hexdigest(),
        class_names=FASHION_MNIST_CLASSES,
        val_seed=val_seed,
        limit=limit,
        scale=255.0,
        spec_path=str(directory),
    )


# --------------------------------------------------------------------------------------------------
# CIFAR-10 (python pickles, unpickled with a restricted unpickler)
# --------------------------------------------------------------------------------------------------

_CIFAR_EXPECTED = (
    "a cifar-10-batches-py directory (data_batch_1..5, test_batch, batches.meta) "
    "extracted from cifar-10-python.tar.gz"
)
_CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else (a batch file cannot run code)."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),  # bytes pickled by Python 3 at protocol < 3
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _unpickle(file: Path, content: bytes) -> dict[Any, Any]:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(content), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means the same thing to the user
        raise DatasetError(
            f"cifar10: {file} is not a readable CIFAR-10 pickle; expected {_CIFAR_EXPECTED}"
        ) from e
    if not isinstance(obj, dict):
        raise DatasetError(f"cifar10: {file} is not a readable CIFAR-10 pickle; expected {_CIFAR_EXPECTED}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray, bytes]:
    content = _read_bytes("cifar10", file, _CIFAR_EXPECTED)
    batch = _unpickle(file, content)
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(f"data {data.shape}, labels {labels.shape}")
    except (KeyError, ValueError, TypeError) as e:
        raise DatasetError(
            f"cifar10: {file} is not a CIFAR-10 batch (needs 'data' N x 3072 uint8 and N "
            f"'labels'); expected {_CIFAR_EXPECTED}"
        ) from e
    return data.reshape(-1, 3, 32, 32), labels, content


def _load_cifar10(path: str | None, val_seed: int, limit: int | None) -> LoadedDataset:
    assert path is not None
    directory = _require_dir("cifar10", path, _CIFAR_EXPECTED)
    if not (directory / "data_batch_1").exists() and (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    for name in (*_CIFAR_FILES, "batches.meta"):
        if not (directory / name).is_file():
            raise DatasetError(f"cifar10: {directory} has no {name}; expected {_CIFAR_EXPECTED}")
    digest = hashlib.sha256()
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for name in _CIFAR_FILES:
        x, y, content = _cifar_batch(directory / name)
        digest.update(name.encode() + b"\n" + content)
        xs.append(x)
        ys.append(y)
    meta_file = directory / "batches.meta"
    meta = _unpickle(meta_file, _read_bytes("cifar10", meta_file, _CIFAR_EXPECTED))
    names = meta.get("label_names")
    if isinstance(names, list) and len(names) == 10:
        class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    else:
        class_names = CIFAR10_CLASSES
    x_all, y_all = np.concatenate(xs[:-1]), np.concatenate(ys[:-1])
    x_test, y_test = xs[-1], ys[-1]
    for file, y in ((directory / "data_batch_1", y_all), (directory / "test_batch", y_test)):
        if y.size and (int(y.min()) < 0 or int(y.max()) >= 10):
            raise DatasetError(f"cifar10: {file} holds label {int(y.max())}; expected labels 0..9")
    train, val = _split_train_val(len(y_all), val_seed)
    train, val, test = _limit_indices(train, val, np.arange(len(y_test)), limit, val_seed)
    raw = _Raw(x_all[train], y_all[train], x_all[val], y_all[val], x_test[test], y_test[test])
    return _finish(
        raw,
        kind="cifar10",
        source=str(directory),
        fingerprint=digest.hexdigest(),
        class_names=class_names,
        val_seed=val_seed,
        limit=limit,
        scale=255.0,
        spec_path=str(directory),
    )


# --------------------------------------------------------------------------------------------------
# ImageFolder (torchvision's directory layout, decoded once with PIL)
# --------------------------------------------------------------------------------------------------

_IMAGEFOLDER_EXPECTED = "one sub-directory per class holding image files (.png, .jpg, ...)"


def _load_imagefolder(path: str | None, val_seed: int, limit: int | None) -> LoadedDataset:
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder

    assert path is not None
    directory = _require_dir("imagefolder", path, f"a directory with {_IMAGEFOLDER_EXPECTED}")
    try:
        folder = ImageFolder(str(directory), loader=lambda p: p)
    except FileNotFoundError as e:
        raise DatasetError(f"imagefolder: {directory} has no images; expected {_IMAGEFOLDER_EXPECTED}") from e
    samples = [(Path(p), int(c)) for p, c in folder.samples]
    if len(samples) < 3:
        raise DatasetError(
            f"imagefolder: {directory} has {len(samples)} image(s); expected at least 3 "
            "(one each for the train, validation and test splits)"
        )
    # Fingerprint: every file's relative path and bytes, in ImageFolder's (sorted) order.
    digest = hashlib.sha256()
    for file, _ in samples:
        digest.update(str(file.relative_to(directory)).encode() + b"\n")
        digest.update(file.read_bytes())
    targets = np.array([c for _, c in samples], dtype=np.int64)
    train, val, test = _limit_indices(*_split_three(len(samples), val_seed), limit, val_seed)
    wanted = np.concatenate([train, val, test])

    images: dict[int, Image.Image] = {}
    for i in wanted.tolist():
        file = samples[i][0]
        try:
            with Image.open(file) as img:
                img.load()
                images[i] = img.copy()
        except (UnidentifiedImageError, OSError) as e:
            raise DatasetError(
                f"imagefolder: {file} is not a readable image; expected {_IMAGEFOLDER_EXPECTED}"
            ) from e
    gray = all(img.mode in ("1", "L", "LA", "I", "I;16", "F") for img in images.values())
    mode = "L" if gray else "RGB"
    size = Counter(img.size for img in images.values()).most_common(1)[0][0]

    def to_array(img: Image.Image) -> np.ndarray:
        img = img.convert(mode)
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def stack(idx: np.ndarray) -> np.ndarray:
        c = 1 if gray else 3
        if len(idx) == 0:
            return np.zeros((0, c, size[1], size[0]), dtype=np.uint8)
        return np.stack([to_array(images[i]) for i in idx.tolist()])

    raw = _Raw(stack(train), targets[train], stack(val), targets[val], stack(test), targets[test])
    return _finish(
        raw,
        kind="imagefolder",
        source=str(directory),
        fingerprint=digest.hexdigest(),
        class_names=folder.classes,
        val_seed=val_seed,
        limit=limit,
        scale=255.0,
        spec_path=str(directory),
    )
