"""Dataset loaders against small real files in each format, and every error message exactly."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasdb.schema.errors import DatasetError
from nasdb.trainers.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetSpec,
    LoadedDataset,
    clear_cache,
    describe,
    load_dataset,
)

FMNIST_EXPECTED = "the four IDX files from Debian's dataset-fashion-mnist package"
CIFAR_EXPECTED = (
    "a cifar-10-batches-py directory (data_batch_1..5, test_batch, batches.meta) "
    "extracted from cifar-10-python.tar.gz"
)
IMAGEFOLDER_EXPECTED = "one sub-directory per class holding image files (.png, .jpg, ...)"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


# --------------------------------------------------------------------------------------------------
# writers of real files
# --------------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_fmnist(
    directory: Path, n_train: int = 50, n_test: int = 20, *, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        if gz:
            with gzip.open(directory / f"{stem}.gz", "wb") as fh:
                fh.write(idx_bytes(arr))
        else:
            (directory / stem).write_bytes(idx_bytes(arr))
    return arrays


def write_cifar(directory: Path, per_batch: int = 12, n_test: int = 10) -> None:
    """Batches in the real format: dicts with bytes keys, 'data' N x 3072 uint8, 'labels' list."""
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True)
    for i in range(1, 6):
        batch = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{j}.png".encode() for j in range(per_batch)],
        }
        (directory / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": list(range(10))[:n_test],
        b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
        b"filenames": [b"t.png"] * n_test,
    }
    (directory / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer")] + [
        n.encode() for n in ("dog", "frog", "horse", "ship", "truck")
    ]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def write_imagefolder(directory: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(2)
    for name in ("cat", "dog", "owl"):
        (directory / name).mkdir(parents=True)
        for j in range(per_class):
            size = (12, 10) if j else (16, 16)  # one odd size per class: resized to the common one
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr, "RGB").save(directory / name / f"{j}.png")


def assert_normalised(data: LoadedDataset) -> None:
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == torch.float32 and x.ndim == 4 and tuple(x.shape[1:]) == data.input_shape
    for y in (data.y_train, data.y_val, data.y_test):
        assert y.dtype == torch.int64
    mean = data.x_train.mean(dim=(0, 2, 3))
    std = data.x_train.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-3)


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------


def test_digits_splits_are_deterministic_and_disjoint() -> None:
    data = load_dataset("digits", val_seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.split_sizes == {"train": 1294, "val": 144, "test": 359}
    assert_normalised(data)
    clear_cache()
    again = load_dataset("digits", val_seed=0)
    assert again is not data and torch.equal(again.x_val, data.x_val)
    assert again.fingerprint == data.fingerprint and len(data.fingerprint) == 64
    other = load_dataset("digits", val_seed=1)
    assert torch.equal(other.y_test, data.y_test)  # test split does not move with val_seed
    assert not torch.equal(other.y_val, data.y_val)
    assert other.fingerprint == data.fingerprint
    # all 1797 images are used exactly once: compare sorted raw rows
    total = sum(data.split_sizes.values())
    assert total == 1797


def test_cache_returns_the_same_object() -> None:
    assert load_dataset("digits") is load_dataset("digits", None, 0, None)
    assert DatasetSpec("digits").load() is load_dataset("digits")


def test_limit_caps_every_split() -> None:
    data = load_dataset("digits", limit=100)
    assert data.split_sizes == {"train": 100, "val": 12, "test": 100}
    assert data.describe()["limit"] == 100


def test_describe_is_the_registration_payload() -> None:
    meta = describe(load_dataset("digits"), name="digits-small")
    assert meta["name"] == "digits-small"
    assert meta["kind"] == "digits"
    assert meta["source"] == "sklearn.datasets.load_digits"
    assert meta["shape"] == [1, 8, 8]
    assert (meta["channels"], meta["height"], meta["width"]) == (1, 8, 8)
    assert meta["classes"] == [str(i) for i in range(10)]
    assert (meta["train_size"], meta["val_size"], meta["test_size"]) == (1294, 144, 359)
    assert meta["val_seed"] == 0


def test_unknown_kind() -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist")
    assert str(err.value) == (
        "unknown dataset kind 'mnist'; expected one of digits, fashion-mnist, cifar10, imagefolder"
    )


# --------------------------------------------------------------------------------------------------
# fashion-mnist
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = write_fmnist(tmp_path / "f", gz=gz)
    data = load_dataset("fashion-mnist", tmp_path / "f", val_seed=3)
    assert data.input_shape == (1, 28, 28)
    assert data.class_names == FASHION_MNIST_CLASSES
    assert data.split_sizes == {"train": 45, "val": 5, "test": 20}
    assert data.source == str((tmp_path / "f").resolve())
    assert_normalised(data)
    # the test split is the t10k file in file order, pixel for pixel
    raw = arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255
    restored = data.x_test[:, 0].numpy() * data.std[0] + data.mean[0]
    np.testing.assert_allclose(restored, raw, atol=1e-5)
    assert data.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_fingerprint_ignores_compression(tmp_path: Path) -> None:
    write_fmnist(tmp_path / "gz", gz=True)
    write_fmnist(tmp_path / "plain", gz=False)
    write_fmnist(tmp_path / "other", gz=True, seed=9)
    a = load_dataset("fashion-mnist", tmp_path / "gz")
    b = load_dataset("fashion-mnist", tmp_path / "plain")
    c = load_dataset("fashion-mnist", tmp_path / "other")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_fashion_mnist_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path / "nope")
    assert str(err.value) == (
        f"fashion-mnist: {tmp_path / 'nope'} does not exist; expected a directory holding {FMNIST_EXPECTED}"
    )


def test_fashion_mnist_missing_file(tmp_path: Path) -> None:
    write_fmnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert str(err.value) == (
        f"fashion-mnist: {tmp_path} has no train-images-idx3-ubyte(.gz); expected {FMNIST_EXPECTED}"
    )


def test_fashion_mnist_bad_magic(tmp_path: Path) -> None:
    write_fmnist(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert str(err.value) == (
        f"fashion-mnist: {labels} has IDX magic number 0x00000803; "
        "expected 0x00000801 (unsigned bytes, 1 dimension(s))"
    )


def test_fashion_mnist_truncated_idx(tmp_path: Path) -> None:
    write_fmnist(tmp_path, gz=False)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert str(err.value) == (
        f"fashion-mnist: {images} is truncated: its header promises 20x28x28 = 15680 bytes of data, found 984"
    )


def test_fashion_mnist_truncated_gzip(tmp_path: Path) -> None:
    write_fmnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:500])
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert str(err.value) == (
        f"fashion-mnist: {images} is truncated or not gzip data; expected an IDX file with 3 dimension(s)"
    )


def test_fashion_mnist_label_count_mismatch(tmp_path: Path) -> None:
    write_fmnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(49, dtype=np.uint8)))
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert str(err.value) == (
        f"fashion-mnist: {tmp_path / 'train-images-idx3-ubyte'} has 50 images but "
        f"{tmp_path / 'train-labels-idx1-ubyte'} has 49 labels; expected {FMNIST_EXPECTED}"
    )


# --------------------------------------------------------------------------------------------------
# cifar10
# --------------------------------------------------------------------------------------------------


def test_cifar10_from_pickled_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    data = load_dataset("cifar10", root)
    assert data.input_shape == (3, 32, 32)
    assert data.class_names[:3] == ("airplane", "automobile", "bird")
    assert data.split_sizes == {"train": 54, "val": 6, "test": 10}
    assert data.y_test.tolist() == list(range(10))
    assert_normalised(data)
    # the parent directory works too (torchvision's root=parent convention)
    clear_cache()
    assert load_dataset("cifar10", tmp_path).fingerprint == data.fingerprint


def test_cifar10_missing_batch(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path / "c")
    assert str(err.value) == f"cifar10: {tmp_path / 'c'} has no data_batch_3; expected {CIFAR_EXPECTED}"


def test_cifar10_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path / "missing")
    assert str(err.value) == f"cifar10: {tmp_path / 'missing'} does not exist; expected {CIFAR_EXPECTED}"


def test_cifar10_corrupt_pickle(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    batch = tmp_path / "c" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:300])
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path / "c")
    assert str(err.value) == f"cifar10: {batch} is not a readable CIFAR-10 pickle; expected {CIFAR_EXPECTED}"


def test_cifar10_pickle_cannot_run_code(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    batch = tmp_path / "c" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": Path("/etc/passwd")}))  # a non-numpy global
    with pytest.raises(DatasetError, match="is not a readable CIFAR-10 pickle"):
        load_dataset("cifar10", tmp_path / "c")


def test_cifar10_wrong_batch_content(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    batch = tmp_path / "c" / "test_batch"
    batch.write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path / "c")
    assert str(err.value) == (
        f"cifar10: {batch} is not a CIFAR-10 batch (needs 'data' N x 3072 uint8 and N 'labels'); "
        f"expected {CIFAR_EXPECTED}"
    )


# --------------------------------------------------------------------------------------------------
# imagefolder
# --------------------------------------------------------------------------------------------------


def test_imagefolder_decodes_and_resizes(tmp_path: Path) -> None:
    write_imagefolder(tmp_path / "imgs")
    data = load_dataset("imagefolder", tmp_path / "imgs", val_seed=5)
    assert data.class_names == ("cat", "dog", "owl")
    assert data.input_shape == (3, 10, 12)  # the most common size (12 wide, 10 high)
    sizes = data.split_sizes
    assert sizes == {"train": 13, "val": 1, "test": 4}
    assert_normalised(data)
    clear_cache()
    again = load_dataset("imagefolder", tmp_path / "imgs", val_seed=5)
    assert torch.equal(again.x_test, data.x_test) and again.fingerprint == data.fingerprint


def test_imagefolder_grayscale_keeps_one_channel(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for j in range(3):
            Image.fromarray(np.full((5, 5), 40 * j, dtype=np.uint8), "L").save(tmp_path / name / f"{j}.png")
    data = load_dataset("imagefolder", tmp_path)
    assert data.input_shape == (1, 5, 5)


def test_imagefolder_empty(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError) as err:
        load_dataset("imagefolder", tmp_path)
    assert str(err.value) == f"imagefolder: {tmp_path} has no images; expected {IMAGEFOLDER_EXPECTED}"


def test_imagefolder_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("imagefolder", tmp_path / "x")
    assert str(err.value) == (
        f"imagefolder: {tmp_path / 'x'} does not exist; expected a directory with {IMAGEFOLDER_EXPECTED}"
    )


def test_imagefolder_corrupt_image(tmp_path: Path) -> None:
    write_imagefolder(tmp_path)
    bad = tmp_path / "dog" / "3.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError) as err:
        load_dataset("imagefolder", tmp_path)
    assert str(err.value) == (f"imagefolder: {bad} is not a readable image; expected {IMAGEFOLDER_EXPECTED}")


def test_path_required_for_cifar_and_imagefolder() -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("imagefolder")
    assert str(err.value) == "imagefolder: a path is required (no default location for imagefolder)"
