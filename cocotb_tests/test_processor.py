"""The processor on random ttfs packages, bit-exact against model.golden on every key."""
from dataclasses import replace

import numpy as np
import pytest

from common import CFG, cfg_step, check, infer_step, make_pkg
from logspike.hw import image, sim
from logspike.hw.protocol import Global, Sel
from logspike.hw.config import Config, FitError, build_for, fits
from logspike.model import golden, randnet
from logspike.synth import energy
from logspike.model.package import PackageError


def _run_many(tmp_path, specs, batch=3, seed=0, **kw):
    """Load several packages one after another into ONE build, infer each (back to back)."""
    steps, cases = [], []
    for s, kind, tau in specs:
        try:
            pkg, rng = make_pkg(s, kind, tau)
        except PackageError:  # randnet can draw a kernel wider than a 1-wide map (reported upstream)
            continue
        x = randnet.random_inputs(rng, pkg, batch, silent=float(rng.uniform(0.1, 0.6)))
        steps += [cfg_step(pkg, gap=kw.get("gap", 0.0)), infer_step(pkg, x, **kw)]
        cases.append((pkg, x))
    raw = sim.run_steps(CFG, steps, tmp_path, seed=seed)
    pos = 0
    for pkg, x in cases:
        want = golden.run(pkg, x)
        counters = check(pkg, x, raw[pos:pos + len(x)], want=want)
        # the END beat's counts against the operation count of the golden run: scatter ops (one PE op per
        # event, output position and output group) and events (the live inputs of every weighted layer)
        t = energy.op_counts(pkg, CFG, x, want)
        sops = sum(r["scatter_ops"] for r in t.layers.values() if "scatter_ops" in r)
        events = sum(r["live_inputs"] for r in t.layers.values() if "live_inputs" in r)
        assert [c["sops"] for c in counters] == [int(v) for v in sops]
        assert [c["events"] for c in counters] == [int(v) for v in events]
        for c in counters:
            assert c["cycles"] > c["sops"] > 0 or c["sops"] == 0
        pos += len(x)


def test_dense_packages(tmp_path):
    _run_many(tmp_path, [(10 + i, "dense", tau) for i, tau in enumerate([1, 2, 4, 1, 2, 4])])


def test_conv_packages(tmp_path):
    _run_many(tmp_path, [(20 + i, "conv", tau) for i, tau in enumerate([1, 2, 4, 1, 2, 4, 2, 1])])


def test_backpressure(tmp_path):
    """Random valid gaps on config and input streams, random ready on the result stream."""
    _run_many(tmp_path, [(30, "conv", 2), (31, "dense", 4), (32, "conv", 1)], gap=0.4, ready_p=0.5, seed=7)


def test_reset_mid_inference(tmp_path):
    pkg, rng = make_pkg(40, "conv", 2)
    x = randnet.random_inputs(rng, pkg, 2)
    steps = [cfg_step(pkg),
             {"abort_after": 60, "inp": image.input_beats(CFG, pkg, x[0])},   # reset during compute
             {"abort_after": 3, "inp": image.input_beats(CFG, pkg, x[1])},    # reset during input load
             infer_step(pkg, x)]
    check(pkg, x, sim.run_steps(CFG, steps, tmp_path))


def test_config_with_input(tmp_path):
    """A new package's config beats and an input offered in the same cycles: the processor takes every
    config beat first (the table's first entry last, its write landing a cycle after the beat) and infers
    on the new package. Starting at once would run the package loaded before."""
    old, rng_o = make_pkg(45, "dense", 2)
    new, rng = make_pkg(46, "conv", 1)
    xo, x = randnet.random_inputs(rng_o, old, 1), randnet.random_inputs(rng, new, 1)
    beats = image.config_beats(CFG, new)
    first = [b for b in beats if image.config_beat_fields(CFG, b)[:2] == (Sel.TABLE, 0)][0]
    beats = [b for b in beats if b != first] + [first]
    steps = [cfg_step(old), infer_step(old, xo), {"cfg": beats, "with_input": image.input_beats(CFG, new, x[0])}]
    raw = sim.run_steps(CFG, steps, tmp_path, max_cycles=200_000)   # a stalled config fails, not hangs
    check(old, xo, raw[:1])
    check(new, x, raw[1:])


def test_baked_image(tmp_path):
    """A package baked into memory init runs with no config stream."""
    pkg, rng = make_pkg(50, "conv", 4)
    x = randnet.random_inputs(rng, pkg, 2)
    check(pkg, x, sim.run_steps(CFG, [infer_step(pkg, x)], tmp_path, baked=pkg))


def test_refuses_misfit():
    pkg, _ = make_pkg(60, "dense", 2)
    small = Config(**dict(CFG.as_dict(), max_neurons=8, max_inputs=8))
    for cfg, field in [(Config(**dict(CFG.as_dict(), weight_bits=4)), "weight_bits"),
                       (Config(**dict(CFG.as_dict(), frac_bits=12, acc_bits=32)), "frac_bits"),
                       (Config(**dict(CFG.as_dict(), acc_bits=pkg.acc_bits - 1)), "acc_bits"),
                       (Config(**dict(CFG.as_dict(), max_t=pkg.time_steps - 1)), "time_steps"),
                       (Config(**dict(CFG.as_dict(), max_tau=1)), "tau"),
                       (Config(**dict(CFG.as_dict(), max_weight_words=4)), "weights"),
                       (Config(**dict(CFG.as_dict(), max_layers=1)), "layers"),
                       (Config(**dict(CFG.as_dict(), thr_bits=max(pkg.thresholds).bit_length() - 1)), r"thresholds\[0\]")]:
        with pytest.raises(FitError, match=field):
            fits(cfg, pkg)
    big, _ = make_pkg(61, "dense", 2, input_shape=[40])
    with pytest.raises(FitError, match="input_shape|layers"):
        fits(small, big)
    with pytest.raises(FitError):
        sim.simulate(Config(**dict(CFG.as_dict(), weight_bits=4)), pkg, np.zeros((1, *pkg.input_shape), np.int64))


def test_one_input_group_at_many_lanes_bakes():
    """A conv of one input channel group at 16 lanes: P times its lane stride (the row step per input group,
    a table field) passes its few weight words, so the build's weight addresses must be sized by the
    entries' fields, not by the words alone (build_for: max_weight_step); it failed to bake before."""
    pkg = randnet.random_package(np.random.default_rng(3), "ttfs", "conv")   # a [1, 4, 4] input, 25 weight words
    assert pkg.input_shape[0] == 1
    cfg = build_for(pkg, 16)
    assert cfg.max_weight_step > 4 * cfg.max_weight_words
    image.bake(cfg, pkg)
    with pytest.raises(FitError, match="weight-address step"):
        fits(replace(cfg, max_weight_step=0), pkg)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(6))
def test_sweep(tmp_path, block):
    specs = [(1000 + block * 16 + i, ("dense", "conv")[i % 2], (1, 2, 4)[i % 3]) for i in range(16)]
    _run_many(tmp_path, specs, batch=4, gap=0.2 * (block % 2), ready_p=1.0 - 0.3 * (block % 2), seed=block)
