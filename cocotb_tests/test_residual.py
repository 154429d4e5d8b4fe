"""Residual packages (SPEC version 2) on the processor, bit-exact against model.golden on every key: identity
and projection shortcuts, strides 1 and 2, a shortcut from the layer's own input and from the layer before
it, a max-pool as the source, both modes, 1, 4 and 8 lanes (8: the split firing bank), back to back with
non-residual packages on one build, under stream pauses and backpressure. The END beat's operation counts
include the shortcut's (one PE op per re-emitted event and output group, hw/controller.py)."""
import numpy as np
import pytest

from common import CFG, SPLIT, make_ms, make_pkg, residual, run_back_to_back
from logspike.hw.config import Config, FitError, fits
from logspike.model import golden, randnet
from logspike.synth import energy

# test_lane.py's 1-lane build (one build serves both modules)
ONE_LANE = Config(lanes=1, weight_bits=5, frac_bits=10, acc_bits=20, max_t=7, max_tau=4)


def strided_projection_layers(c=2, h=6, w=6):
    """A ResNet stage's first block: conv, strided conv, conv adding the block input through a 1x1
    projection of stride 2 from two layers back (residual_layers' projection is from the layer's own input)."""
    return [{"type": "conv2d", "in_shape": [c, h, w], "out_channels": 4, "kernel": 3, "stride": 1, "padding": 1},
            {"type": "conv2d", "in_shape": [4, h, w], "out_channels": 6, "kernel": 3, "stride": 2, "padding": 1},
            {"type": "conv2d", "in_shape": [6, (h + 1) // 2, (w + 1) // 2], "out_channels": 6, "kernel": 3, "stride": 1,
             "padding": 1, "shortcut": {"from": 0, "kind": "projection", "stride": 2}},
            {"type": "flatten"},
            {"type": "dense", "in": 6 * ((h + 1) // 2) * ((w + 1) // 2), "out": 5}]


def shortcut_kinds(pkg):
    """(kind, stride, source is a pool, layers back) of each shortcut."""
    out = []
    for i, l in enumerate(pkg.layers):
        sc = l.get("shortcut")
        if sc:
            out.append((sc["kind"], sc.get("stride", 1), pkg.layers[sc["from"]]["type"] == "maxpool2d", i - sc["from"]))
    return out


def check_counts(cfg, cases, counters):
    """The END beat's scatter ops and events against energy.op_counts on the golden run (shortcuts included)."""
    for (pkg, x), got in zip(cases, counters):
        res, spikes = energy.run_golden(pkg, x)
        t = energy.op_counts(pkg, cfg, x, res, spikes)
        sops = sum(r["scatter_ops"] for r in t.layers.values() if "scatter_ops" in r)
        events = sum(r["live_inputs"] for r in t.layers.values() if "live_inputs" in r)
        assert [c["sops"] for c in got] == [int(v) for v in sops]
        assert [c["events"] for c in got] == [int(v) for v in events]


def test_residual_packages_back_to_back(tmp_path):
    """ttfs and multistep residual packages between plain ones, on the shared 4-lane build."""
    cases = [residual(1, "ttfs", tau=2), make_pkg(60, "conv", 2)[0], residual(2, "multistep"), residual(3, "ttfs", tau=4),
             residual(4, "ttfs", strided_projection_layers(), tau=1), make_ms(61, "conv"),
             residual(5, "multistep", strided_projection_layers(3, 7, 5)), residual(6, "multistep"), residual(7, "ttfs", tau=1)]
    cases = [c if isinstance(c, tuple) else (c, randnet.random_inputs(np.random.default_rng(62), c, 2)) for c in cases]
    drawn = {k for pkg, _ in cases for k in shortcut_kinds(pkg)}
    # what the seeds cover: identity from the layer before, projections from the layer's own input (pool or
    # conv, strides 1 and 2) and from the layer before (stride 2)
    assert {("identity", 1, False, 2), ("projection", 1, False, 1), ("projection", 2, False, 1),
            ("projection", 2, False, 2)} <= drawn and any(k[2] for k in drawn), drawn
    assert {pkg.mode for pkg, _ in cases if "shortcut" in str(pkg.layers)} == {"ttfs", "multistep"}
    counters = run_back_to_back(CFG, cases, tmp_path)
    check_counts(CFG, cases, counters)


def test_residual_backpressure(tmp_path):
    """Random config / input pauses and result backpressure over residual inferences (the shortcut walk's
    steps wait on the result FIFO's credit like the pool walk's)."""
    cases = [residual(8, "ttfs", tau=2), residual(9, "multistep"), residual(10, "ttfs", strided_projection_layers(), tau=4)]
    run_back_to_back(CFG, cases, tmp_path, seed=5, gap=0.4, ready_p=0.4)


def test_residual_split_bank(tmp_path):
    # inputs of at most 32 positions: the build's 256 input neurons are 32 words of 8 lanes
    cases = [residual(11, "ttfs", tau=2, input_shape=[2, 5, 6]), residual(12, "multistep", input_shape=[1, 6, 5]),
             residual(13, "ttfs", strided_projection_layers(3, 5, 5))]
    check_counts(SPLIT, cases, run_back_to_back(SPLIT, cases, tmp_path))


def test_residual_one_lane(tmp_path):
    """One lane: every channel its own word, so the identity's diagonal is one weight per row."""
    cases = []
    for seed in range(20, 60):
        pkg, x = residual(seed, "ttfs" if seed % 2 else "multistep", batch=2, max_t=ONE_LANE.max_t,
                          input_shape=[1, 5, 5])
        try:
            fits(ONE_LANE, pkg)
        except FitError:
            continue
        cases.append((pkg, x))
        if len(cases) == 4:
            break
    assert {p.mode for p, _ in cases} == {"ttfs", "multistep"}
    run_back_to_back(ONE_LANE, cases, tmp_path)


def test_shortcut_too_far_back_refused():
    """The source's words live in the code buffer for two layers; a shortcut from further back is refused,
    naming the field."""
    layers = [{"type": "conv2d", "in_shape": [1, 4, 4], "out_channels": 3, "kernel": 3, "stride": 1, "padding": 1}]
    layers += [{"type": "conv2d", "in_shape": [3, 4, 4], "out_channels": 3, "kernel": 3, "stride": 1, "padding": 1}
               for _ in range(3)]
    layers[3]["shortcut"] = {"from": 0, "kind": "identity"}
    layers += [{"type": "flatten"}, {"type": "dense", "in": 48, "out": 2}]
    pkg, _ = residual(0, "ttfs", layers)
    golden.run(pkg, randnet.random_inputs(np.random.default_rng(0), pkg, 1))   # a valid package
    with pytest.raises(FitError, match=r"layers\[3\]\.shortcut\.from = 0: .*3 layers back"):
        fits(CFG, pkg)
    layers[3]["shortcut"]["from"] = 1   # two back: runs
    fits(CFG, residual(0, "ttfs", layers)[0])
