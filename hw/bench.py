"""Benchmark: RTL cycles per inference against the ideal (synaptic events + neurons) / P,
and co-simulation speed in simulated cycles per wall second.

    python -m logspike.hw.bench [--net digits_cnn] [--lanes 1 4 16] [--images N] [--per-beat N] [--out DIR]

Synaptic events count every connection of a non-silent input (the work an
event-driven datapath cannot avoid; a residual shortcut's too: one per live
source input for an identity, K for a projection); neurons count every
neuron a layer updates. Utilisation = ideal / measured cycles.

Co-simulation speed (hw.sim.simulate, the HDL testbench path hw.harness):
  co-sim     processor cycles the harness ran (config load, every inference
             and the few idle cycles between them) / wall time inside the
             simulator from the first beat written to the last result read:
             load + run + unload through VPI; simulator start-up and
             conversion to Verilog excluded. Compared with the 500k target.
  cpu        the same cycles / CPU time of the simulator process (steadier
             than wall time on a shared machine).
  end-to-end the sum of END-beat cycles / wall time of the whole simulate()
             call (simulator start-up, job and answer files, parsing; the
             model already built and converted). The figure the per-beat
             driver was measured with before.
--per-beat N also runs the old per-beat Python driver (hw.tb_driver) on the
first N images, end-to-end as it was measured before (run_steps converts the
Processor to Verilog inside the timed call), for a before/after on the same
machine; its results and END cycles must equal the HDL testbench's.
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

from logspike.model.golden import patches
from logspike.model.package import Package, layer_shapes

from . import image
from .config import build_for, fits
from .sim import build, build_harness, collate, run_steps, simulate_timed

TARGET = 500_000  # simulated cycles per wall second (issue 3)


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
            sc = l.get("shortcut")
            if sc is not None:   # each live source input at the shortcut's stride: 1 connection (identity) or K
                st = sc.get("stride", 1)
                src = np.asarray(res[f"spikes_L{sc['from']}"])[:, :, ::st, ::st] < T
                events += src.reshape(len(x), -1).sum(1) * (l["out_channels"] if sc["kind"] == "projection" else 1)
            neurons += int(np.prod(shapes[i]))
            if i == pkg.output_index():
                break
            codes = torch.from_numpy(res[f"spikes_L{i}"])
    return events, neurons


def run(name: str, lanes: int, images: int | None, per_beat: int = 0) -> dict:
    from logspike.golden.make import load

    pkg, x, _, want = load(name)
    if images:
        x, want = x[:images], {k: v[:images] for k, v in want.items()}
    cfg = build_for(pkg, lanes)
    fits(cfg, pkg)   # a package no build of this many lanes loads: the field and the limit, before any build
    t = time.perf_counter()
    build_harness(cfg)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    res, cycles, st = simulate_timed(cfg, pkg, x)
    wall = time.perf_counter() - t
    exact = all(np.array_equal(res[k], want[k]) for k in want)
    events, neurons = ideal_work(pkg, x, want)
    ideal = (events + neurons) / lanes
    cyc = np.asarray(cycles, dtype=np.float64)
    rate = st["sim_cycles"] / st["wall_s"]
    r = {"net": name, "lanes": lanes, "images": len(x), "bit_exact": exact, "cycles_mean": float(cyc.mean()),
         "ideal_mean": float(ideal.mean()), "utilisation": float(ideal.sum() / cyc.sum()),
         "synaptic_events_mean": float(events.mean()), "neurons": neurons,
         "sim_cycles": st["sim_cycles"], "sim_cycles_per_s": rate, "sim_cycles_per_cpu_s": st["sim_cycles"] / st["cpu_s"],
         "sim_wall_s": st["wall_s"], "sim_io_s": st["io_s"], "beats": st["beats"], "result_beats": st["result_beats"],
         "target_ratio": rate / TARGET, "end_to_end_cycles_per_s": float(cyc.sum() / wall), "end_to_end_wall_s": wall,
         "build_s": t_build}
    print(f"{name} P={lanes:2d}: {r['cycles_mean']:9.0f} cycles/inference, ideal {r['ideal_mean']:9.0f}, "
          f"utilisation {100 * r['utilisation']:5.1f}%, bit-exact {exact}", flush=True)
    print(f"      co-sim {rate / 1e3:6.0f}k cycles/s = {r['target_ratio']:.2f} x target "
          f"({st['sim_cycles']} cycles in {st['wall_s']:.2f} s load+run+unload, {st['io_s']:.2f} s of it VPI I/O; "
          f"cpu {r['sim_cycles_per_cpu_s'] / 1e3:.0f}k cycles/s); end-to-end {r['end_to_end_cycles_per_s'] / 1e3:.0f}k "
          f"cycles/s ({len(x)} images in {wall:.1f} s)", flush=True)
    if per_beat:
        xb = x[:per_beat]
        build(cfg)
        steps = [{"cfg": image.config_beats(cfg, pkg)}, {"infer": [image.input_beats(cfg, pkg, xi) for xi in xb]}]
        t = time.perf_counter()
        res_b, cnt = collate(cfg, pkg, run_steps(cfg, steps))
        wall_b = time.perf_counter() - t
        cyc_b = [c["cycles"] for c in cnt]
        if cyc_b != cycles[:per_beat] or not all(np.array_equal(res_b[k], res[k][:per_beat]) for k in res):
            raise RuntimeError("the per-beat driver and the HDL testbench disagree")
        r.update(per_beat_images=len(xb), per_beat_end_to_end_cycles_per_s=sum(cyc_b) / wall_b, per_beat_wall_s=wall_b)
        print(f"      per-beat driver (before): end-to-end {r['per_beat_end_to_end_cycles_per_s'] / 1e3:.0f}k cycles/s "
              f"({len(xb)} images in {wall_b:.1f} s)", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="digits_cnn")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--images", type=int, default=0, help="0 = every stored test image")
    ap.add_argument("--per-beat", type=int, default=0, help="also time the per-beat driver on this many images")
    ap.add_argument("--out", default="out/bench")
    a = ap.parse_args(argv)
    rows = [run(a.net, p, a.images or None, a.per_beat) for p in a.lanes]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_rtl_{a.net}.json").write_text(json.dumps(
        {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
