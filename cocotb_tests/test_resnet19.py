"""ATSNN's ResNet19 at 32x32x3, full width, on a 16-lane external-weight build, bit-exact in both modes
(slow: `-m slow`).

The topology is model.nets.resnet19: a 128-channel stem, stages of 3, 3 and 2 basic blocks at 128, 256 and
512 channels with identity shortcuts and strided 1x1 projections, a hidden and an output dense layer (19
weighted layers, 8 shortcuts, about 14 M weights: they live in the external memory, hw/fetch.py). Random
weights (randnet) instead of trained ones, and the dense layer takes the whole last 8x8 map where a trained
network's global average pool would be folded into it (same shape). The multistep package runs 3 steps.
"""
import numpy as np
import pytest

from common import check
from logspike.hw import image, sim
from logspike.hw.config import build_for_all
from logspike.model import golden, nets, randnet


def resnet19_package(mode, seed, width=1.0):
    layers = nets.complete_layers((3, 32, 32), nets.resnet19(width=width))
    for l in layers:
        l.pop("gap", None)
    rng = np.random.default_rng(seed)
    pkg = randnet.random_residual_package(rng, mode, layers=layers, weight_bits=5, frac_bits=12,
                                          time_steps=3 if mode == "multistep" else None)
    return pkg, randnet.random_inputs(rng, pkg, 2)


@pytest.mark.slow
def test_resnet19_bit_exact_on_16_lanes_with_external_weights(tmp_path):
    cases = [resnet19_package("ttfs", 0), resnet19_package("multistep", 0)]
    for pkg, x in cases:
        assert sum("shortcut" in l for l in pkg.layers) == 8 and len(pkg.weighted_indices()) == 19
        assert sum(int(np.prod(pkg.weights(i)[1].shape)) for i in pkg.weighted_indices()) > 10_000_000
        # every layer still carries spikes (random weights that went silent would test little)
        res = golden.run(pkg, x)
        silent = pkg.time_steps if pkg.mode == "ttfs" else 0
        for k, v in res.items():
            if k.startswith("spikes_L"):
                assert (v != silent).mean() > 0.05, k
    cfg = build_for_all([p for p, _ in cases], 16, weights="external")
    assert cfg.fire_split == 2 and cfg.multistep
    # both images in one memory, each package loaded over the config stream with its base address
    memory, items = b"", []
    for pkg, x in cases:
        memory += bytes(-len(memory) % 4096)
        items += [{"cfg": image.config_beats(cfg, pkg, xbase=len(memory))}]
        items += [{"inp": image.input_beats(cfg, pkg, v)} for v in x]
        memory += image.external_image(cfg, pkg)[0]
    raw, st = sim.run_fast(cfg, items, tmp_path, memory=memory, mem=sim.ExternalMemory(latency=50))
    check(cases[0][0], cases[0][1], raw[:2], cfg=cfg)
    check(cases[1][0], cases[1][1], raw[2:], cfg=cfg)
    assert st["mem"]["violations"] == 0
