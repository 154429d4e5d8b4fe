"""A build whose firing comparator bank is time-shared over two cycles (fire_split = 2, the
default from 16 lanes on): ttfs and multistep packages loaded back to back into one build,
with random stream gaps and ready, bit-exact against model.golden on every key."""

import numpy as np

from common import SPLIT, check, make_ms, make_pkg
from logspike.hw import image, sim
from logspike.model import randnet


def test_split_bank_both_modes(tmp_path):
    t1, r1 = make_pkg(700, "conv", 2)
    t2, r2 = make_pkg(701, "dense", 4)
    cases = [(t1, randnet.random_inputs(r1, t1, 3)), make_ms(702, "conv", leak_shift=2),
             (t2, randnet.random_inputs(r2, t2, 3)), make_ms(703, "dense", leak_shift=0)]
    steps = []
    for pkg, x in cases:
        steps += [{"cfg": image.config_beats(SPLIT, pkg), "gap": 0.3},
                  {"infer": [image.input_beats(SPLIT, pkg, xi) for xi in x], "gap": 0.3, "ready_p": 0.6}]
    raw = sim.run_steps(SPLIT, steps, tmp_path, seed=11)
    pos = 0
    for pkg, x in cases:
        check(pkg, x, raw[pos:pos + len(x)], cfg=SPLIT)
        pos += len(x)
    assert pos == len(raw) and np.any([p.mode == "multistep" for p, _ in cases])
