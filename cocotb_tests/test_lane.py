"""PE lane against model.arith.ttfs_contrib, exhaustive over codes, signs, magnitudes and offsets."""
import itertools

import pytest

from logspike.hw import cosim
from logspike.hw.config import Config
from logspike.hw.shiftadd import ShiftAddLane
from logspike.model import arith


@pytest.mark.parametrize("tau", [1, 2, 4])
def test_lane_exhaustive(tau, tmp_path):
    cfg = Config(lanes=1, weight_bits=4, frac_bits=8, acc_bits=12, max_t=7, max_tau=4)
    T = 6
    lut = arith.make_lut(cfg.frac_bits, tau)
    ops = [(t, s, g, E) for t, s, g, E in itertools.product(range(T + 2), (0, 1), range(8), range(-6, 7))]
    bdir = cosim.build(cosim.verilog_of(ShiftAddLane(cfg), "lane"), "lane")
    ans = cosim.run(bdir, "lane", "tb_lane", tmp_path,
                    {"lut": lut + [0] * (cfg.max_tau - tau), "T": T, "taulog": tau.bit_length() - 1, "ops": ops})
    lo, hi = arith.signed_range(cfg.acc_bits)
    bad = []
    for (t, s, g, E), got in zip(ops, ans["out"]):
        want = arith.ttfs_contrib(t, s, g, E, lut, tau, T)
        want = (want - lo) % (1 << cfg.acc_bits) + lo  # the lane works modulo 2^A
        if got != want:
            bad.append(((t, s, g, E), got, want))
    assert not bad, bad[:10]


@pytest.mark.parametrize("what", ["spike", "graded"])
def test_lane_multistep(what, tmp_path):
    """multistep operands on the same lane: a binary spike is the ttfs code 0 with T = 1, tau = 1,
    lut = [2^F]; a graded byte x shifts x << F by 8 + e - E (model.arith.spike_contrib / graded_contrib)."""
    cfg = Config(lanes=1, weight_bits=5, frac_bits=10, acc_bits=20, max_t=7, max_tau=4)
    F, A = cfg.frac_bits, cfg.acc_bits
    xs = [0, 1] if what == "spike" else [0, 1, 2, 3, 5, 17, 100, 127, 128, 200, 254, 255]
    ops = [(x, s, g, E) for x, s, g, E in itertools.product(xs, (0, 1), range(16), range(-12, 13))]
    bdir = cosim.build(cosim.verilog_of(ShiftAddLane(cfg), "lane"), "lane")
    ans = cosim.run(bdir, "lane", "tb_lane", tmp_path,
                    {"lut": [1 << F, 0, 0, 0], "T": 1, "taulog": 0, "ops": ops, "graded": int(what == "graded")})
    lo, hi = arith.signed_range(A)
    bad = []
    for (x, s, g, E), got in zip(ops, ans["out"]):
        if what == "spike":
            want = arith.spike_contrib(s, g, E, F) if x == 0 else 0  # code 0 = spike, 1 = silent
        else:
            want = arith.graded_contrib(x, s, g, E, F)
        want = (want - lo) % (1 << A) + lo
        if got != want:
            bad.append(((x, s, g, E), got, want))
    assert not bad, bad[:10]
