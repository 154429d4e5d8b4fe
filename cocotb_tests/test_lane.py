"""PE lane against model.arith.ttfs_contrib, exhaustive over codes, signs, magnitudes and offsets."""
import itertools

import pytest

from hw import cosim
from hw.config import Config
from hw.shiftadd import ShiftAddLane
from model import arith


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
