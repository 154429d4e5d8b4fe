"""A ResNet19-shaped network at 32x32x3 on a 16-lane build, bit-exact in both modes (slow: `-m slow`).

The topology is ATSNN's ResNet19 (model.nets.resnet19: a stem, stages of 3, 3 and 2 basic blocks with
identity shortcuts and strided 1x1 projections, a hidden and an output dense layer) with every channel
count divided by 16 (8, 16, 32), so its weights fit the on-chip weight memory; random weights (randnet)
instead of trained ones, and the dense layer takes the whole last 8x8 map where a trained network's
global average pool would be folded into it (same shape).
"""
import numpy as np
import pytest

from common import run_back_to_back
from logspike.hw.config import build_for_all
from logspike.model import golden, nets, randnet

WIDTH = 1 / 16


def resnet19_package(mode, seed):
    layers = nets.complete_layers((3, 32, 32), nets.resnet19(width=WIDTH))
    for l in layers:
        l.pop("gap", None)
    rng = np.random.default_rng(seed)
    pkg = randnet.random_residual_package(rng, mode, layers=layers, weight_bits=5, frac_bits=12)
    return pkg, randnet.random_inputs(rng, pkg, 2)


@pytest.mark.slow
def test_resnet19_shape_bit_exact_on_16_lanes(tmp_path):
    cases = [resnet19_package("ttfs", 0), resnet19_package("multistep", 0)]
    for pkg, x in cases:
        assert sum("shortcut" in l for l in pkg.layers) == 8 and len(pkg.weighted_indices()) == 19
        # every layer still carries spikes (random weights that went silent would test little)
        res = golden.run(pkg, x)
        silent = pkg.time_steps if pkg.mode == "ttfs" else 0
        for k, v in res.items():
            if k.startswith("spikes_L"):
                assert (v != silent).mean() > 0.05, k
    cfg = build_for_all([p for p, _ in cases], 16)
    assert cfg.fire_split == 2 and cfg.multistep
    run_back_to_back(cfg, cases, tmp_path)
