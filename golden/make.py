"""Regenerate the golden vectors: trained digits networks, their test inputs and results.

    python -m logspike.golden.make [--only NAME]

Each vector is a folder golden/NAME/ with package/ (manifest.json,
tensors.npz), inputs.npy, labels.npy and results.npz (SPEC section 5, from
the golden model). The RTL tests read these instead of training. Training is
seeded, so a rerun on the same torch build gives the same files; the test
suite checks that results.npz still equals the golden model on the stored
package, so the vectors and the model can never drift apart silently.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from logspike.model import data, golden, train
from logspike.model.convert import encode_inputs, to_package
from logspike.model.package import Package, read, write
from logspike.model.quant import QuantConfig

HERE = Path(__file__).parent
NAMES = ("digits_mlp", "digits_cnn", "digits_atsnn", "digits_resnet8", "digits_resnet8_atsnn")


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


def make(name: str, out: Path = HERE) -> Path:
    torch.manual_seed(0)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=NAMES)
    a = ap.parse_args(argv)
    for name in [a.only] if a.only else NAMES:
        folder = make(name)
        pkg, x, y, res = load(name)
        print(f"{name}: {pkg.mode}, {len(x)} inputs, accuracy {(res['pred'] == y).mean():.4f} -> {folder}")


if __name__ == "__main__":
    main()
