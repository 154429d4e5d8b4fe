"""Regenerate the golden vectors: trained digits networks, their test inputs and results.

    python -m logspike.golden.make [--only NAME]

NAMES are stored here; the LARGE ones (VGG-11 and VGG-16 at 32x32x3 on mnist5k32x3) are made on first use
into build/golden (or $LOGSPIKE_GOLDEN_CACHE) by `cached`, or by --only NAME.

Each vector is a folder golden/NAME/ with package/ (manifest.json,
tensors.npz), inputs.npy, labels.npy and results.npz (SPEC section 5, from
the golden model). The RTL tests read these instead of training. Training is
seeded, so a rerun with the same training code, torch build and CPU type gives
the same files (float reductions differ between CPUs, so elsewhere a few
weight codes may differ); the test suite checks that results.npz still equals
the golden model on the stored package, so the vectors and the model can never
drift apart silently.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from logspike.model import data, golden, train
from logspike.model.convert import encode_inputs, to_package
from logspike.model.package import Package, read, write
from logspike.model.quant import QuantConfig

HERE = Path(__file__).parent
NAMES = ("digits_mlp", "digits_cnn", "digits_atsnn", "digits_resnet8", "digits_resnet8_atsnn")
# the papers' networks at CIFAR's 32x32x3, trained on the MNIST digits the project has (mnist5k32x3): too large
# to store (VGG-16 holds 15 M weights), so made on first use into CACHE; epochs: (float, CAT) on 2 cores
# about 65 s (VGG-16) and 31 s (VGG-11) a float epoch
LARGE = {"mnist5k32x3_vgg11": ("vgg11", 8, 3), "mnist5k32x3_vgg16": ("vgg16", 8, 3)}
CACHE = Path(os.environ.get("LOGSPIKE_GOLDEN_CACHE", HERE.parent / "build" / "golden"))


def _ttfs(net_name: str, d: data.Dataset) -> tuple[Package, np.ndarray]:
    q = QuantConfig()
    cfg = train.TrainConfig(net=net_name)
    _, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    return to_package(cat, q), encode_inputs(d.test.x, q)


def _atsnn(d: data.Dataset, net_name: str) -> tuple[Package, np.ndarray]:
    """The ATSNN of `python -m logspike.model.atsnn_report --net NET_NAME` (the same seeded training and
    calibration, so the same package as that report's)."""
    from logspike.model.atsnn import SNNConfig, calibrate, margin_candidates, to_package as ms_package, train_snn

    net = train_snn(d, net_name, SNNConfig(time_steps=16, loss="early"), epochs=30)
    pkg = ms_package(net)
    tv = golden.output_trace(pkg, d.val.bytes)
    margin = calibrate(tv, d.val.y, "margin", 0.005, margin_candidates(tv))[0]
    pkg.manifest["exit"]["margin"] = margin
    return pkg, d.test.bytes


def _ttfs_trained(net_name: str, d: data.Dataset, epochs: int, cat_epochs: int) -> tuple[Package, np.ndarray]:
    q = QuantConfig()
    cfg = train.TrainConfig(net=net_name, epochs=epochs, cat_epochs=cat_epochs)
    _, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    return to_package(cat, q), encode_inputs(d.test.x, q)


def make(name: str, out: Path = HERE) -> Path:
    torch.manual_seed(0)
    if name in LARGE:
        net_name, epochs, cat_epochs = LARGE[name]
        d = data.load(name.split("_", 1)[0])
        pkg, x = _ttfs_trained(net_name, d, epochs, cat_epochs)
    else:
        d = data.digits()
        net_name = name.split("_", 1)[1]
        if net_name.endswith("atsnn"):
            pkg, x = _atsnn(d, net_name.rpartition("_")[0] or "mlp")
        else:
            pkg, x = _ttfs(net_name, d)
    folder = out / name
    write(pkg, folder / "package")
    np.save(folder / "inputs.npy", x)
    np.save(folder / "labels.npy", d.test.y)
    golden.save_results(golden.run(pkg, x), folder / "results.npz")
    return folder


def load(name: str, root: Path = HERE) -> tuple[Package, np.ndarray, np.ndarray, dict]:
    """(package, inputs, labels, results) of a stored vector."""
    folder = root / name
    with np.load(folder / "results.npz") as z:
        res = {k: z[k] for k in z.files}
    return read(folder / "package"), np.load(folder / "inputs.npy"), np.load(folder / "labels.npy"), res


def cached(name: str) -> tuple[Package, np.ndarray, np.ndarray, dict]:
    """load() of a LARGE vector from CACHE, trained there first if it is not (minutes)."""
    if not (CACHE / name / "results.npz").exists():
        print(f"training {name} into {CACHE} (not cached yet) ...", flush=True)
        make(name, CACHE)
    return load(name, CACHE)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=NAMES + tuple(LARGE))
    a = ap.parse_args(argv)
    for name in [a.only] if a.only else NAMES:
        root = CACHE if name in LARGE else HERE
        folder = make(name, root)
        pkg, x, y, res = load(name, root)
        print(f"{name}: {pkg.mode}, {len(x)} inputs, accuracy {(res['pred'] == y).mean():.4f} -> {folder}")


if __name__ == "__main__":
    main()
