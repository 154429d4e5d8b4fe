"""Firing unit against the SPEC rule: first t with V >= thresholds[t], else T."""
import numpy as np

from hw import cosim
from hw.config import Config
from hw.firing import FiringUnit
from hw.image import threshold_table
from model import arith


def test_firing_random(tmp_path):
    cfg = Config(lanes=4, weight_bits=4, frac_bits=8, acc_bits=14, max_t=12, max_tau=4)
    rng = np.random.default_rng(1)
    T = 9
    thr = sorted(rng.integers(1, 1 << 10, size=T).tolist(), reverse=True)
    vals = list(thr) + [t - 1 for t in thr] + [t + 1 for t in thr] + [0, -1, -(1 << 13), (1 << 13) - 1]
    vals += rng.integers(-(1 << 13), 1 << 13, size=200).tolist()
    vals += [0] * (-len(vals) % 4)
    words = [vals[i:i + 4] for i in range(0, len(vals), 4)]
    bdir = cosim.build(cosim.verilog_of(FiringUnit(cfg), "firing"), "firing")
    ans = cosim.run(bdir, "firing", "tb_firing", tmp_path,
                    {"A": cfg.acc_bits, "P": 4, "CB": cfg.code_bits, "thr": threshold_table(cfg, thr), "words": words})
    got = [c for w in ans["out"] for c in w]
    want = [next((t for t in range(T) if v >= thr[t]), T) for v in vals]
    assert got == want
