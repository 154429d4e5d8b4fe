"""A build whose firing comparator bank is time-shared over two cycles (fire_split = 2, the
default from 16 lanes on): ttfs and multistep packages loaded back to back into one build,
with random stream gaps and ready, bit-exact against model.golden on every key."""

import numpy as np

from common import SPLIT, make_ms, make_pkg, run_back_to_back
from logspike.model import randnet


def test_split_bank_both_modes(tmp_path):
    t1, r1 = make_pkg(700, "conv", 2)
    t2, r2 = make_pkg(701, "dense", 4)
    cases = [(t1, randnet.random_inputs(r1, t1, 3)), make_ms(702, "conv", leak_shift=2),
             (t2, randnet.random_inputs(r2, t2, 3)), make_ms(703, "dense", leak_shift=0)]
    run_back_to_back(SPLIT, cases, tmp_path, seed=11, gap=0.3, ready_p=0.6)
    assert np.any([p.mode == "multistep" for p, _ in cases])
