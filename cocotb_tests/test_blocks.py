"""The processor's address blocks alone, in Amaranth's simulator, against what they must compute:

- PoolWalk: the k x k reads of every pooled word, in natural output order, with window marks;
- Writer: every word's buffer address and event record (first output / kernel offset clamped to the last
  output, potential and weight-row bases) for dense and conv consumers;
- Scatter: from event records, the multiset of (potential word, weight word, code) ops a layer needs,
  derived here from the layer's geometry and the weight layout of hw/image.py.

Each block gets its layer-table entry from hw.image.layer_entries of a random package, as the processor's
layer table would hold it, and random stalls where it has a handshake.
"""
from collections import Counter

import numpy as np
import torch
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from logspike.hw import image
from logspike.hw.config import Config, build_for
from logspike.hw.protocol import entry_layout
from logspike.hw.sequencer import PoolWalk, RegisterSlice, RingFifo, Scatter, Writer, record_layout
from logspike.model import randnet
from logspike.model.package import PackageError


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def package_with(kind, lanes, seed, pick):
    """(cfg, pkg, entry) of a random ttfs package and the table entry of its first layer that pick(layer)
    accepts (packages are drawn until one has such a layer)."""
    rng = np.random.default_rng(seed)
    for _ in range(500):
        shape = [int(rng.integers(8, 40))] if kind == "dense" else [int(rng.integers(2, 6)), int(rng.integers(6, 10)),
                                                                     int(rng.integers(6, 10))]
        try:
            pkg = randnet.random_package(rng, "ttfs", kind, input_shape=shape, weight_bits=5, frac_bits=10)
        except PackageError:
            continue
        hits = [i for i, l in enumerate(pkg.layers) if pick(l)]
        if hits:
            cfg = build_for(pkg, lanes)
            return cfg, pkg, next(e for e in image.layer_entries(cfg, pkg)[0] if e["index"] == hits[0])
    raise AssertionError("no such layer drawn")


def conv(k, s, p):
    return lambda l: l["type"] == "conv2d" and (l["kernel"], l["stride"], l["padding"]) == (k, s, p)


def dense(l):
    return l["type"] == "dense"


def packed(cfg, e):
    return image.pack(entry_layout(cfg), e)


def lanes_word(vals, width):
    """One word of lanes, lane 0 lowest."""
    return sum((int(v) & ((1 << width) - 1)) << (l * width) for l, v in enumerate(vals))


def geometry(e):
    """(G, W, H) of the tensor an entry's layer consumes, as its producer walks it."""
    return e["in_g"] + 1, e["in_x"] + 1, e["in_y"] + 1


# ---- PoolWalk --------------------------------------------------------------------------------------

@pytest.mark.parametrize("lanes,seed", [(1, 11), (2, 12), (4, 13)])
def test_pool_walk_reads_every_window_in_order(lanes, seed):
    cfg, pkg, e = package_with("conv", lanes, seed, lambda l: l["type"] == "maxpool2d")
    G, W, H = geometry(e)
    k, ow, oh = e["pk"], e["p_ox"] + 1, e["p_oy"] + 1
    want = [(((oy * k + dy) * W + ox * k + dx) * G + g, int(dy == dx == 0), int(dy == dx == k - 1))
            for oy in range(oh) for ox in range(ow) for g in range(G) for dy in range(k) for dx in range(k)]
    dut = PoolWalk(cfg)
    got, rng = [], np.random.default_rng(seed)

    async def bench(ctx):
        ctx.set(dut.ent.as_value(), packed(cfg, e))
        await ctx.tick().repeat(2)   # the walk's per-layer registers load from the entry
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(20 * len(want) + 20):
            ctx.set(dut.step, int(rng.random() < 0.6))
            if ctx.get(dut.valid):
                got.append((ctx.get(dut.rd), ctx.get(dut.first), ctx.get(dut.last)))
            if not ctx.get(dut.busy) and not ctx.get(dut.inflight):
                break
            await ctx.tick()
        assert not ctx.get(dut.busy)

    run(dut, bench)
    assert got == want


# ---- Writer ----------------------------------------------------------------------------------------

def writer_reference(e, layer, n_words, P):
    """Per input word: (pbase, wbase, qx, qy, rx, ry) of its event record, from the consumer's geometry
    (wbase relative to the layer's weights: the Scatter adds the layer's base)."""
    G, W, H = geometry(e)
    out = []
    for a in range(n_words):
        y, rem = divmod(a, W * G)
        x, g = divmod(rem, G)
        if e["dense"]:
            out.append((0, a * P * e["gout"], None, None, None, None))
            continue
        k, s, pad, gout, wout, hout = layer["kernel"], layer["stride"], layer["padding"], e["gout"], e["wout"], e["hout"]
        qx, qy = min((x + pad) // s, wout - 1), min((y + pad) // s, hout - 1)
        rx, ry = x + pad - qx * s, y + pad - qy * s   # past the last output, r keeps counting and q stays
        pbase = (qy * wout + qx) * gout
        wbase = ((g * P * k + ry) * k + rx) * gout   # channel g * P (lane 0), offset (ry, rx)
        out.append((pbase, wbase, qx, qy, rx, ry))
    return out


LAYERS = [("conv", conv(3, 1, 1), 1), ("conv", conv(3, 2, 1), 2), ("conv", conv(2, 1, 1), 4),
          ("conv", conv(3, 1, 2), 2), ("conv", conv(3, 2, 2), 1), ("dense", dense, 2), ("dense", dense, 4)]


@pytest.mark.parametrize("kind,pick,lanes", LAYERS)
def test_writer_builds_every_event_record(kind, pick, lanes):
    seed = 20 + LAYERS.index((kind, pick, lanes))
    cfg, pkg, e = package_with(kind, lanes, seed, pick)   # e: the consumer of the words written
    layer = pkg.layers[e["index"]]
    G, W, H = geometry(e)
    n = G * W * H
    P, T = cfg.lanes, pkg.time_steps
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, T, size=(n, P))
    codes[rng.random((n, P)) < 0.5] = T                # silent lanes
    codes[rng.random(n) < 0.2] = T                     # silent words: no record
    ref = writer_reference(e, layer, n, P)
    dut = Writer(cfg)
    seen = []

    async def bench(ctx):
        ctx.set(dut.ent.as_value(), packed(cfg, e))
        await ctx.tick()
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        a = 0
        while a < n:
            valid = int(rng.random() < 0.7)           # gaps between words
            ctx.set(dut.valid, valid)
            if valid:
                ctx.set(dut.codes.as_value(), lanes_word(codes[a], cfg.sym_bits))
                ctx.set(dut.ns, sum(1 << l for l in range(P) if codes[a][l] != T))
                rec = ctx.get(dut.rec)
                seen.append((ctx.get(dut.addr), ctx.get(dut.count), ctx.get(dut.nonsilent), rec))
                a += 1
            await ctx.tick()

    run(dut, bench)
    count = 0
    for a, ((addr, cnt, nonsilent, rec), (pbase, wbase, qx, qy, rx, ry)) in enumerate(zip(seen, ref)):
        mask = sum(1 << l for l in range(P) if codes[a][l] != T)
        assert (addr, cnt, nonsilent) == (a, count, int(mask != 0)), a
        count += mask != 0
        assert rec["mask"] == mask and [rec["codes"][l] for l in range(P)] == list(codes[a]), a
        assert (rec["pbase"], rec["wbase"]) == (pbase, wbase), (a, rec, pbase, wbase)
        if not e["dense"]:
            assert (rec["qx"], rec["qy"], rec["rx"], rec["ry"]) == (qx, qy, rx, ry), a
    assert len(seen) == n


# ---- Scatter ---------------------------------------------------------------------------------------

def scatter_reference(e, layer, events, P):
    """The ops a layer's events need: (potential word, weight word, code) for every output word an event
    reaches through a kernel offset, per output group (hw/image.py's weight layout: row
    ((c * k + ky) * k + kx) * gout + group, dense rows natural index * gout + group)."""
    G, W, H = geometry(e)
    gout = e["gout"]
    ops = Counter()
    for a, lane, t in events:
        y, rem = divmod(a, W * G)
        x, g = divmod(rem, G)
        c = g * P + lane
        if e["dense"]:
            for go in range(gout):
                ops[(go, e["wbase"] + (a * P + lane) * gout + go, t)] += 1
            continue
        k, s, pad, wout, hout = layer["kernel"], layer["stride"], layer["padding"], e["wout"], e["hout"]
        for oy in range(hout):
            for ox in range(wout):
                ky, kx = y + pad - oy * s, x + pad - ox * s
                if 0 <= ky < k and 0 <= kx < k:
                    for go in range(gout):
                        ops[((oy * wout + ox) * gout + go, e["wbase"] + ((c * k + ky) * k + kx) * gout + go, t)] += 1
    return ops


@pytest.mark.parametrize("kind,pick,lanes", LAYERS)
def test_scatter_issues_every_op_of_the_layer(kind, pick, lanes):
    seed = 40 + LAYERS.index((kind, pick, lanes))
    cfg, pkg, e = package_with(kind, lanes, seed, pick)
    layer = pkg.layers[e["index"]]
    G, W, H = geometry(e)
    n, P, T = G * W * H, cfg.lanes, pkg.time_steps
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, T, size=(n, P))
    codes[rng.random((n, P)) < 0.6] = T
    ref_rec = writer_reference(e, layer, n, P)
    rl = record_layout(cfg)
    records, events = [], []
    for a in range(n):
        mask = [l for l in range(P) if codes[a][l] != T]
        if not mask:
            continue
        pbase, wbase, qx, qy, rx, ry = ref_rec[a]
        fields = dict(codes=codes[a], mask=sum(1 << l for l in mask), nlanes=len(mask), wbase=wbase, pbase=pbase,
                      qx=qx or 0, qy=qy or 0, rx=rx or 0, ry=ry or 0)
        word = lanes_word(fields.pop("codes"), cfg.sym_bits)
        records.append(word | image.pack(rl, {**fields, "codes": 0}))
        events += [(a, l, int(codes[a][l])) for l in mask]
    want = scatter_reference(e, layer, events, P)
    dut = Scatter(cfg)
    got = Counter()
    n_events = []

    async def bench(ctx):
        ctx.set(dut.ent.as_value(), packed(cfg, e))
        ctx.set(dut.n_rec, len(records))
        await ctx.tick().repeat(2)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        raddr, events_seen = 0, 0
        for _ in range(40 * len(want) + 200):
            ctx.set(dut.rdata.as_value(), records[raddr] if raddr < len(records) else 0)   # read a cycle after raddr
            if ctx.get(dut.op):
                got[(ctx.get(dut.paddr), ctx.get(dut.waddr), ctx.get(dut.t))] += 1
            events_seen += ctx.get(dut.event)
            if not ctx.get(dut.busy):
                break
            raddr = ctx.get(dut.raddr)
            await ctx.tick()
        n_events.append(events_seen)
        assert not ctx.get(dut.busy)

    run(dut, bench)
    assert n_events == [len(events)]
    assert got == want, (sorted((got - want).items())[:4], sorted((want - got).items())[:4])


# ---- ConfigDecoder ---------------------------------------------------------------------------------

def decode_run(cfg, beats, image_init=None, seed=0):
    """Beats into a ConfigDecoder with random valid gaps and accept low at random: (final registers, LUT,
    thresholds, writes per memory as (addr, data) in order, whether busy covered every take)."""
    from logspike.hw.decoder import ConfigDecoder, globals_layout

    dut = ConfigDecoder(cfg, image_init)
    rng = np.random.default_rng(seed)
    writes = {"table": [], "weight": [], "bias": []}
    out = {}

    async def bench(ctx):
        i, takes, covered = 0, [], True
        for cycle in range(4 * len(beats) + 10):
            valid = i < len(beats) and rng.random() < 0.7
            ctx.set(dut.cfg.valid, valid)
            ctx.set(dut.cfg.payload.as_value(), beats[i] if i < len(beats) else 0)
            ctx.set(dut.accept, int(rng.random() < 0.8))
            took = valid and ctx.get(dut.cfg.ready)
            takes.append(took)
            covered &= ctx.get(dut.busy) == int(any(takes[-3:]))
            for mem in writes:
                if ctx.get(getattr(dut, f"{mem}_we")):
                    writes[mem].append((ctx.get(dut.wr_addr), ctx.get(dut.wr_data)))
            i += took
            await ctx.tick()
        assert i == len(beats)
        regs = ctx.get(dut.regs)
        out.update(regs={f: regs[f] for f, _ in globals_layout(cfg)}, lut=[ctx.get(dut.lut)[k] for k in range(cfg.max_tau)],
                   thr=[ctx.get(dut.thr)[k] for k in range(cfg.max_t)], covered=covered)

    run(dut, bench)
    return out, writes


@pytest.mark.parametrize("mode,seed", [("ttfs", 61), ("multistep", 62)])
def test_config_decoder_loads_every_register_and_memory_word(mode, seed):
    rng = np.random.default_rng(seed)
    pkg = randnet.random_package(rng, mode, "conv", weight_bits=5, frac_bits=10,
                                 **({"tau": 2} if mode == "ttfs" else {"leak_shift": 2, "time_steps": 6}))
    cfg = build_for(pkg, 2, multistep=True, max_t=16, max_tau=4)   # every register writable
    img = image.bake(cfg, pkg)
    out, writes = decode_run(cfg, image.config_beats(cfg, pkg), seed=seed)
    assert out["covered"], "busy must cover a beat's cycle and the two after it"
    assert out["regs"] == {f: img["globals"].get(f, 0) for f in out["regs"]}, (out["regs"], img["globals"])
    assert out["lut"] == img["lut"] and out["thr"] == img["thr"]
    for mem, key in (("table", "table"), ("weight", "weights"), ("bias", "bias")):
        assert [a for a, _ in writes[mem]] == list(range(len(img[key]))), mem
        assert [d for _, d in writes[mem]] == img[key], mem


def test_config_decoder_baked_image_is_the_reset_state():
    rng = np.random.default_rng(63)
    pkg = randnet.random_package(rng, "multistep", "dense", weight_bits=5, frac_bits=10, leak_shift=1, time_steps=5)
    cfg = build_for(pkg, 2)
    img = image.bake(cfg, pkg)
    out, writes = decode_run(cfg, [], image_init=img)
    assert out["regs"] == {f: img["globals"].get(f, 0) for f in out["regs"]}
    assert out["lut"] == img["lut"] and out["thr"] == img["thr"] and not any(writes.values())


# ---- PEArray ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lanes,graded,banked", [(1, False, False), (4, False, False), (2, True, False), (4, False, True)])
def test_pe_array_accumulates_every_op(lanes, graded, banked):
    """Random ops, many back to back on one potential word (the forwarding paths), with gaps, against a
    potential memory modelled as the processor's (read data a cycle after the address, not transparent;
    the write port registered, a cycle behind the accumulate stage): every word ends as the sum of its ops'
    SPEC contributions."""
    from logspike.hw.pe import PEArray
    from logspike.model import arith

    W, F, A, E = 5, 10, 24, 1
    tau, T = (1, 1) if graded else (2, 8)
    cfg = Config(lanes=lanes, weight_bits=W, frac_bits=F, acc_bits=A, max_t=T, max_tau=max(tau, 2), max_neurons=64)
    lut = [1 << F] if graded else arith.make_lut(F, tau)
    rng = np.random.default_rng(lanes * 10 + graded + 2 * banked)
    n_words, ops = 6, []
    for _ in range(120):
        paddr = int(rng.integers(0, n_words)) if rng.random() < 0.5 or not ops else ops[-1][0]   # runs on one word
        t = int(rng.integers(0, 256)) if graded else int(rng.integers(0, T + 1))                 # T: silent
        w = [(int(rng.integers(0, 2)), int(rng.integers(0, arith.max_mag(W) + 1))) for _ in range(lanes)]
        ops.append((paddr, t, w))
    want = {a: [0] * lanes for a in range(n_words)}
    for paddr, t, w in ops:
        for l, (s, mag) in enumerate(w):
            want[paddr][l] += (arith.graded_contrib(t, s, mag, E, F) if graded
                               else arith.ttfs_contrib(t, s, mag, E, lut, tau, T))
    lo, hi = arith.signed_range(A)
    assert all(lo <= v <= hi for word in want.values() for v in word)
    dut = PEArray(cfg, banked)
    delay = 3 if banked else 1   # cycles from an op's issue to its weight word at the array's input
    mem = {a: [0] * lanes for a in range(n_words)}

    async def bench(ctx):
        ctx.set(dut.exp_offset, E)
        ctx.set(dut.taulog, tau.bit_length() - 1)
        ctx.set(dut.T, T)
        ctx.set(dut.graded, int(graded))
        ctx.set(dut.lut.as_value(), lanes_word(lut + [0] * (cfg.max_tau - len(lut)), F + 1))
        issued, i, read_data, write = [], 0, [0] * lanes, None
        for cycle in range(6 * len(ops) + 40):
            go = i < len(ops) and rng.random() < 0.8
            ctx.set(dut.op, int(go))
            ctx.set(dut.paddr, ops[i][0] if go else 0)
            ctx.set(dut.t, ops[i][1] if go else 0)
            issued.append(ops[i] if go else None)
            i += go
            src = issued[-1 - delay] if len(issued) > delay else None
            ctx.set(dut.weight.as_value(), lanes_word([(s << (W - 1)) | mag for s, mag in src[2]], W) if src else 0)
            ctx.set(dut.pmem_data.as_value(), lanes_word(read_data, A))
            read_data = list(mem[ctx.get(dut.pmem_raddr) % n_words])   # this cycle's read, seen next cycle
            if write is not None:                                     # the registered write port
                mem[write] = [ctx.get(dut.wr_data)[l] for l in range(lanes)]
            write = ctx.get(dut.wr_addr) if ctx.get(dut.wr_valid) else None
            if i == len(ops) and not ctx.get(dut.busy) and write is None:
                break
            await ctx.tick()
        assert i == len(ops) and not ctx.get(dut.busy)

    run(dut, bench)
    assert mem == want


# ---- FirePass and PoolMin --------------------------------------------------------------------------

FIRE_CASES = [  # (mode, lanes, output layer, first layer, step 1, reset value or None: subtract 2^F)
    ("ttfs", 2, False, False, True, None), ("ttfs", 16, False, False, True, None), ("ttfs", 4, True, False, True, None),
    ("multistep", 4, False, False, False, None), ("multistep", 2, False, True, True, None),
    ("multistep", 2, False, True, False, None), ("multistep", 4, True, False, False, None),
    ("multistep", 4, False, False, False, -300), ("multistep", 16, False, True, False, 0),
    ("multistep", 2, False, False, False, (1 << 10) - 1),
]


@pytest.mark.parametrize("mode,lanes,is_out,first,step1,v_reset", FIRE_CASES)
def test_fire_pass_computes_every_word(mode, lanes, is_out, first, step1, v_reset):
    """One layer's fire pass against SPEC 3 / 4 per lane, with the memories modelled as the processor reads
    them (bias, V, I a cycle after the address, potential and count words from output registers two
    cycles after) and issues paced as the controller paces them (a split bank: every other cycle)."""
    from logspike.hw.passes import FirePass
    from logspike.model import arith

    rng = np.random.default_rng(FIRE_CASES.index((mode, lanes, is_out, first, step1, v_reset)) + 70)
    F, A = 10, 24
    cfg = Config(lanes=lanes, weight_bits=5, frac_bits=F, acc_bits=A, max_t=8, max_tau=2, thr_bits=F + 2,
                 max_steps=12, max_state_words=64, max_count_words=64, multistep=True, fire_split=2 if lanes >= 16 else 1)
    P, T, gout, words = cfg.lanes, 8, 3, 7
    thresholds = arith.make_thresholds(F, T, 2) if mode == "ttfs" else []
    thr = image.threshold_table(cfg, thresholds)
    leak = 2 if mode == "multistep" else 0
    bbase, n_out = 5, words * gout
    e = dict(kind=0, last=int(is_out), gout=gout, bbase=bbase, out_words=n_out, last_mask=(1 << P) - 1 >> 1,
             leak=leak, reset_to_value=int(v_reset is not None), v_reset=v_reset or 0)
    pot = rng.integers(-(1 << (F + 1)), 1 << (F + 1), size=(n_out, P))
    bias = rng.integers(-(1 << F), 1 << F, size=(bbase + gout, P))
    vmem = rng.integers(-(1 << F), 1 << F, size=(n_out, P))
    imem = rng.integers(-(1 << F), 1 << (F + 1), size=(n_out, P))
    kmem = rng.integers(0, 6, size=(n_out, P))
    dut = FirePass(cfg)
    got = {"word": [], "exit": [], "logit": [], "state": [], "imem": []}

    async def bench(ctx):
        ctx.set(dut.ent.as_value(), packed(cfg, e))
        ctx.set(dut.mode_ms, int(mode == "multistep"))
        ctx.set(dut.first, int(first))
        ctx.set(dut.step1, int(step1))
        ctx.set(dut.silent, T if mode == "ttfs" else 1)
        ctx.set(dut.thr.as_value(), lanes_word(thr, cfg.thr_width))
        ctx.set(dut.firing, 1)
        await ctx.tick().repeat(2)   # the per-layer registers load from the entry
        ctx.set(dut.layer_start, 1)
        ctx.set(dut.addr_zero, 1)
        await ctx.tick()
        ctx.set(dut.layer_start, 0)
        ctx.set(dut.addr_zero, 0)
        hist, gap = [], 0          # (addr, bias addr) per cycle
        for _ in range(60 * n_out):
            issue = ctx.get(dut.more) and gap == 0 and rng.random() < 0.8
            ctx.set(dut.issue, int(issue))
            ctx.set(dut.addr_inc, int(issue))
            ctx.set(dut.bias_advance, int(issue))
            gap = cfg.fire_split - 1 if issue else max(0, gap - 1)
            a1 = hist[-1] if hist else (0, 0)   # read a cycle ago: raw RAM data now
            a2 = hist[-2] if len(hist) > 1 else (0, 0)   # two cycles ago: output registers now
            ctx.set(dut.bias.as_value(), lanes_word(bias[a1[1]], A))
            ctx.set(dut.vmem_data.as_value(), lanes_word(vmem[a1[0] % n_out], A))
            ctx.set(dut.imem_data.as_value(), lanes_word(imem[a1[0] % n_out], A))
            ctx.set(dut.pmem_q.as_value(), lanes_word(pot[a2[0] % n_out], A))
            ctx.set(dut.count_q.as_value(), lanes_word(kmem[a2[0] % n_out], cfg.count_bits))
            hist.append((ctx.get(dut.addr), ctx.get(dut.bias_addr)))
            if ctx.get(dut.word_valid):
                got["word"].append(([ctx.get(dut.word)[l] for l in range(P)], ctx.get(dut.word_ns)))
            if ctx.get(dut.exit_valid):
                got["exit"].append((ctx.get(dut.exit_addr), [ctx.get(dut.exit_v)[l] for l in range(P)], ctx.get(dut.exit_mask)))
            if ctx.get(dut.logit_beat):
                got["logit"].append((ctx.get(dut.f5_addr), [ctx.get(dut.logits)[l] for l in range(P)]))
            if ctx.get(dut.f5_valid) and mode == "multistep":
                got["state"].append((ctx.get(dut.f5_addr), [ctx.get(dut.state_v)[l] for l in range(P)],
                                     [ctx.get(dut.state_count)[l] for l in range(P)]))
            if ctx.get(dut.imem_we):
                got["imem"].append((ctx.get(dut.imem_waddr), [ctx.get(dut.imem_wdata)[l] for l in range(P)]))
            if not ctx.get(dut.more) and not ctx.get(dut.busy) and not issue:
                break
            await ctx.tick()
        assert not ctx.get(dut.more) and not ctx.get(dut.busy)

    run(dut, bench)
    vsum = pot + bias[bbase + np.arange(n_out) % gout]
    ms = mode == "multistep"
    if ms:
        vold = np.zeros_like(vmem) if step1 else vmem
        vleak = vold if is_out else vold - (vold >> leak)
        vnew = vleak + (imem if first and not step1 else vsum)
        spk = (vnew >= (1 << F)) & (not is_out)
        fired = vnew - (1 << F) if v_reset is None else np.full_like(vnew, v_reset)
        assert is_out or (spk.any() and (~spk).any())   # both branches of the reset are exercised
        want_state = [(a, list(np.where(spk[a], fired[a], vnew[a])), list((0 if step1 else kmem[a]) + spk[a]))
                      for a in range(n_out)]
        assert got["state"] == want_state
        assert got["imem"] == ([(a, list(vsum[a])) for a in range(n_out)] if first and step1 else [])
        codes = np.where(spk, 0, 1)
    else:
        codes = arith.fire_code(torch.from_numpy(vsum), thresholds).numpy()
        assert not got["state"] and not got["imem"]
    if is_out:
        out_v = vnew if ms else vsum
        full = (1 << P) - 1
        assert got["exit"] == [(a, list(out_v[a]), full if a != n_out - 1 else e["last_mask"]) for a in range(n_out)]
        assert got["logit"] == ([] if ms else [(a, list(vsum[a])) for a in range(n_out)])
        assert not got["word"]
    else:
        silent = 1 if ms else T
        assert got["word"] == [(list(codes[a]), sum(1 << l for l in range(P) if codes[a][l] != silent)) for a in range(n_out)]
        assert not got["exit"] and not got["logit"]


@pytest.mark.parametrize("mode,lanes,step1", [("ttfs", 2, True), ("multistep", 4, False), ("multistep", 1, True)])
def test_pool_min_takes_each_windows_minimum(mode, lanes, step1):
    from logspike.hw.passes import PoolMin

    rng = np.random.default_rng(80 + lanes)
    cfg = Config(lanes=lanes, max_t=8, max_steps=12, max_count_words=64, multistep=True)
    P, k = cfg.lanes, 4
    T = 8 if mode == "ttfs" else 1
    windows = [rng.integers(0, T + 1, size=(k, P)) for _ in range(12)]
    for wdw in windows[:3]:
        wdw[:] = T                                        # silent windows
    kmem = rng.integers(0, 5, size=(40, P))
    cbase = 3
    dut = PoolMin(cfg)
    got = []

    async def bench(ctx):
        ctx.set(dut.silent, T)
        ctx.set(dut.step1, int(step1))
        reads = [(w, r) for w in range(len(windows)) for r in range(k)]
        i, prev_read, hist_addr, done = 0, None, [], 0
        for _ in range(10 * len(reads) + 20):
            go = i < len(reads) and rng.random() < 0.7
            w, r = reads[i] if go else (0, 0)
            ctx.set(dut.walk_valid, int(go))
            ctx.set(dut.walk_first, int(go and r == 0))
            ctx.set(dut.walk_last, int(go and r == k - 1))
            ctx.set(dut.codes.as_value(), lanes_word(windows[prev_read[0]][prev_read[1]], cfg.sym_bits) if prev_read else 0)
            prev_read = (w, r) if go else None
            ctx.set(dut.count_addr_in, cbase + done)
            ctx.set(dut.count_q.as_value(), lanes_word(kmem[hist_addr[-2]], cfg.count_bits) if len(hist_addr) > 1 else 0)
            hist_addr.append(cbase + done)
            done += ctx.get(dut.window_done)
            i += go
            if ctx.get(dut.word_valid):
                got.append(([ctx.get(dut.word)[l] for l in range(P)], ctx.get(dut.word_ns), ctx.get(dut.count_addr),
                            [ctx.get(dut.count)[l] for l in range(P)]))
            await ctx.tick()
        assert not ctx.get(dut.busy)

    run(dut, bench)
    want = []
    for n, wdw in enumerate(windows):
        mn = wdw.min(0)
        want.append((list(mn), sum(1 << l for l in range(P) if mn[l] != T), cbase + n,
                     list((0 if step1 else kmem[cbase + n]) + (mn == 0))))
    assert got == want


# ---- Controller ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,exit_step", [("ttfs", 1), ("multistep", 1), ("multistep", 3)])
def test_controller_runs_every_phase_in_order(mode, exit_step):
    """The controller against modelled blocks: a layer table of a weighted layer, a pool, and the output
    layer; random busy times, FIFO credit and input gaps. Every layer is scattered (the graded first
    layer only at step 1), drained and fired word by word, or pooled; multistep steps until the exit
    decision and then reads out O and every counted layer's spike counts; then END, with the cycle count."""
    from logspike.hw.controller import Controller

    cfg = Config(lanes=2, max_layers=4, max_steps=8, multistep=True, max_state_words=64, max_count_words=64)
    ms = mode == "multistep"
    table = [dict(kind=0, out_words=5), dict(kind=1, out_words=3), dict(kind=0, out_words=4, last=1)]
    in_words = 6
    rng = np.random.default_rng(90 + exit_step + 10 * ms)
    dut = Controller(cfg)
    log = []

    async def bench(ctx):
        ctx.set(dut.mode_ms, int(ms))
        ctx.set(dut.in_words, in_words)
        busy = {"scatter": 0, "pe": 0, "fire": 0, "pool": 0}
        step, t_prev, fa, more, issues, f1, f2 = 1, 0, 0, 0, [], 0, 0
        inputs, cycle0, cycles = 0, None, 0
        for cycle in range(3000):
            ctx.set(dut.table_data.as_value(), packed(cfg, table[t_prev]) if t_prev < len(table) else 0)
            t_prev = ctx.get(dut.table_addr)
            ctx.set(dut.credit_next, int(rng.random() < 0.9))
            ctx.set(dut.inp_valid, int(rng.random() < 0.6))
            ctx.set(dut.step1, int(step == 1))
            ctx.set(dut.exit_now, int(step >= exit_step))
            for k, port in (("scatter", dut.scatter_busy), ("pe", dut.pe_busy), ("fire", dut.fire_busy), ("pool", dut.pool_busy)):
                ctx.set(port, int(busy[k] > 0))
            ctx.set(dut.fire_more, more)
            ctx.set(dut.f1_valid, f1)
            ctx.set(dut.f2_valid, f2)
            ctx.set(dut.window_done, int(busy["pool"] == 1))
            if ctx.get(dut.exit_start):
                cycle0, step = cycle, 1
            if ctx.get(dut.exit_advance):
                step += 1
            if ctx.get(dut.inputting) and ctx.get(dut.inp_valid):
                inputs += 1
            cur = ctx.get(dut.cur)
            if ctx.get(dut.fire_addr_zero):   # a new pass: the last one's issues are complete
                if issues:
                    log.append(("fire" if issues[0] else "emit", len(issues)))
                issues = []
            if ctx.get(dut.scatter_start):
                log.append(("scatter", cur["out_words"]))
                busy["scatter"], busy["pe"] = int(rng.integers(1, 9)), int(rng.integers(9, 14))
            if ctx.get(dut.pool_start):
                log.append(("pool", cur["out_words"]))
                busy["pool"] = int(rng.integers(2, 12))
            if ctx.get(dut.fire_issue):
                assert busy["pe"] == 0 and busy["scatter"] == 0, "a fire or emit issue while the scatter or PE is busy"
                issues.append(ctx.get(dut.firing))
                busy["fire"] = 6
            f1, f2 = int(ctx.get(dut.fire_issue)), f1
            if ctx.get(dut.fire_addr_zero):   # the fire pass's address and `more`, as FirePass registers them
                fa, more = 0, int(cur["out_words"] != 0)
            elif ctx.get(dut.fire_addr_inc):
                fa += 1
                more = int(fa != cur["out_words"])
            for beat in ("emit_logit_beat", "emit_count_beat"):
                if ctx.get(getattr(dut, beat)):
                    log.append((beat, cur["out_words"]))
            if ctx.get(dut.end_beat):
                if issues:
                    log.append(("fire" if issues[0] else "emit", len(issues)))
                cycles = ctx.get(dut.cycles)
                log.append(("end", cycle - cycle0 == cycles))   # from the start cycle to the END beat's
                break
            for k in busy:
                busy[k] = max(0, busy[k] - 1)
            await ctx.tick()
        assert inputs == in_words

    run(dut, bench)
    want = []
    for s in range(1, (exit_step if ms else 1) + 1):
        want += [("scatter", 5)] if s == 1 or not ms else []   # multistep: the first layer's current is kept
        want += [("fire", 5), ("pool", 3), ("scatter", 4), ("fire", 4)]
    if ms:   # read-out: O (4 beats), then the counted layers' spike counts (5 and 3 beats)
        want += [("emit_logit_beat", 4)] * 4 + [("emit", 4)] + [("emit_count_beat", 5)] * 5 + [("emit", 5)] \
            + [("emit_count_beat", 3)] * 3 + [("emit", 3)]
    want += [("end", True)]
    assert log == want


# ---- RegisterSlice ---------------------------------------------------------------------------------

@pytest.mark.parametrize("p_valid,p_ready,seed", [(1.0, 1.0, 1), (0.7, 0.4, 2), (0.3, 0.9, 3)])
def test_register_slice_passes_every_beat_in_order(p_valid, p_ready, seed):
    """Random valid and ready: every beat once, in order; full rate when both are always high; the
    input's ready never follows the output's ready in the same cycle (it is a register)."""
    dut = RegisterSlice(data.StructLayout({"a": 13, "b": 7}))
    rng = np.random.default_rng(seed)
    sent = [(int(a), int(b)) for a, b in zip(rng.integers(0, 1 << 13, 200), rng.integers(0, 1 << 7, 200))]
    got, cycles = [], [0]

    async def bench(ctx):
        k = 0
        while len(got) < len(sent):
            assert cycles[0] < 20 * len(sent), "the slice stopped passing beats"
            v = k < len(sent) and rng.random() < p_valid
            ctx.set(dut.i.valid, int(v))
            if v:
                ctx.set(dut.i.payload, {"a": sent[k][0], "b": sent[k][1]})
            ready_before = ctx.get(dut.i.ready)
            r = int(rng.random() < p_ready)
            ctx.set(dut.o.ready, r)
            assert ctx.get(dut.i.ready) == ready_before   # no combinational path from o.ready to i.ready
            if ctx.get(dut.o.valid) and r:
                got.append((ctx.get(dut.o.payload.a), ctx.get(dut.o.payload.b)))
            if v and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
            cycles[0] += 1

    run(dut, bench)
    assert got == sent
    if p_valid == 1.0 and p_ready == 1.0:
        assert cycles[0] == len(sent) + 1   # a beat a cycle, one cycle of latency


# ---- RingFifo --------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth,p_write,p_ready,seed", [(16, 1.0, 1.0, 1), (16, 0.8, 0.3, 2), (4, 0.5, 0.6, 3),
                                                        (2, 0.9, 0.9, 4)])
def test_ring_fifo_keeps_every_beat_in_order(depth, p_write, p_ready, seed):
    """A writer that writes only while level < depth, random ready: every word once, in order; `level` the
    words written and not yet read; r.valid a register (unchanged by this cycle's write and ready); full rate
    with a word a cycle, each readable the cycle after its write."""
    dut = RingFifo(11, depth)
    rng = np.random.default_rng(seed)
    sent = [int(x) for x in rng.integers(0, 1 << 11, 300)]
    got, cycles = [], [0]

    async def bench(ctx):
        k = 0
        while len(got) < len(sent):
            assert cycles[0] < 20 * len(sent), "the FIFO stopped passing words"
            level = ctx.get(dut.level)
            assert level == k - len(got) and 0 <= level <= depth
            valid_before = ctx.get(dut.r.valid)
            assert valid_before == (level > 0)
            w = k < len(sent) and level < depth and rng.random() < p_write
            ctx.set(dut.w_en, int(w))
            ctx.set(dut.w_data, sent[k] if w else int(rng.integers(0, 1 << 11)))
            r = int(rng.random() < p_ready)
            ctx.set(dut.r.ready, r)
            assert ctx.get(dut.r.valid) == valid_before   # no combinational path into r.valid
            if valid_before and r:
                got.append(ctx.get(dut.r.payload))
            k += w
            await ctx.tick()
            cycles[0] += 1

    run(dut, bench)
    assert got == sent
    if p_write == 1.0 and p_ready == 1.0:
        assert cycles[0] == len(sent) + 1   # a word a cycle, one cycle from write to read


def test_ring_fifo_depth_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="depth = 12: must be a power of two"):
        RingFifo(8, 12)
