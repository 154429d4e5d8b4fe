"""Energy ESTIMATE per inference: the RTL's operation and memory-access counts x per-operation energies.

    python -m logspike.synth.energy [--fmax-json synth/reports/ecp5_p1.json | --fmax MHz] [--lanes P] [--vgg-batch 8]

Not a measurement. Counts are exact for the package and inputs (golden
model, SPEC arithmetic) and follow hw/top.py phase by phase on the build
`hw.config.build_for(pkg, lanes)` would make; what each operation costs comes
from one public table: M. Horowitz, "Computing's energy problem (and what we
can do about it)", ISSCC 2014, 45 nm CMOS, 0.9 V:

- integer add: 8 bit 0.03 pJ, 32 bit 0.1 pJ (linear in width through both)
- SRAM read of 64 bits: 8 KB array 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
  (per bit = /64; sizes between log-log interpolated, below 8 KB taken as
  8 KB, above 1 MB extrapolated on the 32 KB-1 MB slope)
- DRAM: 1.3-2.6 nJ per 64 bits (the off-chip variant uses 1.3 nJ, the low end)

Assumptions (stated in the report):

- a shift-add = one A-bit add + one barrel shift costed as another A-bit add;
  a compare = one add of its width; the multistep leak = shift + subtract;
- SRAM writes cost as reads; every access moves a whole word of the memory
  as hw/top.py declares it (`memories`), its size sets the energy per bit;
- no clock tree, control, registers, FIFO, leakage or I/O energy; idle
  lanes of a partial channel group are not counted as shift-adds.

Counts per phase (hw/top.py):

- INPUT (once): every input word written to the code buffer (cmem), an
  event record (emem) per non-silent word.
- SCATTER: one event record read per non-silent input word; per (live input,
  valid kernel position, output group) one op = a weight word read (wmem) and
  a potential word read + write (pmem); shift-adds = synaptic events = live
  (input, position) pairs x output channels.
- FIRE, every output word: pmem read + clear, bias word read (bmem), P bias
  adds; ttfs: P x max_t threshold compares; spiking layers write a code word
  (cmem) and, if any lane fires, an event record; the output layer feeds the
  argmax (2 compares per lane).
- POOL: k*k code-word reads and one write per pooled word, P lane compares
  per read, an event record per non-silent pooled word.
- multistep, per executed step s = 1..exit_step: the above for every layer,
  except the first layer's scatter, done at step 1 only (its current goes to
  imem at step 1 and is read back at later steps; FIRE still reads and clears
  pmem and reads bmem, as the RTL addresses them); vmem read + write per
  output word of every weighted layer; kmem read + write (and a count_bits
  add per lane) per spiking or pooled word; the neuron update (leak,
  integrate, compare with 2^F, soft reset); the exit check (a - b, >= margin
  * s, the running margin sum: 3 A-bit ops; 2 step compares). After the exit
  step: OUTE reads the output words from vmem, CNT reads every counter word.
- layer table: entry 0 at the start, 2 entries per layer visit, one per
  entry in CNT.

Cycles (for latency = cycles / Fmax): one per issued word or op (input
words, scatter ops, FIRE words, pool reads, OUTE and CNT words); no stalls,
no phase switches and no idle border cycles, so a lower bound (checked
against hw.bench's RTL measurement where one exists).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FMAX_JSON = HERE / "reports" / "ecp5_p1.json"
RTL_BENCH = ROOT / "hw" / "reports" / "bench_rtl_digits_cnn.json"

SOURCE = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
          "IEEE ISSCC 2014, pp. 10-14; 45 nm CMOS, 0.9 V")
E_ADD8, E_ADD32 = 0.03, 0.1            # pJ
SRAM64 = [(8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0)]  # bytes, pJ per 64-bit read
DRAM64 = 1300.0                         # pJ per 64 bits (low end of 1.3-2.6 nJ)
TTFS_CHIP_VGG16_UJ = 486.7              # measured, 28 nm TTFS chip, VGG-16 on CIFAR-10 (the brief's figure)
MEMORIES = ("wmem", "bmem", "pmem", "cmem", "emem", "table", "vmem", "kmem", "imem")


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


def memories(cfg) -> dict:
    """(word bits, depth) of every memory of hw/top.py for build cfg (a test checks them against the RTL).
    wmem is the whole weight memory even where hw/banks.py splits it: a banked read enables one bank, so
    its size-based energy is an upper bound there (the mux and wires between banks are not free either)."""
    from logspike.hw.config import clog2
    from logspike.hw.protocol import entry_layout
    from logspike.hw.sequencer import record_layout

    P, A = cfg.lanes, cfg.acc_bits
    banks = 2 * (1 << clog2(cfg.words))  # code and event buffers: two power-of-two banks
    return {"wmem": (P * cfg.weight_bits, cfg.max_weight_words), "bmem": (P * A, cfg.max_bias_words),
            "pmem": (P * A, cfg.words), "cmem": (P * cfg.sym_bits, banks), "emem": (record_layout(cfg).size, banks),
            "table": (entry_layout(cfg).size, cfg.max_layers), "vmem": (P * A, cfg.max_state_words),
            "kmem": (P * cfg.count_bits, cfg.max_count_words), "imem": (P * A, cfg.words)}


class Tally:
    """Per-sample counts of one inference: accesses per memory, operations by (name, bits), cycles, per layer."""

    def __init__(self, B: int):
        self.B = B
        self.reads = {m: np.zeros(B) for m in MEMORIES}
        self.writes = {m: np.zeros(B) for m in MEMORIES}
        self.ops = {}     # name -> [bits, adds per op, counts]
        self.cycles = np.zeros(B)
        self.layers = {}  # layer index -> {count name: per-sample array}

    def mem(self, name, r=0.0, w=0.0):
        self.reads[name] = self.reads[name] + r
        self.writes[name] = self.writes[name] + w

    def op(self, name, bits, n, adds=1):
        e = self.ops.setdefault(name, [bits, adds, np.zeros(self.B)])
        e[2] = e[2] + n

    def layer(self, i, typ, **counts):
        row = self.layers.setdefault(i, {"type": typ})
        for k, v in counts.items():
            row[k] = row.get(k, 0.0) + v


def live_words(live: np.ndarray, P: int) -> np.ndarray:
    """Per sample, words (P channel lanes at one position) with a non-silent lane: the event records written."""
    B, C = live.shape[:2]
    G = -(-C // P)
    pad = np.zeros((B, G * P - C) + live.shape[2:], dtype=bool)
    return np.concatenate([live, pad], 1).reshape((B, G, P) + live.shape[2:]).any(2).reshape(B, -1).sum(1)


def positions(layer: dict, live: np.ndarray) -> np.ndarray:
    """Per sample, the (live input, output position) pairs the Scatter walks; x output channels = synaptic events."""
    import torch

    B = len(live)
    if layer["type"] == "dense":
        return live.reshape(B, -1).sum(1).astype(np.float64)
    k, s, p = layer["kernel"], layer["stride"], layer["padding"]
    t = torch.from_numpy(live.astype(np.float64))
    win = torch.nn.functional.conv2d(t, torch.ones(1, t.shape[1], k, k, dtype=torch.float64), stride=s, padding=p)
    return win.reshape(B, -1).sum(1).numpy()


def op_counts(pkg, cfg, x, res, spikes=None) -> Tally:
    """Count every operation and memory access of each inference, phase by phase as hw/top.py runs it.

    res: golden results (`exit_step`, ttfs spike codes); spikes: multistep
    per-step spikes from `golden.step_spikes` (zero after a sample's exit).
    """
    from logspike.hw.config import chw, needs, words_of
    from logspike.model.package import layer_shapes

    P, A, SY, KB = cfg.lanes, cfg.acc_bits, cfg.sym_bits, cfg.count_bits
    ms = pkg.mode == "multistep"
    x = np.asarray(x)
    B, T = len(x), pkg.time_steps
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    first, out_i = pkg.weighted_indices()[0], pkg.output_index()
    exit_step = np.asarray(res["exit_step"]) if ms else np.ones(B)
    t = Tally(B)

    def out_live(i, s):
        a = (spikes[i][:, s - 1] != 0) if ms else (np.asarray(res[f"spikes_L{i}"]) < T)
        return a.reshape((B,) + chw(shapes[i]))

    def counters(words, run):
        t.mem("kmem", r=words * run, w=words * run)
        t.op("count_add", KB, words * P * run)

    # INPUT, once per inference (multistep bytes: 0 is silent)
    x_live = ((x != 0) if ms else (x < T)).reshape((B,) + chw(pkg.input_shape))
    in_words = words_of(pkg.input_shape, P)
    t.mem("table", r=1)  # PREP reads entry 0
    t.mem("cmem", w=in_words)
    t.mem("emem", w=live_words(x_live, P))
    t.cycles += in_words
    for s in range(1, (T if ms else 1) + 1):
        run = (exit_step >= s).astype(np.float64)  # samples that execute step s
        live = x_live  # the consumed tensor in its producer's word layout (flatten is free)
        outs = {}      # each layer's live outputs at this step, for the shortcuts that read them
        for i, (l, shp) in enumerate(zip(pkg.layers[:out_i + 1], shapes)):
            if l["type"] == "flatten":
                continue
            t.mem("table", r=2 * run)  # LAYER / LAYER2: this entry and the next
            ow = words_of(shp, P)
            if l["type"] == "maxpool2d":
                reads = ow * l["kernel"] ** 2
                nxt = out_live(i, s)
                t.mem("cmem", r=reads * run, w=ow * run)
                t.mem("emem", w=live_words(nxt, P))
                t.op("pool_compare", SY, reads * P * run)
                if ms:
                    counters(ow, run)
                t.cycles += reads * run
                t.layer(i, "maxpool2d", pool_reads=reads * run)
                live = outs[i] = nxt
                continue
            K = chw(shp)[0]
            G = -(-K // P)
            if ms and i == first and s > 1:  # input current kept in imem since step 1: no scatter
                t.mem("imem", r=ow * run)
            else:
                pos = positions(l, live)
                ops = pos * G
                t.mem("emem", r=live_words(live, P))
                t.mem("wmem", r=ops)
                t.mem("pmem", r=ops, w=ops)
                t.op("shift_add", A, pos * K, adds=2)
                t.cycles += ops
                t.layer(i, l["type"], synaptic_events=pos * K, scatter_ops=ops,
                        live_inputs=live.reshape(B, -1).sum(1).astype(np.float64))
                if ms and i == first:
                    t.mem("imem", w=ow * run)
            if "shortcut" in l:   # SC_WALK re-emits the source's words at the stride, then a 1x1 conv scatter
                sc = l["shortcut"]
                st = sc.get("stride", 1)
                src = outs[sc["from"]][:, :, ::st, ::st]
                sw = words_of(src.shape[1:], P)
                ev = src.reshape(B, -1).sum(1).astype(np.float64)
                ops = ev * G
                t.mem("table", r=4 * run)   # the shortcut entry, then the layer and the entry after it again
                t.mem("cmem", r=sw * run, w=sw * run)
                t.mem("emem", w=live_words(src, P), r=live_words(src, P))
                t.mem("wmem", r=ops)
                t.mem("pmem", r=ops, w=ops)
                t.op("shift_add", A, ev * K, adds=2)
                t.cycles += sw * run + ops
                t.layer(i, l["type"], synaptic_events=ev * K, scatter_ops=ops, live_inputs=ev)
            # FIRE: every output word read and cleared, its bias word read
            n = ow * P * run
            t.mem("pmem", r=ow * run, w=ow * run)
            t.mem("bmem", r=ow * run)
            t.op("bias_add", A, n)
            t.cycles += ow * run
            t.layer(i, l["type"], fire_words=ow * run)
            if ms:
                t.mem("vmem", r=ow * run, w=ow * run)
                t.op("integrate", A, n)
            if i == out_i:
                t.op("argmax_compare", A, 2 * n)
                if ms:
                    t.op("exit_check", A, 3 * run)
                    t.op("step_compare", cfg.step_bits, 2 * run)
                break
            if ms:
                if pkg.layer_leak(i):
                    t.op("leak", A, n, adds=2)
                t.op("spike_compare", A, n)
                if pkg.layer_reset(i) is None:
                    t.op("soft_reset", A, n)
                else:   # a select, no add
                    t.op("reset_to_value", A, n, adds=0)
                counters(ow, run)
            else:
                t.op("threshold_compare", A, n * cfg.max_t)
            nxt = out_live(i, s)
            t.mem("cmem", w=ow * run)
            t.mem("emem", w=live_words(nxt, P))
            live = outs[i] = nxt
    if ms:  # after the exit step: OUTE (O from vmem), CNT (table walk, every counter word)
        n = needs(pkg, P)
        ow = words_of(shapes[out_i], P)
        t.mem("vmem", r=ow)
        t.mem("kmem", r=n["count_words"])
        t.mem("table", r=n["layers"])
        t.cycles += ow + n["count_words"]
    return t


def energy(cfg, t: Tally, weights_dram: bool = False) -> dict:
    """Per-sample energy (pJ) of tallied counts, by part, and the memory table behind it."""
    mem = memories(cfg)
    pj_bit = {m: e_sram_bit(w * d / 8) for m, (w, d) in mem.items()}
    if weights_dram:
        pj_bit["wmem"] = DRAM64 / 64
    parts = {}
    for m, (w, _) in mem.items():
        parts[m] = (t.reads[m] + t.writes[m]) * w * pj_bit[m]
    for name, (bits, adds, n) in t.ops.items():
        parts[name] = n * adds * e_add(bits)
    total = sum(parts.values())
    table = {m: {"word_bits": w, "depth": d, "bytes": w * d / 8, "pJ_per_bit": pj_bit[m],
                 "reads": float(t.reads[m].mean()), "writes": float(t.writes[m].mean())} for m, (w, d) in mem.items()}
    return {"pJ": total, "pJ_by_part": {k: float(v.mean()) for k, v in parts.items()}, "memories": table,
            "memory_pJ": float(sum(parts[m] for m in mem).mean())}


def run_golden(pkg, x):
    """(results, per-step spikes or None) of the golden model: what the counts are taken from."""
    from logspike.model import golden

    if pkg.mode == "multistep":
        return golden.step_spikes(pkg, x, batch=64)
    return golden.run(pkg, x, batch=min(len(x), 64)), None


def estimate(name, pkg, x, lanes: int, fmax_mhz: float | None, desc: str, rtl_cycles=None, weights_dram=False) -> dict:
    """The energy ESTIMATE of one network on its own build (`hw.config.build_for`), averaged over the inputs."""
    from logspike.hw.config import build_for

    res, spikes = run_golden(pkg, x)
    cfg = build_for(pkg, lanes)
    t = op_counts(pkg, cfg, x, res, spikes)
    e = energy(cfg, t, weights_dram)
    uj = e["pJ"] * 1e-6
    cyc = float(rtl_cycles) if rtl_cycles is not None else float(t.cycles.mean())
    r = {"net": name, "package": desc, "mode": pkg.mode, "images": len(x), "lanes": lanes, "weights_dram": weights_dram,
         "uJ": float(uj.mean()), "uJ_min": float(uj.min()), "uJ_max": float(uj.max()), "memory_uJ": e["memory_pJ"] * 1e-6,
         "synaptic_events": float(t.ops["shift_add"][2].mean()),
         "scatter_ops": float(t.reads["wmem"].mean()), "fmax_mhz": fmax_mhz, "cycles": cyc,
         "cycles_source": "RTL (hw.sim.simulate)" if rtl_cycles is not None else "estimate (one per issued word or op, no stalls)",
         "cycles_per_sample": t.cycles, "latency_us": cyc / fmax_mhz if fmax_mhz else None,
         "pJ_by_part": e["pJ_by_part"], "ops": {k: float(v[2].mean()) for k, v in t.ops.items()}, "memories": e["memories"],
         "config": cfg.as_dict(),
         "layers": [{"layer": i, **{k: (float(np.mean(v)) if k != "type" else v) for k, v in row.items()}}
                    for i, row in sorted(t.layers.items())]}
    if pkg.mode == "ttfs":  # share of spiking and pooled neurons that fire: sets the event counts
        fired = [np.asarray(v) < pkg.time_steps for k, v in res.items() if k.startswith("spikes_L")]
        r["firing_fraction"] = float(sum(f.sum() for f in fired) / max(1, sum(f.size for f in fired)))
    if pkg.mode == "multistep":
        steps = np.asarray(res["exit_step"])
        r["T_max"] = pkg.time_steps
        r["exit"] = dict(pkg.exit)
        r["mean_exit_step"] = float(steps.mean())
        r["uJ_by_exit_step"] = {int(s): {"images": int((steps == s).sum()), "uJ": float(uj[steps == s].mean())}
                                for s in np.unique(steps)}
    return r


def from_rtl_run(name, pkg, x, lanes: int, fmax_mhz: float | None, desc: str, rtl: dict) -> dict:
    """The ESTIMATE of a run of an external-weight build (hw/bench_memory.py's row `rtl`): on-chip counts as
    `estimate` (the RTL's own END-beat operation and event counts must equal them), the external memory's
    energy from the bytes the RTL read (every burst's whole beats and the biases, as the memory model counted
    them), cycles the RTL's."""
    r = estimate(name, pkg, x, lanes, fmax_mhz, desc, rtl_cycles=rtl["cycles_base"])
    got = (round(rtl["sops_per_image"]), round(rtl["events_per_image"]))
    want = (round(r["scatter_ops"]), round(sum(row.get("live_inputs", 0) for row in r["layers"])))
    if got != want:
        raise RuntimeError(f"{name}: the RTL's ops and events per image {got} are not the tally's {want}")
    dram = rtl["bytes_per_image"] * 8 / 64 * DRAM64   # pJ
    on_chip = r["pJ_by_part"].pop("wmem")
    r["pJ_by_part"]["dram"] = dram
    r["uJ"] += (dram - on_chip) * 1e-6
    r["memory_uJ"] += (dram - on_chip) * 1e-6
    r.update(weights_dram=True, dram_bytes=rtl["bytes_per_image"], counts_source="RTL (END beats, memory model)")
    return r


def without_exit(pkg):
    """The same multistep network run to T_max (margin null): the no-exit comparison."""
    p = pkg.copy()
    p.manifest["exit"] = {"margin": None, "min_steps": 1}
    return p


def networks():
    """(name, package, inputs, description) of the golden vectors (digits MLP, CNN, ATSNN)."""
    from logspike.golden.make import load

    out = []
    for name in ("digits_mlp", "digits_cnn", "digits_atsnn"):
        pkg, x, _, _ = load(name)
        out.append((name, pkg, x, f"golden/{name} (trained), digits test split"))
    return out


def vgg16_network(batch: int = 8, seed: int = 0):
    """VGG-16 32x32x3 ttfs, RANDOM weights normalised on random images (as model/bench_golden.py), random inputs.

    Only the shape and the spike counts matter for op counts; the weights are
    not trained, so the firing rates are not those of a CIFAR-10 network."""
    import torch

    from logspike.model.convert import encode_inputs, to_package
    from logspike.model.nets import Net, build_spec, normalise
    from logspike.model.quant import QuantConfig

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vgg = Net((3, 32, 32), build_spec("vgg16", (3, 32, 32), 10), batch_norm=False).eval()
    vgg, _ = normalise(vgg, torch.from_numpy(rng.random((32, 3, 32, 32), dtype=np.float32)))
    q = QuantConfig()
    pkg = to_package(vgg, q)
    x = encode_inputs(rng.random((batch, 3, 32, 32), dtype=np.float32), q)
    return pkg, x


def fmax_from(path) -> tuple[float, int | None, str]:
    """(Fmax MHz, lanes of that build, note) from a synth JSON (logspike synth --json / synth.sweep)."""
    path = Path(path)
    d = json.loads(path.read_text())
    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path
    lanes = d.get("config", {}).get("lanes")
    return d["fmax_mhz"], lanes, (f"Fmax {d['fmax_mhz']} MHz from `{shown}` ({d.get('target', '?')}, {d.get('device', '')}, "
                                  f"lanes = {lanes}, {d.get('package', 'package not recorded')})")


def rtl_reference(lanes: int):
    """hw.bench's RTL-measured cycles of the digits CNN at these lanes, if committed: (cycles, images) or None."""
    if not RTL_BENCH.exists():
        return None
    for row in json.loads(RTL_BENCH.read_text())["rows"]:
        if row["lanes"] == lanes:
            return row["cycles_mean"], row["images"]
    return None


def report(results: list, fmax_note: str, lanes: int, check: str) -> str:
    def name(r):
        return r["net"] + (" (weights in DRAM)" if r["weights_dram"] and "dram_bytes" not in r else "")

    def ratio(r):  # only VGG-16 is the reference's network
        return f"{r['uJ'] / TTFS_CHIP_VGG16_UJ:.3g}x" if r["net"].startswith("vgg16") else "-"

    L = ["# LogSpike energy per inference: ESTIMATE (not measured)", "",
         "Every figure below is an ESTIMATE: exact operation and memory-access counts of the RTL's phases "
         "(hw/top.py, golden-model spikes) times per-operation energies from one public table, "
         f"{SOURCE}. Process node of the energies: **45 nm**. Regenerate: `python -m logspike.synth.energy` "
         f"(Fmax: `--fmax-json FILE` or `--fmax MHz`).", "",
         "Per-operation energies: integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ (linear in width); SRAM 64-bit read "
         "10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB), log-log interpolated by each memory's size (below 8 KB as 8 KB, "
         "above 1 MB extrapolated); DRAM 1.3 nJ per 64 bits (low end of 1.3-2.6 nJ).", "",
         "Assumptions:", "",
         "- shift-add = 2 A-bit adds (add + barrel shift costed as an add); compare = 1 add of its width; "
         "multistep leak = 2 A-bit adds (shift + subtract);",
         "- SRAM write = read; every access moves one whole word of the memory as hw/top.py declares it "
         "(P lanes; code buffer and event records P x sym_bits = max(code_bits, 8) bits per lane);",
         "- memory sizes are those of `hw.config.build_for(package, lanes)`, the smallest build that holds the package;",
         "- multistep: per executed step (1..exit step of each image) every layer runs, except the first layer's "
         "scatter (step 1 only, then imem); vmem, kmem, imem, exit check, OUTE and CNT counted as in the module "
         "docstring of synth/energy.py; at later steps the first layer's FIRE still reads and clears pmem and "
         "reads bmem (the RTL addresses them; values unused): counted;",
         "- no clock tree, control, registers, FIFO, leakage or I/O energy; idle lanes of a partial channel group "
         "are not counted as shift-adds;",
         f"- cycles: one per issued word or op, no stalls, phase switches or idle border cycles (a lower bound). {check}", "",
         f"Latency = cycles / Fmax; {fmax_note}. Lanes P = {lanes} for every network, so Fmax belongs to "
         "the synthesized build; the bigger builds (VGG-16) are hypothetical, far beyond an ECP5-25k, and "
         "their Fmax would differ.", "",
         "| network | package / inputs | images | mode | synaptic events | scatter ops | mean exit step | energy (uJ, ESTIMATE) "
         f"| of which memory (uJ) | cycles (estimate) | latency (us) | vs {TTFS_CHIP_VGG16_UJ} uJ |",
         "| --- " * 12 + "|"]
    for r in results:
        lat = f"{r['latency_us']:,.1f}" if r["latency_us"] else "-"
        steps = f"{r['mean_exit_step']:.2f} of {r['T_max']}" if r["mode"] == "multistep" else "-"
        L.append(f"| {name(r)} | {r['package']} | {r['images']} | {r['mode']} | {r['synaptic_events']:,.0f} | "
                 f"{r['scatter_ops']:,.0f} | {steps} | {r['uJ']:.4g} | {r['memory_uJ']:.4g} | {r['cycles']:,.0f} | {lat} | "
                 f"{ratio(r)} |")
    L.append(f"| VGG-16, CIFAR-10, 28 nm TTFS chip | measured (figure as given in the project brief, not re-measured) "
             f"| | ttfs | | | | {TTFS_CHIP_VGG16_UJ} (measured) | | | | 1x |")
    ms = [r for r in results if r["mode"] == "multistep"]
    if ms:
        L += ["", "Multistep (ATSNN) energy by exit step (ESTIMATE, uJ per inference, images exiting at that step):", ""]
        for r in ms:
            L.append(f"- {r['net']}: " + ", ".join(f"step {s}: {v['uJ']:.4g} ({v['images']})"
                                                     for s, v in r["uJ_by_exit_step"].items()))
        if len(ms) == 2:
            a, b = ms
            L.append(f"- early exit saves {100 * (1 - a['uJ'] / b['uJ']):.1f}% energy and "
                     f"{100 * (1 - a['cycles'] / b['cycles']):.1f}% cycles against the same network run to T_max.")
    L += ["", "Energy by part (pJ per inference, ESTIMATE):", ""]
    for r in results:
        L.append(f"- {name(r)}: " + ", ".join(f"{k} {v:,.1f}" for k, v in r["pJ_by_part"].items() if v))
    L += ["", "Memories of each build (word bits x depth, bytes, pJ per bit, accesses per inference):", ""]
    for r in results:
        if r["weights_dram"]:
            continue
        L.append(f"- {r['net']}: " + "; ".join(
            f"{m} {v['word_bits']}x{v['depth']} ({v['bytes']:,.0f} B, {v['pJ_per_bit']:.3f} pJ/bit, "
            f"{v['reads']:,.0f} r / {v['writes']:,.0f} w)" for m, v in r["memories"].items()))
    fire = ", ".join(f"{r['net']} {100 * r['firing_fraction']:.0f}%" for r in results
                     if r["mode"] == "ttfs" and not r["weights_dram"])
    L += ["", f"Share of spiking and pooled neurons that fire (ttfs): {fire}.", "",
          "Caveats: 45 nm energies against a 28 nm measured chip (scaling would lower ours further); "
          "the VGG-16 weights are RANDOM (normalised on random images, not trained) and its inputs random images, "
          "so its firing rates are not CIFAR-10's: its figure is an op-count scale, not a CIFAR-10 result; "
          "its weight memory lies far beyond Horowitz's 1 MB SRAM point (extrapolated), hence the DRAM variant."]
    for r in results:
        if "dram_bytes" in r:
            L += ["", f"{r['net']}: a trained VGG-16 (on MNIST digits padded to 32x32x3, not CIFAR-10), its operation "
                  f"and event counts, cycles and external bytes from the RTL itself ({r['package']}). It reads "
                  f"{r['dram_bytes'] / 1e6:.1f} MB of weights per image from DRAM: a weight word per op, so each weight "
                  "again for every live input position that uses it. DRAM is "
                  f"{100 * r['pJ_by_part']['dram'] / (r['uJ'] * 1e6):.0f}% of its energy; a dataflow that reuses a "
                  "fetched weight across positions would read each weight about once per image."]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "reports"))
    ap.add_argument("--fmax-json", default=str(FMAX_JSON), help="synth JSON whose fmax_mhz (and lanes) to use")
    ap.add_argument("--fmax", type=float, default=None, help="MHz; overrides --fmax-json")
    ap.add_argument("--lanes", type=int, default=None, help="default: the lanes of the --fmax-json build")
    ap.add_argument("--vgg-batch", type=int, default=8, help="random VGG-16 input images")
    ap.add_argument("--rtl-cycles", type=str, default=None, help="JSON {net: cycles} measured with hw.sim.simulate")
    ap.add_argument("--vgg-rtl", type=str, default=None,
                    help="hw/bench_memory.py's JSON: add the trained VGG-16 from the RTL's own counts on that run")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    fmax, json_lanes, note = fmax_from(a.fmax_json)
    if a.fmax is not None:
        fmax, note = a.fmax, f"Fmax {a.fmax} MHz given on the command line"
    lanes = a.lanes or json_lanes or 1
    if json_lanes and lanes != json_lanes and a.fmax is None:
        note += f"; NOTE: that build has {json_lanes} lanes, these estimates {lanes}"
    rtl = json.loads(Path(a.rtl_cycles).read_text()) if a.rtl_cycles else {}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results, check = [], "No RTL cycle measurement committed for these lanes."
    for name, pkg, x, desc in networks():
        runs = [(name, pkg)] + ([(name + "_T_max", without_exit(pkg))] if pkg.mode == "multistep" else [])
        for n, p in runs:
            d = desc + ("; margin null: every step to T_max" if n.endswith("_T_max") else "")
            r = estimate(n, p, x, lanes, fmax, d, rtl.get(n))
            results.append(r)
            print(f"{n}: {r['uJ']:.4g} uJ, {r['cycles']:,.0f} cycles", flush=True)
        ref = rtl_reference(lanes)
        if name == "digits_cnn" and ref:
            est = results[-1]["cycles_per_sample"][:ref[1]].mean()
            check = (f"Check: digits_cnn at P = {lanes}, first {ref[1]} test images: estimate {est:,.0f} cycles, "
                     f"RTL measured {ref[0]:,.0f} (`{RTL_BENCH.relative_to(ROOT)}`), {100 * (1 - est / ref[0]):.1f}% below.")
    pkg, x = vgg16_network(a.vgg_batch)
    desc = f"RANDOM weights (normalised on random images, untrained), {len(x)} random 32x32x3 images"
    for dram in (False, True):
        r = estimate("vgg16_32x32x3", pkg, x, lanes, fmax, desc, weights_dram=dram)
        results.append(r)
        print(f"vgg16 (weights in DRAM: {dram}): {r['uJ']:.4g} uJ, {r['uJ'] / TTFS_CHIP_VGG16_UJ:.3g}x "
              f"the {TTFS_CHIP_VGG16_UJ} uJ chip, {r['cycles']:,.0f} cycles", flush=True)
    if a.vgg_rtl:
        from logspike.golden.make import cached

        row = next(r for r in json.loads(Path(a.vgg_rtl).read_text())["rows"] if r["net"] == "vgg16")
        tp, tx, _, _ = cached("mnist5k32x3_vgg16")
        desc = (f"trained on mnist5k32x3 (golden/make.py), its first {row['images']} test images; counts, cycles "
                f"and external bytes from the RTL ({row['lanes']}-lane external-weight build, `{a.vgg_rtl}`)")
        r = from_rtl_run("vgg16_32x32x3_trained_rtl", tp, tx[:row["images"]], row["lanes"], fmax, desc, row)
        results.append(r)
        print(f"vgg16 trained, RTL counts: {r['uJ']:.4g} uJ, {r['uJ'] / TTFS_CHIP_VGG16_UJ:.3g}x the "
              f"{TTFS_CHIP_VGG16_UJ} uJ chip, {r['cycles']:,.0f} cycles, {r['dram_bytes'] / 1e6:.1f} MB from DRAM", flush=True)
    (out / "energy.md").write_text(report(results, note, lanes, check))
    meta = {"estimate": "ESTIMATE, not measured", "source": SOURCE, "process_nm": 45, "fmax_note": note,
            "reference_uJ": {"value": TTFS_CHIP_VGG16_UJ, "what": "measured, 28 nm TTFS chip, VGG-16 on CIFAR-10"},
            "cycles_check": check}
    slim = [{k: v for k, v in r.items() if k != "cycles_per_sample"} for r in results]
    (out / "energy.json").write_text(json.dumps({"meta": meta, "results": slim}, indent=1, default=float) + "\n")
    print(f"-> {out / 'energy.md'}")
    return results


if __name__ == "__main__":
    main()
