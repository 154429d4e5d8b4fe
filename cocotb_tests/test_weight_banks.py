"""The banked weight memory (hw/banks.py): the bank rule, the banks alone in Amaranth's simulator (reads
three cycles after their address, writes past the depth dropped), and a processor whose weights span many
banks, bit-exact against model.golden on random ttfs and multistep packages, back to back, baked, and
with stream gaps and backpressure."""
import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.lib import data
from amaranth.sim import Simulator

from common import check, run_back_to_back
from logspike.hw import image, sim
from logspike.hw.banks import WeightBanks
from logspike.hw.config import bank_depth_for
from logspike.hw.config import Config, FitError, fits, needs
from logspike.hw.top import Processor
from logspike.model import golden, randnet
from logspike.model.package import PackageError

# 13 banks of 16 words, the last one 8 words: every package below spans several banks
BANKED = Config(lanes=4, weight_bits=5, frac_bits=10, acc_bits=32, max_t=16, max_tau=4, max_layers=8,
                max_neurons=256, max_weight_words=200, max_bias_words=32, max_inputs=256, max_steps=12,
                max_state_words=128, max_count_words=128, weight_bank_words=16)


def test_bank_rule():
    """Bank only where Yosys would stack DP16KDs behind a read mux, at the cheapest shape's depth."""
    assert bank_depth_for(425, 80) == 425     # digits CNN, 16 lanes: one 512 x 36 row of 3 RAMs
    assert bank_depth_for(1572, 20) == 1572   # 4 lanes: one 2048 x 9 row of 3
    assert bank_depth_for(6032, 5) == 6032    # 1 lane: one 8192 x 2 row of 3
    assert bank_depth_for(6400, 80) == 1024   # 784-128-10, 16 lanes: 7 rows of 5 (35) against 40 one deep
    assert bank_depth_for(25472, 20) == 4096  # 784-128-10, 4 lanes: 7 rows of 5 (35) against 40 (16384 x 1)
    assert bank_depth_for(4288, 20) == 2048   # the digits ATSNN, 4 lanes: 3 rows of 3 (9) against 10 (8192 x 2)
    assert bank_depth_for(40000, 1) == 16384  # deeper than any one RAM
    assert Config(max_weight_words=6400, lanes=16).weight_bank_depth == 1024
    assert Config(max_weight_words=200, weight_bank_words=16).weight_bank_depth == 16
    assert Config(max_weight_words=200, weight_bank_words=256).weight_bank_depth == 200   # one memory
    for bad in (3, -4, 24):
        with pytest.raises(ValueError, match=f"weight_bank_words = {bad}: must be 0"):
            Config(weight_bank_words=bad)
    with pytest.raises(ValueError, match="bank_depth = 32: must be a power of two below depth = 32"):
        WeightBanks(data.ArrayLayout(4, 2), 32, 32, 5, 8, [], {})


def test_banks_read_and_write():
    """Random writes (some past the depth) and reads against a dict model: rd_q is the word at rd_addr three
    cycles earlier, as written by then (a write lands a cycle after it is offered); a write past the depth
    changes nothing (the last bank is short)."""
    depth, B = 44, 8   # banks of 8, the sixth holds 4
    rng = np.random.default_rng(5)
    init = [int(v) for v in rng.integers(0, 256, size=depth)]
    dut = WeightBanks(data.ArrayLayout(4, 2), depth, B, 6, 8, init, {})
    assert dut.nbanks == 6
    mem = dict(enumerate(init))
    ops = [(int(rng.integers(0, 64)), int(rng.integers(0, depth)), bool(rng.random() < 0.5), int(rng.integers(0, 256)))
           for _ in range(600)]
    seen = []

    async def bench(ctx):
        pending, landing = [], None
        for waddr, raddr, wen, wdata in ops:
            ctx.set(dut.wr_addr, waddr)
            ctx.set(dut.wr_data, wdata)
            ctx.set(dut.wr_en, wen)
            ctx.set(dut.rd_addr, raddr)
            await ctx.tick()
            pending.append(mem[raddr])   # the RAM reads before this edge's write lands (no_rw_check aside)
            if landing:                  # the write offered a cycle ago lands at this edge
                mem[landing[0]] = landing[1]
            landing = (waddr, wdata) if wen and waddr < depth else None
            if len(pending) >= WeightBanks.LATENCY:
                seen.append((ctx.get(dut.rd_q.as_value()), pending[-WeightBanks.LATENCY]))
    s = Simulator(dut)
    s.add_clock(1e-6)
    s.add_testbench(bench)
    s.run()
    assert WeightBanks.LATENCY == 3 and len(seen) == len(ops) - 2
    bad = [(i, got, want) for i, (got, want) in enumerate(seen) if got != want]
    assert not bad, bad[:5]


def _pkgs(specs):
    out = []
    for seed, mode, kind in specs:
        rng = np.random.default_rng(seed)
        try:
            kw = dict(time_steps=int(rng.integers(3, 8)), min_steps=1) if mode == "multistep" else {}
            pkg = randnet.random_package(rng, mode, kind, weight_bits=BANKED.weight_bits, frac_bits=BANKED.frac_bits, **kw)
            fits(BANKED, pkg)
        except (PackageError, FitError):
            continue
        out.append((pkg, randnet.random_inputs(rng, pkg, 3, silent=float(rng.uniform(0.1, 0.5)))))
    return out


def _run(tmp_path, cases, seed=0, gap=0.0, ready_p=1.0):
    run_back_to_back(BANKED, cases, tmp_path, seed=seed, gap=gap, ready_p=ready_p)


def test_banked_build_elaborates_banks():
    top = Processor(BANKED)
    body = top.elaborate(None)
    wmem = body.submodules.wmem
    assert isinstance(wmem, WeightBanks) and wmem.nbanks == 13 and wmem.bank_depth == 16
    inner = wmem.elaborate(None)
    banks = [getattr(inner.submodules, f"bank{k}") for k in range(13)]
    assert [b.depth for b in banks] == [16] * 12 + [8]   # together the max_weight_words of the build
    assert {Shape.cast(b.shape).width for b in banks} == {BANKED.lanes * BANKED.weight_bits}
    # elaborate them as a build would, so Amaranth does not report them unused when they are collected
    for e in (top, body, inner):
        Fragment.get(e, None)


def test_banked_processor_back_to_back(tmp_path):
    """ttfs and multistep packages loaded one after another into one banked build; each uses words in
    several banks, the last (short) one included where it is big enough."""
    cases = _pkgs([(s, "ttfs", k) for s, k in ((13, "dense"), (15, "dense"), (15, "conv"), (12, "dense"))]
                  + [(s, "multistep", k) for s, k in ((70, "dense"), (71, "conv"))])
    assert len(cases) >= 5
    words = [needs(p, BANKED.lanes)["weight_words"] for p, _ in cases]
    assert max(words) > 192 and min(words) > 16, words   # the short last bank and more than one bank
    _run(tmp_path, cases)


def test_banked_processor_backpressure_and_baked(tmp_path):
    cases = _pkgs([(13, "ttfs", "dense"), (72, "multistep", "dense")])
    _run(tmp_path / "stream", cases, seed=3, gap=0.4, ready_p=0.5)
    pkg, x = cases[0]
    check(pkg, x, sim.run_steps(BANKED, [{"infer": [image.input_beats(BANKED, pkg, xi) for xi in x]}], tmp_path / "baked",
                                baked=pkg), cfg=BANKED)
