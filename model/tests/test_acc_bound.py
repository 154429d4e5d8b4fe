"""The acc_bits bound (model.package.potential_bounds) against brute force on small networks: every
input a layer can receive is enumerated and its potentials computed from SPEC.md's arithmetic.

The bound must never be below a reachable potential (a package it accepts cannot overflow) and must
be the exact worst case where the arithmetic makes one computable in closed form: ttfs layers, the
multistep output layer, and the lowest potential of a multistep spiking layer. The highest potential
of a spiking layer is followed step by step over the interval of drives; on drive sets without gaps
that is exact too.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from logspike.model import arith
from logspike.model.package import Package, potential_bounds, required_acc_bits

F = 8


def _dense(n_in, n_out, E):
    return {"type": "dense", "in": n_in, "out": n_out, "exp_offset": E}


def _pkg(mode, sizes, E, rng, W=4, bias_scale=0.5, **extra):
    layers = [_dense(a, b, e) for (a, b), e in zip(zip(sizes, sizes[1:]), E)]
    tensors = {}
    for i, l in enumerate(layers):
        shape = (l["out"], l["in"])
        mag = rng.integers(0, arith.max_mag(W) + 1, size=shape)
        tensors[f"L{i}.sign"] = (rng.random(shape) < 0.5).astype(np.uint8)
        tensors[f"L{i}.mag"] = mag.astype(np.uint8)
        b = int(bias_scale * (1 << F))
        tensors[f"L{i}.bias"] = rng.integers(-b, b + 1, size=l["out"]).astype(np.int64)
    m = {"format": "logspike-net", "version": 1, "mode": mode, "input_shape": [sizes[0]], "weight_bits": W,
         "frac_bits": F, "acc_bits": 62, "layers": layers}
    m.update(extra)
    return Package(m, tensors)


def _contribs(pkg, i, values):
    """[len(values), out, in]: the signed contribution of each input value through every weight of layer i."""
    sign, mag, _ = pkg.weights(i)
    E = pkg.layers[i]["exp_offset"]
    out = np.zeros((len(values),) + mag.shape, dtype=np.int64)
    first = i == pkg.weighted_indices()[0]
    for a, v in enumerate(values):
        for o, f in np.ndindex(mag.shape):
            s, g = int(sign[o, f]), int(mag[o, f])
            if pkg.mode == "ttfs":
                out[a, o, f] = arith.ttfs_contrib(v, s, g, E, pkg.lut, pkg.tau, pkg.time_steps)
            elif first:
                out[a, o, f] = arith.graded_contrib(v, s, g, E, F)
            else:
                out[a, o, f] = arith.spike_contrib(s, g, E, F) if v else 0
    return out


def _drives(pkg, i, values):
    """Every drive vector (bias + contributions) of layer i over all inputs drawn from `values`: [N, out]."""
    c = _contribs(pkg, i, values)
    n_in = c.shape[2]
    combos = np.array(list(itertools.product(range(len(values)), repeat=n_in)))   # [N, in] value indices
    d = c[combos, :, np.arange(n_in)[None, :]]   # [N, in, out]
    return d.sum(axis=1) + pkg.weights(i)[2][None, :]


def _spiking_extremes(drive_seq, T, leak_shift, v_reset=None):
    """Lowest / highest pre-reset potential over sequences of drives [N, T, out] (SPEC 4: leak, add, fire,
    subtract 2^F, or set v_reset)."""
    v = np.zeros(drive_seq.shape[::2], dtype=np.int64)
    lo, hi = drive_seq[:, 0].min(0), drive_seq[:, 0].max(0)
    for s in range(T):
        v = (v - (v >> leak_shift) if leak_shift else v) + drive_seq[:, s]
        lo, hi = np.minimum(lo, v.min(0)), np.maximum(hi, v.max(0))
        v = np.where(v >= 1 << F, v - (1 << F) if v_reset is None else v_reset, v)
    return lo, hi


def _bits(lo, hi):
    return arith.bits_for(int(min(lo.min(), 0)), int(max(hi.max(), 0)))


@pytest.mark.parametrize("seed", range(6))
def test_ttfs_bound_is_the_exact_worst_case(seed):
    rng = np.random.default_rng(seed)
    T, tau = 4, [1, 2, 4][seed % 3]
    pkg = _pkg("ttfs", [3, 3, 2], [0, -1], rng, time_steps=T, tau=tau, lut=arith.make_lut(F, tau),
               thresholds=arith.make_thresholds(F, T, tau))
    bounds = potential_bounds(pkg)
    for i in pkg.weighted_indices():   # each layer over every code vector it can receive
        d = _drives(pkg, i, list(range(T + 1)))
        lo, hi = bounds[i]
        assert np.array_equal(lo, d.min(0)) and np.array_equal(hi, d.max(0)), i
    assert required_acc_bits(pkg) == max(_bits(*bounds[i]) for i in bounds)


def _multistep(seed, T, leak_shift, gapless=False):
    """A [2, 3, 3, 2] multistep network: layer 0 takes graded bytes, layer 1 binary spikes, layer 4 is the output.
    gapless: layer 1's three weights are 1, 2 and 4 units and its biases near 2^F, so its drives cover an
    interval and its neurons fire."""
    rng = np.random.default_rng(seed)
    pkg = _pkg("multistep", [2, 3, 3, 2], [0, 0, 0], rng, W=5, time_steps=T, leak_shift=leak_shift,
               exit={"margin": None, "min_steps": 1}, bias_scale=0.9)
    if gapless:
        pkg.tensors["L1.sign"][:] = 0
        pkg.tensors["L1.mag"][:] = [9, 8, 7]   # 2^(F - e): 1, 2, 4
        pkg.tensors["L1.bias"][:] = [(1 << F) - 6, (1 << F) - 1, 200]
    return pkg


def _brute_multistep(pkg):
    """Exhaustive extremes of every layer: layer 0 over every pair of input bytes (its graded drive is the
    same every step), layers 1 and 2 over every spike train of their three inputs."""
    T = pkg.time_steps
    d0 = _drives(pkg, 0, list(range(256)))                       # [65536, 3]
    out = {0: _spiking_extremes(np.repeat(d0[:, None], T, 1), T, pkg.layer_leak(0), pkg.layer_reset(0))}
    for i in (1, 2):
        d = _drives(pkg, i, [0, 1])                              # [8, out]: every spike vector
        seq = d[np.array(list(itertools.product(range(len(d)), repeat=T)))]   # [8^T, T, out]
        if i == 1:
            out[i] = _spiking_extremes(seq, T, pkg.layer_leak(1), pkg.layer_reset(1))
        else:
            sums = np.cumsum(seq, axis=1)
            out[i] = (np.minimum(sums.min((0, 1)), 0), np.maximum(sums.max((0, 1)), 0))
    return out


@pytest.mark.parametrize("seed,T,leak", [(0, 1, 0), (1, 3, 0), (2, 4, 1), (3, 4, 3), (4, 2, 2), (5, 4, 0)])
def test_multistep_bound_is_safe_and_exact_where_closed_form(seed, T, leak):
    pkg = _multistep(seed, T, leak)
    bounds, brute = potential_bounds(pkg), _brute_multistep(pkg)
    for i in (0, 1):
        lo, hi = bounds[i]
        assert (hi >= brute[i][1]).all(), (i, hi, brute[i][1])   # never below a reachable value
        assert np.array_equal(lo, brute[i][0]), (i, lo, brute[i][0])   # the lowest: a constant lo drive
    assert np.array_equal(bounds[2][0], brute[2][0]) and np.array_equal(bounds[2][1], brute[2][1])  # output: exact


@pytest.mark.parametrize("T,leak", [(2, 0), (4, 0), (4, 1), (3, 2)])
def test_multistep_spiking_bound_is_exact_on_gapless_drives(T, leak):
    pkg = _multistep(7, T, leak, gapless=True)
    d1 = _drives(pkg, 1, [0, 1])
    assert all(sorted(set(d1[:, o])) == list(range(d1[:, o].min(), d1[:, o].max() + 1)) for o in range(3))
    bounds, brute = potential_bounds(pkg), _brute_multistep(pkg)
    assert np.array_equal(bounds[1][0], brute[1][0]) and np.array_equal(bounds[1][1], brute[1][1])
    assert brute[1][1].max() >= 1 << F   # the neurons fire: the reset is part of what was checked


def _with_neurons(pkg, leaks, resets):
    """Version 2: layers 0 and 1 with their own leak shifts and reset values (None: subtract 2^F)."""
    pkg.manifest["version"] = 2
    for i, k, r in zip((0, 1), leaks, resets):
        pkg.layers[i]["leak_shift"] = k
        if r is not None:
            pkg.layers[i]["v_reset"] = r
    return pkg


@pytest.mark.parametrize("T,leaks,resets", [(3, (0, 1), (0, 0)), (4, (2, 0), (-(1 << F), (1 << F) - 1)),
                                            (4, (1, 3), (None, 37)), (2, (0, 0), (500, None))])
def test_multistep_bound_with_version2_neurons(T, leaks, resets):
    """Per-layer leaks and resets to a value: never below a reachable potential, the lowest exact (constant
    lo drive), and on gapless drives the exact worst case."""
    for seed, gapless in ((11, False), (12, True)):
        pkg = _with_neurons(_multistep(seed, T, 1, gapless=gapless), leaks, resets)
        bounds, brute = potential_bounds(pkg), _brute_multistep(pkg)
        for i in (0, 1):
            lo, hi = bounds[i]
            assert (hi >= brute[i][1]).all() and (lo <= brute[i][0]).all(), (i, lo, hi, brute[i])
            if gapless and i == 1:
                assert np.array_equal(lo, brute[i][0]) and np.array_equal(hi, brute[i][1]), (lo, hi, brute[i])
        if gapless:
            assert brute[1][1].max() >= 1 << F   # layer 1 fires: its reset was part of what was checked
