"""The papers' VGG-16 at 32x32x3 on a 16-lane external-weight build, bit-exact (slow: `-m slow`).

VGG-16 (model.nets.vgg: 13 3x3 convs, 5 max-pools, 512-512-10 dense) holds 15 M weights, 9.4 MB at 5 bits:
only the external weight memory holds them. Trained (conversion-aware, T 16, tau 2) on the MNIST digits the
project has, zero-padded to 32x32 and repeated over three channels (golden/make.py mnist5k32x3_vgg16, made
into build/golden on first use: about 20 minutes of training on 2 cores); its first four test images through
the RTL with the memory model at a latency of 100 cycles, 12 bytes a cycle and random AR and R stalls.
"""
import numpy as np
import pytest

from logspike.golden.make import cached
from logspike.hw import sim
from logspike.hw.config import build_for

IMAGES = 4


@pytest.mark.slow
def test_trained_vgg16_bit_exact_on_16_lanes_with_external_weights(tmp_path):
    pkg, x, y, want = cached("mnist5k32x3_vgg16")
    convs = [l for l in pkg.layers if l["type"] == "conv2d"]
    assert pkg.input_shape == [3, 32, 32] and len(convs) == 13 and len(pkg.weighted_indices()) == 15
    assert sum(int(np.prod(pkg.weights(i)[1].shape)) for i in pkg.weighted_indices()) > 14_000_000
    assert (want["pred"] == y).mean() > 0.9   # a trained network, not noise
    x, want = x[:IMAGES], {k: v[:IMAGES] for k, v in want.items()}
    cfg = build_for(pkg, 16, weights="external")
    res, cycles, st = sim.simulate_timed(cfg, pkg, x, tmp_path, mem=sim.ExternalMemory(
        latency=100, bytes_per_cycle=12, ar_stall=0.1, r_stall=0.1))
    for k in want:
        assert np.array_equal(res[k], want[k]), k
    m = st["mem"]
    assert m["violations"] == 0 and m["beats_requested"] == m["beats_sent"]
    assert all(c > 1_000_000 for c in cycles)
