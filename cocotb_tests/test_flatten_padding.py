"""Dense layers after a flatten of a [C, H, W] tensor with C < P (padding lanes in every word).

The host lays such a dense layer's weight rows out over the *unflattened* words
(H*W*ceil(C/P)*P rows, padding lanes included), so the build sizing (`needs`)
must count those rows too: an undersized weight memory wraps its addresses and
the potentials come out wrong. These tests run on tight builds (`build_for`),
not on the roomy shared CFG, so an undercount shows. A tight build's buffer
depth (cfg.words) is also rarely a power of two, which the banked code and
event buffers must handle.
"""
import numpy as np
import pytest

from logspike.hw import image, sim
from logspike.hw.config import build_for, build_for_all
from logspike.hw.config import needs
from logspike.model import arith, golden, randnet
from logspike.model.package import Package, required_acc_bits, validate

PADDED_SHAPES = ([1, 2, 2], [1, 1, 8], [1, 8, 1], [2, 3, 3], [3, 2, 3], [1, 4, 1])


def hand_pkg(shape, out, seed):
    """flatten -> dense(out) -> dense(2), all weights non-zero, zero biases."""
    rng = np.random.default_rng(seed)
    n, F = int(np.prod(shape)), 10
    layers = [{"type": "flatten"}, {"type": "dense", "in": n, "out": out, "exp_offset": 0},
              {"type": "dense", "in": out, "out": 2, "exp_offset": 0}]
    t = {}
    for i, (m_, n_) in ((1, (out, n)), (2, (2, out))):
        t[f"L{i}.sign"] = (rng.random((m_, n_)) < 0.3).astype(np.uint8)
        t[f"L{i}.mag"] = rng.integers(1, 16, (m_, n_)).astype(np.uint8)
        t[f"L{i}.bias"] = np.zeros(m_, dtype=np.int64)
    m = {"format": "logspike-net", "version": 1, "mode": "ttfs", "input_shape": list(shape), "weight_bits": 5,
         "frac_bits": F, "acc_bits": 40, "time_steps": 8, "tau": 1, "lut": arith.make_lut(F, 1),
         "thresholds": arith.make_thresholds(F, 8, 1), "layers": layers}
    p = Package(m, t)
    p.manifest["acc_bits"] = max(12, required_acc_bits(p))
    return validate(p)


def rand_pkg(seed, kind, shape):
    rng = np.random.default_rng(seed)
    return randnet.random_package(rng, "ttfs", kind, input_shape=shape, weight_bits=5, frac_bits=10), rng


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
def test_needs_counts_the_image(lanes):
    """Build sizing counts exactly the weight and bias words the host writes."""
    pkgs = [hand_pkg(s, o, 1) for s in PADDED_SHAPES for o in (1, 5, 9)]
    pkgs += [rand_pkg(100 + i, "dense", s)[0] for i, s in enumerate(PADDED_SHAPES + ([5, 1, 1], [9], [4, 2, 2]))]
    pkgs += [rand_pkg(200 + i, "conv", None)[0] for i in range(8)]
    for pkg in pkgs:
        cfg = build_for(pkg, lanes)
        _, wwords, bwords = image.layer_entries(cfg, pkg)
        n = needs(pkg, lanes)
        assert (n["weight_words"], n["bias_words"]) == (len(wwords), len(bwords)), pkg.input_shape
        image.bake(cfg, pkg)  # fits, and the image fits the build


def test_tight_build_padded_flatten(tmp_path):
    """Hand-made and random flatten -> dense packages with C < P on one build sized to them (no slack)."""
    cases = [(hand_pkg([1, 4, 1], 5, 3), np.array([[[[0], [8], [3], [2]]], [[[1], [2], [3], [4]]]])),
             (hand_pkg([1, 2, 2], 9, 4), None), (hand_pkg([2, 3, 3], 4, 5), None),
             (hand_pkg([1, 9, 8], 16, 6), None)]  # digits-MLP-like; the largest weight image of all
    for i, s in enumerate(PADDED_SHAPES[:5]):
        pkg, rng = rand_pkg(300 + i, "dense", s)
        cases.append((pkg, randnet.random_inputs(rng, pkg, 2)))
    for seed in (400, 401, 402):  # conv (+ pool) -> flatten -> dense, on the same tight build
        pkg, rng = rand_pkg(seed, "conv", None)
        cases.append((pkg, randnet.random_inputs(rng, pkg, 2)))
    rng = np.random.default_rng(9)
    cases = [(p, x if x is not None else randnet.random_inputs(rng, p, 2)) for p, x in cases]
    # one build, each field the largest any package needs: as tight as build_for for the biggest package
    cfg = build_for_all([p for p, _ in cases], 4)
    assert cfg.words & (cfg.words - 1), cfg.words  # buffer depth not a power of two
    assert cfg.max_weight_words == len(image.layer_entries(cfg, cases[3][0])[1])  # its image fills the weight memory
    assert any(l["type"] == "maxpool2d" for p, _ in cases for l in p.layers)
    steps = []
    for pkg, x in cases:
        steps += [{"cfg": image.config_beats(cfg, pkg)}, {"infer": [image.input_beats(cfg, pkg, xi) for xi in x]}]
    raw = sim.run_steps(cfg, steps, tmp_path)
    pos = 0
    for pkg, x in cases:
        res, _ = sim.collate(cfg, pkg, raw[pos:pos + len(x)])
        pos += len(x)
        want = golden.run(pkg, x)
        for k in want:
            assert np.array_equal(res[k], want[k]), f"{pkg.input_shape} {k}: rtl {res[k].tolist()} golden {want[k].tolist()}"
