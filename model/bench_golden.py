"""Benchmark: golden-model throughput against the float ANN on the same batch, same run.

Two networks: the digits CNN (trained briefly, real sparsity) and a
VGG-16-shaped 32x32x3 network (random weights normalised on random images;
the shape, not the accuracy, sets the cost). Prints images/s of both and the
ratio; writes bench_golden.json.

    python -m logspike.model.bench_golden [--out DIR] [--vgg-batch N]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from . import data, golden, train
from .convert import encode_inputs, to_package
from .nets import Net, build_spec, normalise, to_cat
from .quant import QuantConfig


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(name: str, net: Net, q: QuantConfig, x: np.ndarray, repeats: int) -> dict:
    pkg = to_package(net, q)
    g = golden.Golden(pkg)
    codes = encode_inputs(x, q)
    xt = torch.from_numpy(x)
    float_net = to_cat(net, q)
    float_net.form = "float"  # same weights, plain ReLU float forward: the baseline
    with torch.no_grad():
        t_float = _best_of(lambda: float_net(xt), repeats)
    t_gold = _best_of(lambda: g.run(codes, batch=len(codes)), repeats)
    r = {"net": name, "batch": len(x), "golden_img_s": len(x) / t_gold, "float_img_s": len(x) / t_float,
         "slowdown": t_gold / t_float, "weights": int(sum(v.size for k, v in pkg.tensors.items() if k.endswith(".mag")))}
    print(f"{name:10s} batch {len(x):4d}: golden {r['golden_img_s']:9.1f} img/s   float {r['float_img_s']:9.1f} img/s   "
          f"golden/float time ratio {r['slowdown']:.1f}x", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--vgg-batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    q = QuantConfig()
    d = data.digits()
    _, folded, _ = train.train_float(d, train.TrainConfig(net="cnn", epochs=15))
    rows = [measure("digits-cnn", folded, q, d.test.x, a.repeats)]
    rng = np.random.default_rng(0)
    vgg = Net((3, 32, 32), build_spec("vgg16", (3, 32, 32), 10), batch_norm=False).eval()
    calib = rng.random((32, 3, 32, 32), dtype=np.float32)
    vgg, _ = normalise(vgg, torch.from_numpy(calib))
    rows.append(measure("vgg16-32", vgg, q, rng.random((a.vgg_batch, 3, 32, 32), dtype=np.float32), a.repeats))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": str(date.today()), "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads", "rows": rows}
    (out / "bench_golden.json").write_text(json.dumps(meta, indent=1))
    return rows


if __name__ == "__main__":
    main()
