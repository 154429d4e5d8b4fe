"""Firing unit against the SPEC rule: first t with V >= thresholds[t], else T."""
import numpy as np
import pytest

from logspike.hw import cosim
from logspike.hw.config import Config
from logspike.hw.firing import FiringUnit
from logspike.hw.image import threshold_table
from logspike.model import arith


@pytest.mark.parametrize("thr_bits", [0, 10])
def test_firing_random(tmp_path, thr_bits):
    """Full-width compares (thr_bits 0: acc_bits - 1) and narrow ones (10 bits, the thresholds' own width):
    potentials far outside the narrow range (down to -2^13, up to 2^13 - 1) are clamped, not wrapped."""
    cfg = Config(lanes=4, weight_bits=4, frac_bits=8, acc_bits=14, max_t=12, max_tau=4, thr_bits=thr_bits)
    rng = np.random.default_rng(1)
    T = 9
    thr = sorted(rng.integers(1, 1 << 10, size=T).tolist(), reverse=True)
    vals = list(thr) + [t - 1 for t in thr] + [t + 1 for t in thr] + [0, -1, -(1 << 13), (1 << 13) - 1]
    vals += [1 << 10, (1 << 10) - 1, 1 << 11, (1 << 10) + thr[0]]   # past the narrow range: wraps would fire late
    vals += rng.integers(-(1 << 13), 1 << 13, size=200).tolist()
    vals += [0] * (-len(vals) % 4)
    words = [vals[i:i + 4] for i in range(0, len(vals), 4)]
    bdir = cosim.build(cosim.verilog_of(FiringUnit(cfg), "firing"), "firing")
    ans = cosim.run(bdir, "firing", "tb_firing", tmp_path,
                    {"A": cfg.acc_bits, "P": 4, "CB": cfg.code_bits, "TW": cfg.thr_width,
                     "thr": threshold_table(cfg, thr), "words": words})
    got = [c for w in ans["out"] for c in w]
    want = [next((t for t in range(T) if v >= thr[t]), T) for v in vals]
    assert got == want


def test_thermo_count_every_code():
    """The firing count is decoded from the compare bits as a thermometer code (ones first): every code
    of every table length up to 17 gives its number of ones."""
    from amaranth.hdl import Const, Module, Signal
    from amaranth.sim import Simulator
    from logspike.hw.firing import thermo_count
    m, cases = Module(), []
    for n in range(1, 18):
        for c in range(n + 1):
            o = Signal(n.bit_length(), name=f"o{n}_{c}")
            m.d.comb += o.eq(thermo_count([Const((1 << c) - 1, n)[i] for i in range(n)]))
            cases.append((o, c))
    got = []

    async def tb(ctx):
        got.extend((ctx.get(o), c) for o, c in cases)
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert len(got) == 170 and all(g == c for g, c in got), [x for x in got if x[0] != x[1]]
