"""Benchmark of external weights: VGG-11 and VGG-16 at 32x32x3 on an external-weight build, RTL co-simulation
with the AXI4 memory model (hw/axi_mem.py) at several latencies and bandwidths.

    python -m logspike.hw.bench_memory [--nets vgg11 vgg16] [--lanes 16] [--images 2] [--axi-data-bits 256]
                                       [--fmax-json synth/reports/ecp5_p16_ext.json] [--out hw/reports]

Per network, on the same images, every run bit-exact with the golden model:
  base       cycles per image with a memory of no latency and a beat a cycle (the processor's own pace, no
             stall; at 256 bits 32 bytes a cycle, over 3x the 10 bytes an op of 16 lanes x 5 bits needs)
  ideal      (synaptic events of non-silent inputs + neurons) / P (hw/bench.py), utilisation = ideal / cycles
  bytes      external bytes read per image (the model's beats sent x beat bytes)
  stalls     cycles at latency 20 and 200 and 8 and 32 bytes a cycle, minus base
  vanish     from a bandwidth sweep at latency 200: the least bandwidth whose stalls are under 1% of base
  latency    cycles / Fmax, the Fmax of the build's place and route report (--fmax-json) when given

The networks are the trained ones of golden/make.py (mnist5k32x3_vgg11, mnist5k32x3_vgg16, cached under
build/golden and trained on first use) on their test images, or with --random, VGGs of random weights on
random images (energy's recipe). Writes bench_memory.json and bench_memory.png (stalls against bandwidth).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from .bench import ideal_work
from .config import build_for, fits
from .sim import ExternalMemory, simulate_timed

POINTS = ((20, 8.0), (20, 32.0), (200, 8.0), (200, 32.0))
SWEEP = (4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 24.0, 32.0)
VANISH = 0.01   # stalls under 1% of the base cycles


def networks(names, images: int, random: bool):
    """(name, package, inputs, description) of each network."""
    out = []
    for n in names:
        if random:
            from logspike.model.convert import encode_inputs
            from logspike.model.quant import QuantConfig
            from logspike.model.randnet import shaped_package

            pkg = shaped_package(n, (3, 32, 32))
            rng = np.random.default_rng(0)
            x = encode_inputs(rng.random((images, 3, 32, 32), dtype=np.float32), QuantConfig())
            out.append((n, pkg, x, f"{n}, random weights normalised on random images, random images"))
        else:
            from logspike.golden.make import cached

            pkg, x, _, _ = cached(f"mnist5k32x3_{n}")
            out.append((n, pkg, x[:images], f"{n} trained on mnist5k32x3 (golden/make.py), its first {images} test images"))
    return out


def run(name, pkg, x, lanes: int, dw: int, fmax: float | None, log=print) -> dict:
    from logspike.model import golden

    cfg = build_for(pkg, lanes, weights="external", axi_data_bits=dw)
    fits(cfg, pkg)
    want = golden.run(pkg, x)
    events, neurons = ideal_work(pkg, x, want)
    ideal = float(((events + neurons) / lanes).mean())

    def sim(latency, bw):
        t = time.perf_counter()
        res, cycles, st = simulate_timed(cfg, pkg, x, mem=ExternalMemory(latency=latency, bytes_per_cycle=bw))
        exact = all(np.array_equal(res[k], want[k]) for k in want)
        m = st["mem"]
        if not exact or m["violations"] or m["beats_requested"] != m["beats_sent"]:
            raise RuntimeError(f"{name}: latency {latency}, {bw} B/cycle: bit-exact {exact}, {m}")
        c = float(np.mean(cycles))
        log(f"  {name} latency {latency:3d}, {'a beat' if bw is None else f'{bw:g} B'}/cycle: {c:,.0f} cycles/image "
            f"({time.perf_counter() - t:.0f} s, {st['sim_cycles'] / st['wall_s'] / 1e3:.0f}k cycles/s)")
        return c, m["beats_sent"] * (dw // 8) / len(x), st

    base, nbytes, st = sim(0, None)
    r = {"net": name, "lanes": lanes, "axi_data_bits": dw, "images": len(x), "bit_exact": True, "cycles_base": base,
         "ideal": ideal, "utilisation": ideal / base, "bytes_per_image": nbytes, "bytes_per_cycle_at_base": nbytes / base,
         "sops_per_image": float(np.mean([c["sops"] for c in st["end"]])),
         "events_per_image": float(np.mean([c["events"] for c in st["end"]])),
         "weight_bytes": sum(int(np.prod(pkg.weights(i)[1].shape)) for i in pkg.weighted_indices()) * pkg.weight_bits / 8,
         "sim_cycles_per_s": st["sim_cycles"] / st["wall_s"], "points": [], "sweep": []}
    for lat, bw in POINTS:
        c, _, _ = sim(lat, bw)
        r["points"].append({"latency": lat, "bytes_per_cycle": bw, "cycles": c, "stall_cycles": c - base})
    for bw in SWEEP:
        c, _, _ = sim(200, bw)
        r["sweep"].append({"latency": 200, "bytes_per_cycle": bw, "cycles": c, "stall_cycles": c - base})
    ok = [p["bytes_per_cycle"] for p in r["sweep"] if p["stall_cycles"] <= VANISH * base]
    r["stalls_vanish_bytes_per_cycle"] = min(ok) if ok else None
    if fmax:
        r["fmax_mhz"] = fmax
        r["latency_ms_at_fmax"] = base / fmax / 1e3
    return r


def plot(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        bw = [p["bytes_per_cycle"] for p in r["sweep"]]
        ax.plot(bw, [100 * p["stall_cycles"] / r["cycles_base"] for p in r["sweep"]], "o-", label=r["net"])
    ax.axhline(100 * VANISH, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("memory bandwidth (bytes / cycle), latency 200 cycles")
    ax.set_ylabel("stall cycles (% of the stall-free cycles)")
    ax.set_title(f"External weights, {rows[0]['lanes']} lanes, {rows[0]['axi_data_bits']}-bit AXI4")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["vgg11", "vgg16"], choices=["vgg11", "vgg16"])
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--axi-data-bits", type=int, default=256)
    ap.add_argument("--random", action="store_true", help="random-weight VGGs on random images (no training)")
    ap.add_argument("--fmax-json", default=None, help="a synth JSON of the build (its Fmax gives the latency per image)")
    ap.add_argument("--out", default="out/bench")
    a = ap.parse_args(argv)
    fmax = json.loads(Path(a.fmax_json).read_text())["fmax_mhz"] if a.fmax_json else None
    rows = []
    for name, pkg, x, desc in networks(a.nets, a.images, a.random):
        print(f"{desc}:", flush=True)
        r = run(name, pkg, x, a.lanes, a.axi_data_bits, fmax)
        r["network"] = desc
        rows.append(r)
        pts = ", ".join(f"L{p['latency']}/{p['bytes_per_cycle']:g}B: {p['stall_cycles']:,.0f}" for p in r["points"])
        print(f"{name}: {r['cycles_base']:,.0f} cycles/image, utilisation {100 * r['utilisation']:.1f}%, "
              f"{r['bytes_per_image'] / 1e6:.1f} MB/image; stalls {pts}; stalls vanish at "
              f"{r['stalls_vanish_bytes_per_cycle']} B/cycle", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    old = out / "bench_memory.json"
    if old.exists():   # the other networks' rows of an earlier run stay (one network at a time is an hour)
        kept = [r for r in json.loads(old.read_text())["rows"] if r["net"] not in a.nets]
        rows = sorted(kept + rows, key=lambda r: r["net"])
    (out / "bench_memory.json").write_text(json.dumps(
        {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "rows": rows},
        indent=1) + "\n")
    plot(rows, out / "bench_memory.png")
    return rows


if __name__ == "__main__":
    main()
