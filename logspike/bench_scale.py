"""Benchmark: test-set scale. Sharded RTL co-simulation on 1 and N local workers, co-sim cycles/s per lane
count, and from those the projected wall time of a 10,000-image VGG-16 (32x32x3) RTL test pass.

    python -m logspike.bench_scale [--lanes 1 4 16] [--workers 2] [--repeat 4] [--out DIR] [--vgg-rtl JSON]

Sim images/s: the digits CNN's stored test images (repeated --repeat times) through `shards.run` with
sim_shard, the Verilator model already built (each worker loads it from the cache), results checked
against the golden model. Co-sim cycles/s: hw.bench's measure (load + run + unload) per lane count.

The projection: VGG-16's cycles per image and its co-simulation speed as measured on the RTL by
hw.bench_memory (the trained VGG-16 on a 16-lane external-weight build, `hw/reports/bench_memory.json`);
beside them, the estimate made without the RTL (the ideal (synaptic events of non-silent inputs + neurons
updated) / P of VGG-16 on random images, from the golden model, over the digits CNN's utilisation at the same
P) and its ratio to the measurement. Wall time = 10,000 x cycles / (co-sim cycles/s per worker x workers x the
measured scaling efficiency of 2 workers).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from logspike import shards
from logspike.golden.make import load
from logspike.hw import bench
from logspike.hw.config import build_for
from logspike.model import golden

TEST_SET = 10_000


def sim_rate(lanes: int, workers: int, repeat: int) -> dict:
    pkg, x, _, _ = load("digits_cnn")
    x = np.tile(x, (repeat, 1, 1, 1))
    job = shards.sim_job(build_for(pkg, lanes), pkg)
    want = golden.run(pkg, x)
    out = {}
    for jobs in sorted({1, workers}):
        t = time.perf_counter()
        res = shards.run(shards.sim_shard, job, x, jobs=jobs, progress=False)
        wall = time.perf_counter() - t
        res.pop("cycles")
        if not all(np.array_equal(res[k], want[k]) for k in want):
            raise RuntimeError(f"sharded sim with {jobs} workers differs from the golden model")
        out[jobs] = len(x) / wall
        print(f"sim P={lanes}: {jobs} worker(s): {len(x)} images in {wall:.1f} s = {out[jobs]:.1f} images/s", flush=True)
    return {"lanes": lanes, "images": len(x), "images_per_s": out, "speedup": out[workers] / out[1],
            "efficiency": out[workers] / out[1] / workers}


def vgg16_cycles(lanes: int, utilisation: float, images: int = 4) -> dict:
    from logspike.synth.energy import vgg16_network

    pkg, x = vgg16_network(batch=images)
    events, neurons = bench.ideal_work(pkg, x, golden.run(pkg, x))
    ideal = float(((events + neurons) / lanes).mean())
    return {"lanes": lanes, "ideal_cycles": ideal, "estimated_cycles": ideal / utilisation,
            "synaptic_events_mean": float(events.mean()), "neurons": neurons}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10, help="the 359 test images this many times")
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--vgg-rtl", default="hw/reports/bench_memory.json",
                    help="hw.bench_memory's results: VGG-16's measured cycles and co-sim speed (else estimated)")
    a = ap.parse_args(argv)
    cosim = [bench.run("digits_cnn", p, None) for p in a.lanes]
    p_max = max(a.lanes)
    scale = sim_rate(p_max, a.workers, a.repeat)
    at = next(r for r in cosim if r["lanes"] == p_max)
    vgg = vgg16_cycles(p_max, at["utilisation"])
    rtl = next((r for r in json.loads(Path(a.vgg_rtl).read_text())["rows"] if r["net"] == "vgg16"), None) \
        if Path(a.vgg_rtl).exists() else None
    if rtl is not None:   # measured on the RTL: its cycles per image and the co-simulation speed of its build
        vgg.update(measured_cycles=rtl["cycles_base"], measured_sim_cycles_per_s=rtl["sim_cycles_per_s"],
                   estimate_over_measured=vgg["estimated_cycles"] / rtl["cycles_base"], source=a.vgg_rtl)
        cycles, per_worker = rtl["cycles_base"], rtl["sim_cycles_per_s"]
        print(f"VGG-16 32x32x3 at P={p_max}: {cycles / 1e6:.2f} M cycles/image measured on the RTL "
              f"({a.vgg_rtl}; the estimate without it, {vgg['estimated_cycles'] / 1e6:.2f} M, is "
              f"{vgg['estimate_over_measured']:.2f}x that)", flush=True)
    else:
        cycles, per_worker = vgg["estimated_cycles"], at["sim_cycles_per_s"]
        print(f"VGG-16 32x32x3 at P={p_max}: ~{cycles / 1e6:.1f} M cycles/image ESTIMATED (ideal "
              f"{vgg['ideal_cycles'] / 1e6:.1f} M / utilisation {100 * at['utilisation']:.1f}%; no {a.vgg_rtl})", flush=True)
    projection = {str(w): TEST_SET * cycles / (per_worker * w * (1 if w == 1 else scale["efficiency"]))
                  for w in (1, 16, 128)}
    print(f"10,000 VGG-16 images at {per_worker / 1e3:.0f}k cycles/s per worker: " +
          ", ".join(f"{w} workers {s / 3600:.1f} h" for w, s in projection.items()), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    r = {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
         "cosim": [{k: c[k] for k in ("lanes", "sim_cycles_per_s", "sim_cycles_per_cpu_s", "cycles_mean",
                                      "utilisation", "bit_exact")} for c in cosim],
         "sharded_sim": scale, "vgg16": vgg, "projected_test_pass_s": projection}
    (out / "bench_scale.json").write_text(json.dumps(r, indent=1) + "\n")
    return r


if __name__ == "__main__":
    main()
