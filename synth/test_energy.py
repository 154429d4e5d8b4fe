"""Energy estimate: its counts against an independent count on tiny random packages (no synthesis, seconds).

The independent side loops over output positions and kernel windows in
plain Python and takes spike data only from the golden model's results
(SPEC section 5: ttfs codes, multistep spike counts up to the exit step).
"""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape

from logspike.hw.config import build_for
from logspike.hw.config import chw, needs, words_of
from logspike.model import golden
from logspike.model.package import layer_shapes
from logspike.model.randnet import random_inputs, random_package
from logspike.synth import energy


def window_sum(layer: dict, in_shape, val: np.ndarray) -> float:
    """Sum over the output positions of the input values in each one's window (dense: every input once)."""
    if layer["type"] == "dense":
        return float(val.sum())
    C, H, W = in_shape
    k, s, p = layer["kernel"], layer["stride"], layer["padding"]
    tot = 0.0
    for oy in range((H + 2 * p - k) // s + 1):
        for ox in range((W + 2 * p - k) // s + 1):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * s - p + ky, ox * s - p + kx
                    if 0 <= iy < H and 0 <= ix < W:
                        tot += float(val[:, iy, ix].sum())
    return tot


def nonsilent_words(live: np.ndarray, P: int) -> int:
    """Words of P channels at one position (natural layout) with any live lane."""
    C, H, W = live.shape
    return sum(bool(live[g * P:(g + 1) * P, y, x].any()) for y in range(H) for x in range(W) for g in range(-(-C // P)))


def independent(pkg, x, res, P: int):
    """Per sample: (synaptic events, scatter ops, input event records read) summed over the weighted layers.

    ttfs: live = code < T. multistep: a layer's scatters over all executed
    steps sum to its window sums of the spike counts (the scatter is linear
    in its inputs); the first layer's graded input scatters once (step 1)."""
    ms = pkg.mode == "multistep"
    shapes = layer_shapes(pkg.input_shape, pkg.layers)
    out = np.zeros((len(x), 3))
    for b in range(len(x)):
        val = np.asarray(x[b] != 0 if ms else x[b] < pkg.time_steps, dtype=np.int64).reshape(chw(pkg.input_shape))
        shape = chw(pkg.input_shape)
        for i, l in enumerate(pkg.layers):
            if l["type"] == "flatten":
                continue
            if l["type"] in ("dense", "conv2d"):
                K = chw(shapes[i])[0]
                pairs = window_sum(l, shape, val)
                out[b] += (pairs * K, pairs * -(-K // P), nonsilent_words(val > 0, P) if not ms else 0)
                if i == pkg.output_index():
                    break
            spk = res[f"spikes_L{i}"][b]
            val = (spk if ms else spk < pkg.time_steps).astype(np.int64).reshape(chw(shapes[i]))
            shape = chw(shapes[i])
    return out


def tally(pkg, x, P):
    cfg = build_for(pkg, P)
    res, spikes = energy.run_golden(pkg, x)
    return cfg, res, energy.op_counts(pkg, cfg, x, res, spikes)


@pytest.mark.parametrize("seed,kind", [(1, "dense"), (2, "conv"), (3, "conv"), (4, "dense")])
def test_ttfs_counts_match_independent_count(seed, kind):
    rng = np.random.default_rng(seed)
    pkg = random_package(rng, "ttfs", kind)
    x = random_inputs(rng, pkg, 4)
    P = 2  # partial channel groups and words of two lanes
    cfg, res, t = tally(pkg, x, P)
    want = independent(pkg, x, res, P)
    assert want[:, 0].min() > 0
    np.testing.assert_array_equal(t.ops["shift_add"][2], want[:, 0])  # shift-adds = synaptic events
    np.testing.assert_array_equal(t.reads["wmem"], want[:, 1])        # one weight word per scatter op
    np.testing.assert_array_equal(t.reads["emem"], want[:, 2])        # one record per non-silent input word
    # pmem: read + write per scatter op, read + clear per FIRE word of every weighted layer
    fire = sum(words_of(s, P) for i, s in enumerate(pkg.shapes()) if i in pkg.weighted_indices())
    np.testing.assert_array_equal(t.reads["pmem"], want[:, 1] + fire)
    np.testing.assert_array_equal(t.writes["pmem"], want[:, 1] + fire)
    assert not any(t.reads[m].any() or t.writes[m].any() for m in ("vmem", "kmem", "imem"))


@pytest.mark.parametrize("seed,kind", [(5, "dense"), (6, "conv"), (7, "dense")])
def test_multistep_counts_follow_exit_steps(seed, kind):
    rng = np.random.default_rng(seed)
    pkg = random_package(rng, "multistep", kind, time_steps=6)
    x = random_inputs(rng, pkg, 5)
    P = 2
    cfg, res, t = tally(pkg, x, P)
    steps = res["exit_step"].astype(np.float64)
    want = independent(pkg, x, res, P)
    np.testing.assert_array_equal(t.ops["shift_add"][2], want[:, 0])  # first layer once, the rest every step
    np.testing.assert_array_equal(t.reads["wmem"], want[:, 1])
    n = needs(pkg, P)
    out_words = words_of(pkg.shapes()[pkg.output_index()], P)
    first_words = words_of(pkg.shapes()[pkg.weighted_indices()[0]], P)
    np.testing.assert_array_equal(t.writes["vmem"], steps * n["state_words"])
    np.testing.assert_array_equal(t.reads["vmem"], steps * n["state_words"] + out_words)  # + OUTE
    np.testing.assert_array_equal(t.writes["kmem"], steps * n["count_words"])
    np.testing.assert_array_equal(t.reads["kmem"], steps * n["count_words"] + n["count_words"])  # + CNT
    np.testing.assert_array_equal(t.writes["imem"], np.full(len(x), first_words))
    np.testing.assert_array_equal(t.reads["imem"], (steps - 1) * first_words)


def test_early_exit_costs_less_than_t_max():
    """The same images: exit forced at step 1 (margin 0) against no exit (T_max)."""
    rng = np.random.default_rng(11)
    pkg = random_package(rng, "multistep", "dense", time_steps=8)
    x = random_inputs(rng, pkg, 4)
    early = pkg.copy()
    early.manifest["exit"] = {"margin": 0, "min_steps": 1}
    full = energy.without_exit(pkg)
    e = {}
    for name, p in (("early", early), ("full", full)):
        cfg, res, t = tally(p, x, 2)
        assert set(res["exit_step"]) == {1 if name == "early" else 8}
        e[name] = energy.energy(cfg, t)["pJ"]
        assert t.reads["imem"].sum() == (0 if name == "early" else 7 * len(x) * words_of(p.shapes()[p.weighted_indices()[0]], 2))
    assert (e["early"] < e["full"]).all()
    assert (e["full"] > 3 * e["early"]).all()  # 8 steps of state and later layers against 1


@pytest.mark.parametrize("mode,kind,P", [("ttfs", "conv", 2), ("multistep", "dense", 4)])
def test_memory_widths_are_the_rtls(mode, kind, P):
    """Every memory of energy.memories equals the one hw/top.py declares (width and depth), for the build of a package."""
    from logspike.hw.top import Processor

    pkg = random_package(np.random.default_rng(20), mode, kind)
    cfg = build_for(pkg, P)
    top = Processor(cfg)
    body = top.elaborate(None)
    rtl = body.submodules
    mem = energy.memories(cfg)
    assert set(mem) == set(energy.MEMORIES)
    for name, (bits, depth) in mem.items():
        m = getattr(rtl, name)
        assert (Shape.cast(m.shape).width, m.depth) == (bits, depth), name
    assert cfg.sym_bits > cfg.code_bits  # code buffers hold sym_bits lanes, not code_bits
    assert mem["cmem"][0] == P * cfg.sym_bits and mem["kmem"][0] == P * cfg.count_bits
    assert mem["vmem"] == (P * cfg.acc_bits, cfg.max_state_words) and mem["kmem"][1] == cfg.max_count_words
    # elaborate both as a build would, so Amaranth does not report them unused when they are collected
    Fragment.get(top, None)
    Fragment.get(body, None)


def test_latency_uses_the_given_fmax():
    pkg = random_package(np.random.default_rng(30), "ttfs", "dense")
    x = random_inputs(np.random.default_rng(31), pkg, 3)
    r = energy.estimate("t", pkg, x, 1, 50.0, "")
    assert r["latency_us"] == pytest.approx(r["cycles"] / 50.0) and r["uJ"] > 0
    fmax, lanes, note = energy.fmax_from(energy.FMAX_JSON)
    assert fmax > 0 and lanes == 1 and "ecp5_p1.json" in note


def test_step_spikes_sum_to_the_golden_counts():
    """golden.step_spikes (what the multistep counts read) agrees with golden.run, and is zero after each exit."""
    rng = np.random.default_rng(40)
    pkg = random_package(rng, "multistep", "conv", time_steps=6, margin=0, min_steps=2)
    x = random_inputs(rng, pkg, 4)
    res, spikes = golden.step_spikes(pkg, x, batch=3)
    want = golden.run(pkg, x)
    for k in want:
        np.testing.assert_array_equal(res[k], want[k])
    for i, a in spikes.items():
        assert a.shape[:2] == (len(x), 6)
        np.testing.assert_array_equal(a.sum(1), want[f"spikes_L{i}"])
        for b, s in enumerate(res["exit_step"]):
            assert not a[b, s:].any()
