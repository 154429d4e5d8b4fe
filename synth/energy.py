"""Energy ESTIMATE per inference: operation counts from the golden model x per-operation energies.

    python -m synth.energy [--out synth/reports] [--lanes 16] [--fmax MHz] [--vgg-batch 2] [--rtl-cycles N]

Not a measurement. Operation counts are exact for the package and inputs
(golden model, SPEC arithmetic); what each operation costs comes from one
public table: M. Horowitz, "Computing's energy problem (and what we can do
about it)", ISSCC 2014, 45 nm CMOS, 0.9 V:

- integer add: 8 bit 0.03 pJ, 32 bit 0.1 pJ (other widths linear between)
- SRAM read of 64 bits: 8 KB array 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
  (per bit = /64; sizes between log-log interpolated, below 8 KB taken as
  8 KB, above 1 MB extrapolated on the 32 KB-1 MB slope)
- DRAM: 1.3-2.6 nJ per 64 bits (the off-chip variant uses 1.3 nJ, the low end)

Assumptions of this model (stated in the report):

- a shift-add = one A-bit add + one barrel shift costed as another A-bit add;
- a threshold compare = one A-bit add (the firing bank compares each
  potential with all T_max thresholds in parallel: P x T_max compares/word);
- SRAM writes cost as reads; every memory access moves a whole word
  (P lanes), as the RTL does;
- no clock tree, control, leakage or I/O energy.

Counts per weighted layer, following the RTL's phases (hw/top.py):

- synaptic events = non-silent inputs x fan-out (exact, per kernel window);
  each is one shift-add;
- SCATTER ops = non-silent inputs x valid kernel positions x ceil(K/P): each
  reads one weight word (P x W bits) and reads + writes one potential word
  (P x A bits); the event list is read once per non-silent input word;
- FIRE: every output word is read and cleared (P x A), its bias word read,
  P x T_max compares (spiking layers), codes written to the code buffer and,
  if any lane fires, an event record written;
- POOL: k*k code-word reads and one write per pooled word.

Latency = cycles / Fmax: cycles from `hw.sim.simulate` where given
(--rtl-cycles, or the peers run), else the estimate
SCATTER ops + FIRE words + POOL reads + input words (one per cycle, the
RTL's issue rate, no stalls).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

SOURCE = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
          "IEEE ISSCC 2014, pp. 10-14; 45 nm, 0.9 V")
E_ADD8, E_ADD32 = 0.03, 0.1            # pJ
SRAM64 = [(8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0)]  # bytes, pJ per 64-bit read
DRAM64 = 1300.0                         # pJ per 64 bits (low end of 1.3-2.6 nJ)
TTFS_CHIP_VGG16_UJ = 486.7              # measured, 28 nm TTFS chip, VGG-16 on CIFAR-10 (the brief's figure)


def e_add(bits: int) -> float:
    return E_ADD8 + (bits - 8) * (E_ADD32 - E_ADD8) / 24


def e_sram_bit(size_bytes: float) -> float:
    """pJ per bit accessed in an SRAM array of size_bytes."""
    pts = SRAM64
    if size_bytes <= pts[0][0]:
        return pts[0][1] / 64
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if size_bytes <= s1:
            break
    f = (math.log(size_bytes) - math.log(s0)) / (math.log(s1) - math.log(s0))
    return math.exp(math.log(e0) + f * (math.log(e1) - math.log(e0))) / 64


def _chw(shape):
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)


def layer_counts(pkg, x, res, P: int) -> list:
    """Per-layer operation counts, averaged over the batch."""
    import torch

    from model.package import WEIGHTED, layer_shapes

    T = pkg.time_steps
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    codes = np.asarray(x)
    B = len(codes)
    rows = []
    out_i = pkg.output_index()
    prev_shape = tuple(pkg.input_shape)
    for i, (l, shp) in enumerate(zip(pkg.layers, shapes)):
        if l["type"] == "flatten":
            codes = codes.reshape(B, -1)
            prev_shape = shp
            continue
        live = (codes < T)
        c, h, w = _chw(prev_shape)
        in_words = h * w * -(-c // P)
        if l["type"] == "maxpool2d":
            k = l["kernel"]
            oc, oh, ow = _chw(shp)
            out_words = oh * ow * -(-oc // P)
            rows.append({"layer": i, "type": "maxpool2d", "pool_reads": out_words * k * k, "code_writes": out_words})
            codes = np.asarray(res[f"spikes_L{i}"])
            prev_shape = shp
            continue
        K = _chw(shp)[0]
        G = -(-K // P)
        live_t = torch.from_numpy(live.reshape((B,) + _chw(prev_shape)).astype(np.float32))
        if l["type"] == "conv2d":
            k, s, p = l["kernel"], l["stride"], l["padding"]
            # valid (input, kernel position) pairs = sum over output positions of live inputs in the window
            win = torch.nn.functional.conv2d(live_t, torch.ones(1, c, k, k), stride=s, padding=p)
            positions = float(win.sum()) / B
        else:
            positions = float(live_t.sum()) / B
        n_live = float(live_t.sum()) / B
        # non-silent input words: words (P lanes of channels at one pixel) with any live lane
        lw = live.reshape((B,) + _chw(prev_shape))
        cpad = -(-c // P) * P
        lw = np.pad(lw, ((0, 0), (0, cpad - c), (0, 0), (0, 0)))
        live_words = float(lw.reshape(B, cpad // P, P, h, w).any(2).sum()) / B
        oc, oh, ow = _chw(shp)
        out_words = oh * ow * G
        spiking = i != out_i
        r = {"layer": i, "type": l["type"], "inputs": c * h * w, "live_inputs": n_live, "live_input_words": live_words,
             "synaptic_events": positions * K, "scatter_ops": positions * G, "fire_words": out_words,
             "compares": out_words * P if spiking else 0, "spiking": spiking}
        if spiking:
            nxt = np.asarray(res[f"spikes_L{i}"]).reshape((B,) + _chw(shp))
            opad = G * P
            nw = np.pad(nxt < T, ((0, 0), (0, opad - oc), (0, 0), (0, 0)))
            r["out_live_words"] = float(nw.reshape(B, G, P, oh, ow).any(2).sum()) / B
            r["out_spikes"] = float((nxt < T).sum()) / B
            codes = nxt
        rows.append(r)
        prev_shape = shp
        if i == out_i:
            break
    return rows


def memory_sizes(cfg) -> dict:
    """Bytes of each RTL memory of a build (for the SRAM energy per bit)."""
    from hw.sequencer import record_layout

    P, A, Wb = cfg.lanes, cfg.acc_bits, cfg.weight_bits
    rec = record_layout(cfg).size
    return {"weights": cfg.max_weight_words * P * Wb / 8, "potentials": cfg.words * P * A / 8,
            "biases": cfg.max_bias_words * P * A / 8, "codes": cfg.words * P * cfg.code_bits / 8,
            "events": cfg.words * rec / 8, "_record_bits": rec}


def energy(pkg, cfg, rows: list, T_max: int, weights_dram: bool = False) -> dict:
    P, A, Wb, Cb = cfg.lanes, cfg.acc_bits, cfg.weight_bits, cfg.code_bits
    mem = memory_sizes(cfg)
    eb = {k: e_sram_bit(v) for k, v in mem.items() if not k.startswith("_")}
    if weights_dram:
        eb["weights"] = DRAM64 / 64
    rec = mem["_record_bits"]
    pj = {"shift_add": 0.0, "compare": 0.0, "weight_reads": 0.0, "potential_rw": 0.0, "bias_reads": 0.0,
          "code_event_rw": 0.0}
    ops = {"synaptic_events": 0.0, "scatter_ops": 0.0, "neuron_updates": 0.0, "weight_word_reads": 0.0,
           "potential_word_reads": 0.0, "potential_word_writes": 0.0, "bias_word_reads": 0.0,
           "code_word_reads": 0.0, "code_word_writes": 0.0, "event_record_reads": 0.0, "event_record_writes": 0.0,
           "compares": 0.0}
    cycles = 0.0
    for r in rows:
        if r["type"] == "maxpool2d":
            ops["code_word_reads"] += r["pool_reads"]
            ops["code_word_writes"] += r["code_writes"]
            ops["event_record_writes"] += r["code_writes"]
            pj["code_event_rw"] += r["pool_reads"] * P * Cb * eb["codes"] + r["code_writes"] * (P * Cb * eb["codes"] + rec * eb["events"])
            cycles += r["pool_reads"]
            continue
        so, fw = r["scatter_ops"], r["fire_words"]
        ops["synaptic_events"] += r["synaptic_events"]
        ops["scatter_ops"] += so
        ops["neuron_updates"] += fw * P
        ops["weight_word_reads"] += so
        ops["potential_word_reads"] += so + fw
        ops["potential_word_writes"] += so + fw
        ops["bias_word_reads"] += fw
        ops["event_record_reads"] += r["live_input_words"]
        pj["shift_add"] += r["synaptic_events"] * 2 * e_add(A)
        pj["weight_reads"] += so * P * Wb * eb["weights"]
        pj["potential_rw"] += 2 * (so + fw) * P * A * eb["potentials"]
        pj["bias_reads"] += fw * P * A * eb["biases"]
        pj["code_event_rw"] += r["live_input_words"] * rec * eb["events"]
        if r["spiking"]:
            ops["compares"] += fw * P * T_max
            ops["code_word_writes"] += fw
            ops["event_record_writes"] += r["out_live_words"]
            pj["compare"] += fw * P * T_max * e_add(A)
            pj["code_event_rw"] += fw * P * Cb * eb["codes"] + r["out_live_words"] * rec * eb["events"]
        cycles += so + fw
    c, h, w = _chw(pkg.input_shape)
    in_words = h * w * -(-c // P)
    cycles += in_words
    ops["code_word_writes"] += in_words
    pj["code_event_rw"] += in_words * P * Cb * eb["codes"]
    total = sum(pj.values())
    return {"uJ": total * 1e-6, "pJ_by_part": {k: round(v, 1) for k, v in pj.items()}, "ops": {k: round(v, 1) for k, v in ops.items()},
            "cycles_estimate": int(round(cycles)), "memory_bytes": {k: v for k, v in mem.items() if not k.startswith("_")},
            "pJ_per_bit": {k: round(v, 4) for k, v in eb.items()}, "e_shift_add_pJ": 2 * e_add(A), "e_compare_pJ": e_add(A)}


def digits_networks():
    """(name, package, inputs, description) for the digits MLP and CNN: the golden vectors if present."""
    from model import data
    from model.convert import encode_inputs
    from model.quant import QuantConfig

    from . import builds

    out = []
    for name, net in (("digits_mlp", "mlp"), ("digits_cnn", "cnn")):
        g = builds.ROOT / "golden" / name
        if (g / "package" / "manifest.json").exists():
            from golden.make import load

            pkg, x, _, _ = load(name)
            out.append((name, pkg, x, f"golden/{name} (trained + CAT), test split"))
        else:
            d = data.digits()
            pkg = builds.shaped_package(net, (1, 8, 8))
            out.append((name, pkg, encode_inputs(d.test.x, QuantConfig()), "untrained random-init net converted (shape only), digits test split"))
    return out


def vgg16_network(batch: int = 2, seed: int = 0):
    """VGG-16 32x32x3, random weights normalised on random images (as model/bench_golden.py)."""
    import torch

    from model.convert import encode_inputs, to_package
    from model.nets import Net, build_spec, normalise
    from model.quant import QuantConfig

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vgg = Net((3, 32, 32), build_spec("vgg16", (3, 32, 32), 10), batch_norm=False).eval()
    vgg, _ = normalise(vgg, torch.from_numpy(rng.random((32, 3, 32, 32), dtype=np.float32)))
    q = QuantConfig()
    pkg = to_package(vgg, q)
    x = encode_inputs(rng.random((batch, 3, 32, 32), dtype=np.float32), q)
    return pkg, x


def estimate(name, pkg, x, lanes: int, fmax_mhz: float | None, desc: str, rtl_cycles=None, weights_dram=False) -> dict:
    from hw.cli import build_for
    from model import golden

    res = golden.run(pkg, x, batch=min(len(x), 64))
    cfg = build_for(pkg, lanes)
    rows = layer_counts(pkg, x, res, lanes)
    e = energy(pkg, cfg, rows, cfg.max_t, weights_dram=weights_dram)
    cyc = rtl_cycles if rtl_cycles is not None else e["cycles_estimate"]
    e.update(net=name, package=desc, images=len(x), lanes=lanes, fmax_mhz=fmax_mhz,
             cycles=cyc, cycles_source="RTL (hw.sim.simulate)" if rtl_cycles is not None else "estimate (one op per cycle, no stalls)",
             latency_us=(cyc / fmax_mhz) if fmax_mhz else None, layers=rows, weights_dram=weights_dram,
             config={k: getattr(cfg, k) for k in ("lanes", "weight_bits", "acc_bits", "max_t", "max_weight_words")})
    return e


def report(results: list, fmax_note: str) -> str:
    L = ["# LogSpike energy per inference: ESTIMATE (not measured)", "",
         f"Per-operation energies: {SOURCE}. Integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ (linear between); "
         "SRAM 64-bit read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB), log-log interpolated by array size, "
         "extrapolated above 1 MB; DRAM 1.3 nJ per 64 bits (low end of Horowitz's 1.3-2.6 nJ).",
         "Assumptions: shift-add = 2 A-bit adds (add + barrel shift costed as an add); compare = 1 A-bit add; "
         "write = read; whole-word (P-lane) memory accesses as the RTL does; no clock, control, leakage or I/O energy. "
         "Operation counts are exact for the package and inputs (golden model).", "",
         f"Latency = cycles / Fmax; {fmax_note}", "",
         "| network | package | images | lanes | synaptic events | SCATTER ops | neuron updates | energy (uJ) | "
         "of which memory (uJ) | cycles | cycles from | latency (us) |", "| --- " * 12 + "|"]
    for r in results:
        mem = sum(v for k, v in r["pJ_by_part"].items() if k not in ("shift_add", "compare")) * 1e-6
        lat = f"{r['latency_us']:.1f}" if r["latency_us"] else "-"
        L.append(f"| {r['net']}{' (weights in DRAM)' if r['weights_dram'] else ''} | {r['package']} | {r['images']} | {r['lanes']} | "
                 f"{r['ops']['synaptic_events']:,.0f} | {r['ops']['scatter_ops']:,.0f} | {r['ops']['neuron_updates']:,.0f} | "
                 f"{r['uJ']:.3f} | {mem:.3f} | {r['cycles']:,.0f} | {r['cycles_source']} | {lat} |")
    L.append(f"| VGG-16 CIFAR-10, 28 nm TTFS chip (measured, the brief's reference figure) | | | | | | | {TTFS_CHIP_VGG16_UJ} | | | | |")
    L += ["", "Energy by part (pJ per inference):", ""]
    for r in results:
        L.append(f"- {r['net']}{' (weights in DRAM)' if r['weights_dram'] else ''}: " + ", ".join(f"{k} {v:,.0f}" for k, v in r["pJ_by_part"].items())
                 + f"; memory sizes (bytes) " + ", ".join(f"{k} {v:,.0f}" for k, v in r["memory_bytes"].items()))
    L += ["", "Caveats: 45 nm energies against a 28 nm measured chip (scaling would lower ours further); the VGG-16 "
          "weights are random (normalised), its inputs random images, so its sparsity is not CIFAR-10's; "
          "a 9 MB weight memory is far outside Horowitz's 1 MB SRAM point (extrapolated), hence the DRAM variant."]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "reports"))
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--fmax", type=float, default=None, help="MHz; default: synth/reports/ecp5_p{lanes}.json")
    ap.add_argument("--vgg-batch", type=int, default=2)
    ap.add_argument("--rtl-cycles", type=str, default=None, help="JSON {net: cycles} measured with hw.sim.simulate")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fmax, note = a.fmax, "Fmax given on the command line"
    sweep = out / f"ecp5_p{a.lanes}.json"
    if fmax is None and sweep.exists():
        fmax = json.loads(sweep.read_text())["fmax_mhz"]
        note = f"Fmax {fmax} MHz from the ECP5-25k post-P&R run at {a.lanes} lanes ({sweep.name}, digits-CNN build)"
    rtl = json.loads(Path(a.rtl_cycles).read_text()) if a.rtl_cycles else {}
    results = []
    for name, pkg, x, desc in digits_networks():
        r = estimate(name, pkg, x, a.lanes, fmax, desc, rtl.get(name))
        results.append(r)
        print(f"{name}: {r['uJ']:.4f} uJ, {r['cycles']} cycles", flush=True)
    pkg, x = vgg16_network(a.vgg_batch)
    desc = "random weights normalised on random images (bench_golden recipe), random 32x32x3 inputs"
    for dram in (False, True):
        r = estimate("vgg16_32x32x3", pkg, x, a.lanes, fmax, desc, weights_dram=dram)
        results.append(r)
        print(f"vgg16 (dram={dram}): {r['uJ']:.2f} uJ, {r['cycles']} cycles", flush=True)
    (out / "energy.md").write_text(report(results, note))
    slim = [{k: v for k, v in r.items() if k != "layers"} | {"layers": r["layers"]} for r in results]
    (out / "energy.json").write_text(json.dumps(slim, indent=1, default=float) + "\n")
    print(f"-> {out / 'energy.md'}")
    return results


if __name__ == "__main__":
    main()
