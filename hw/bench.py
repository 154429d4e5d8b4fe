"""Benchmark: RTL cycles per inference against the ideal (synaptic events + neurons) / P,
and co-simulation speed in simulated cycles per wall second.

    python -m hw.bench [--net digits_cnn] [--lanes 1 4 16] [--images N] [--out DIR]

Synaptic events count every connection of a non-silent input (the work an
event-driven datapath cannot avoid); neurons count every neuron a layer
updates. Utilisation = ideal / measured cycles.
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

from model.golden import patches
from model.package import Package, layer_shapes

from .cli import build_for
from .sim import build, simulate


def ideal_work(pkg: Package, x: np.ndarray, res: dict) -> tuple[np.ndarray, int]:
    """Per inference: synaptic events of non-silent inputs, and neurons updated."""
    T = pkg.time_steps
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    codes = torch.from_numpy(x)
    events = np.zeros(len(x), dtype=np.int64)
    neurons = 0
    for i, l in enumerate(pkg.layers):
        if l["type"] == "flatten":
            codes = codes.reshape(len(x), -1)
        elif l["type"] == "maxpool2d":
            codes = torch.from_numpy(res[f"spikes_L{i}"])
        else:
            live = (codes < T).to(torch.int64)
            if l["type"] == "dense":
                events += (live.reshape(len(x), -1).sum(1) * l["out"]).numpy()
            else:
                cols, h, w = patches(live, l["kernel"], l["stride"], l["padding"], 0)
                events += (cols.sum(1).reshape(len(x), -1).sum(1) * l["out_channels"]).numpy()
            neurons += int(np.prod(shapes[i]))
            if i == pkg.output_index():
                break
            codes = torch.from_numpy(res[f"spikes_L{i}"])
    return events, neurons


def run(name: str, lanes: int, images: int | None) -> dict:
    from golden.make import load

    pkg, x, _, want = load(name)
    if images:
        x, want = x[:images], {k: v[:images] for k, v in want.items()}
    cfg = build_for(pkg, lanes)
    t = time.perf_counter()
    build(cfg)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    res, cycles = simulate(cfg, pkg, x)
    wall = time.perf_counter() - t
    exact = all(np.array_equal(res[k], want[k]) for k in want)
    events, neurons = ideal_work(pkg, x, want)
    ideal = (events + neurons) / lanes
    cyc = np.asarray(cycles, dtype=np.float64)
    r = {"net": name, "lanes": lanes, "images": len(x), "bit_exact": exact, "cycles_mean": float(cyc.mean()),
         "ideal_mean": float(ideal.mean()), "utilisation": float(ideal.sum() / cyc.sum()),
         "synaptic_events_mean": float(events.mean()), "neurons": neurons,
         "sim_cycles_per_s": float(cyc.sum() / wall), "sim_wall_s": wall, "build_s": t_build}
    print(f"{name} P={lanes:2d}: {r['cycles_mean']:9.0f} cycles/inference, ideal {r['ideal_mean']:9.0f}, "
          f"utilisation {100 * r['utilisation']:5.1f}%, bit-exact {exact}, co-sim {r['sim_cycles_per_s'] / 1e3:6.0f}k cycles/s "
          f"({len(x)} images in {wall:.1f} s)", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="digits_cnn")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--images", type=int, default=0, help="0 = every stored test image")
    ap.add_argument("--out", default="out/bench")
    a = ap.parse_args(argv)
    rows = [run(a.net, p, a.images or None) for p in a.lanes]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_rtl_{a.net}.json").write_text(json.dumps(
        {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
