"""Every limit of SPEC section 1.1 at its value and one past it, through the command line: a package at
the limit runs (`logspike golden`), one past it is refused with one line naming the field. The RTL at
the corners of the range: logspike/tests/test_cli_sim.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from logspike.cli import main
from logspike.model import arith, randnet
from logspike.model.package import Package, required_acc_bits, validate

F = 10


def _ttfs(rng, **kw):
    return randnet.random_package(rng, "ttfs", kw.pop("kind", "dense"), weight_bits=kw.pop("W", 5),
                                  frac_bits=kw.pop("F", F), **kw)


def _ms(rng, **kw):
    return randnet.random_package(rng, "multistep", kw.pop("kind", "dense"), weight_bits=kw.pop("W", 5),
                                  frac_bits=kw.pop("F", F), **kw)


def _refit(pkg):
    """acc_bits back to the proven minimum after a change (at least F + 2)."""
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), pkg.frac_bits + 2)
    return pkg


def _single_conv(rng, in_shape, kernel, stride, padding, mode="ttfs"):
    """conv -> flatten -> dense with the given geometry, every weight magnitude 1 (small sums)."""
    from logspike.model.package import layer_shapes

    conv = {"type": "conv2d", "in_shape": in_shape, "out_channels": 2, "kernel": kernel, "stride": stride,
            "padding": padding, "exp_offset": -6}
    shp = layer_shapes(in_shape, [conv])[-1]
    return _layers(rng, mode, in_shape, [conv, {"type": "flatten"},
                                         {"type": "dense", "in": int(np.prod(shp)), "out": 2, "exp_offset": 0}])


def _pool(rng, in_shape, kernel):
    conv = {"type": "conv2d", "in_shape": in_shape, "out_channels": 1, "kernel": 1, "stride": 1, "padding": 0, "exp_offset": 0}
    c, h, w = 1, in_shape[1] // kernel, in_shape[2] // kernel
    return _layers(rng, "ttfs", in_shape, [conv, {"type": "maxpool2d", "kernel": kernel}, {"type": "flatten"},
                                           {"type": "dense", "in": c * h * w, "out": 2, "exp_offset": 0}])


def _layers(rng, mode, input_shape, layers, W=5):
    from logspike.model.package import WEIGHTED, weight_shape

    tensors = {}
    for i, l in enumerate(layers):
        if l["type"] in WEIGHTED:
            s = weight_shape(l)
            tensors[f"L{i}.sign"] = (rng.random(s) < 0.3).astype(np.uint8)
            tensors[f"L{i}.mag"] = np.ones(s, np.uint8)
            tensors[f"L{i}.bias"] = np.zeros(s[0], np.int64)
    base = _ttfs(rng) if mode == "ttfs" else _ms(rng)
    m = dict(base.manifest, input_shape=list(input_shape), layers=layers, weight_bits=W)
    return _refit(Package(m, tensors))


def _with(pkg, **fields):
    p = pkg.copy()
    p.manifest.update(fields)
    return p


def _layer(pkg, i, **fields):
    p = pkg.copy()
    p.manifest["layers"][i].update(fields)
    return p


def _cases():
    """(name, package at the limit, package one past it, field the refusal names), built lazily."""
    def r():
        return np.random.default_rng(5)

    def T(mode, v):
        if mode == "ttfs":
            return _refit(_ttfs(r(), time_steps=v, tau=1))
        return _refit(_ms(r(), time_steps=v, min_steps=1))

    def past_T(mode, v):
        p = T(mode, 2)
        p.manifest["time_steps"] = v
        return p

    lo_w, hi_w = arith.WEIGHT_BITS_RANGE
    lo_f, hi_f = arith.FRAC_BITS_RANGE
    lo_a, hi_a = arith.ACC_BITS_RANGE
    lo_t, hi_t = arith.TTFS_T_RANGE
    lo_m, hi_m = arith.MULTISTEP_T_RANGE
    lo_e, hi_e = arith.EXP_OFFSET_RANGE
    lo_k, hi_k = arith.LEAK_SHIFT_RANGE
    lo_tau, hi_tau = arith.TAU_RANGE
    c = [
        ("weight_bits low", lambda: _ttfs(r(), W=lo_w), lambda: _with(_ttfs(r(), W=lo_w), weight_bits=lo_w - 1), "weight_bits"),
        ("weight_bits high", lambda: _ttfs(r(), W=hi_w), lambda: _with(_ttfs(r(), W=hi_w), weight_bits=hi_w + 1), "weight_bits"),
        ("frac_bits low", lambda: _ttfs(r(), F=lo_f), lambda: _with(_ttfs(r(), F=lo_f), frac_bits=lo_f - 1), "frac_bits"),
        ("frac_bits high", lambda: _ttfs(r(), F=hi_f), lambda: _with(_ttfs(r(), F=hi_f), frac_bits=hi_f + 1), "frac_bits"),
        ("acc_bits high", lambda: _with(_ttfs(r()), acc_bits=hi_a), lambda: _with(_ttfs(r()), acc_bits=hi_a + 1), "acc_bits"),
        ("acc_bits F + 2", lambda: _with(_layers(r(), "ttfs", [2], [{"type": "dense", "in": 2, "out": 2, "exp_offset": -8}]),
                                        acc_bits=F + 2),
         lambda: _with(_layers(r(), "ttfs", [2], [{"type": "dense", "in": 2, "out": 2, "exp_offset": -8}]), acc_bits=F + 1),
         "acc_bits"),
        ("acc_bits proven minimum", lambda: _ttfs(r(), acc_slack=1),
         lambda: _with(_ttfs(r(), acc_slack=1), acc_bits=_ttfs(r(), acc_slack=1).acc_bits - 1), "acc_bits"),
        ("ttfs time_steps low", lambda: T("ttfs", lo_t), lambda: past_T("ttfs", lo_t - 1), "time_steps"),
        ("ttfs time_steps high", lambda: T("ttfs", hi_t), lambda: past_T("ttfs", hi_t + 1), "time_steps"),
        ("multistep time_steps low", lambda: T("multistep", lo_m), lambda: past_T("multistep", lo_m - 1), "time_steps"),
        ("multistep time_steps high", lambda: T("multistep", hi_m), lambda: past_T("multistep", hi_m + 1), "time_steps"),
        ("tau high", lambda: _refit(_ttfs(r(), tau=hi_tau, time_steps=4)),
         lambda: _with(_ttfs(r(), tau=4, time_steps=4), tau=hi_tau * 2), "tau"),
        ("tau low", lambda: _ttfs(r(), tau=lo_tau), lambda: _with(_ttfs(r(), tau=lo_tau), tau=lo_tau - 1), "tau"),
        ("leak_shift low", lambda: _ms(r(), leak_shift=lo_k), lambda: _with(_ms(r(), leak_shift=lo_k), leak_shift=lo_k - 1), "leak_shift"),
        ("leak_shift high", lambda: _ms(r(), leak_shift=hi_k), lambda: _with(_ms(r(), leak_shift=hi_k), leak_shift=hi_k + 1), "leak_shift"),
        ("exit.min_steps = T_max", lambda: _with(_ms(r(), time_steps=6), exit={"margin": 1, "min_steps": 6}),
         lambda: _with(_ms(r(), time_steps=6), exit={"margin": 1, "min_steps": 7}), "exit.min_steps"),
        ("exit.min_steps low", lambda: _with(_ms(r()), exit={"margin": 0, "min_steps": 1}),
         lambda: _with(_ms(r()), exit={"margin": 0, "min_steps": 0}), "exit.min_steps"),
        ("exit.margin high", lambda: _with(_ms(r()), exit={"margin": (1 << (_ms(r()).acc_bits - 1)) - 1, "min_steps": 1}),
         lambda: _with(_ms(r()), exit={"margin": 1 << (_ms(r()).acc_bits - 1), "min_steps": 1}), "exit.margin"),
        ("exp_offset low", lambda: _refit(_layer(_ttfs(r()), 0, exp_offset=lo_e)),
         lambda: _layer(_ttfs(r()), 0, exp_offset=lo_e - 1), "layers[0].exp_offset"),
        ("exp_offset high", lambda: _layers(r(), "ttfs", [2], [{"type": "dense", "in": 2, "out": 2, "exp_offset": hi_e}], W=8),
         lambda: _layer(_ttfs(r()), 0, exp_offset=hi_e + 1), "layers[0].exp_offset"),
        ("conv kernel high", lambda: _single_conv(r(), [1, 64, 64], 64, 1, 0),
         lambda: _layer(_single_conv(r(), [1, 64, 64], 64, 1, 0), 0, kernel=65), "layers[0].kernel"),
        ("conv kernel larger than the padded input", lambda: _single_conv(r(), [1, 4, 4], 6, 1, 1),
         lambda: _layer(_single_conv(r(), [1, 4, 4], 6, 1, 1), 0, kernel=7), "layers[0].kernel"),
        ("conv stride high", lambda: _single_conv(r(), [1, 65, 65], 1, 64, 0),
         lambda: _layer(_single_conv(r(), [1, 65, 65], 1, 64, 0), 0, stride=65), "layers[0].stride"),
        ("conv padding high", lambda: _single_conv(r(), [1, 3, 3], 5, 2, 4),
         lambda: _layer(_single_conv(r(), [1, 3, 3], 5, 2, 4), 0, padding=5), "layers[0].padding"),
        ("maxpool kernel = input size", lambda: _pool(r(), [1, 5, 7], 5),
         lambda: _layer(_pool(r(), [1, 5, 7], 5), 1, kernel=6), "layers[1].kernel"),
        ("input dimension high", lambda: _layers(r(), "ttfs", [1 << 20], [{"type": "dense", "in": 1 << 20, "out": 2, "exp_offset": -10}]),
         lambda: _with(_layers(r(), "ttfs", [4], [{"type": "dense", "in": 4, "out": 2, "exp_offset": 0}]), input_shape=[(1 << 20) + 1]),
         "input_shape[0]"),
    ]
    return c


CASES = _cases()


def _golden(tmp_path, pkg, name, raw=False):
    d = tmp_path / name
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(pkg.manifest, default=int))
    np.savez(d / "tensors.npz", **pkg.tensors)
    rng = np.random.default_rng(0)
    x = randnet.random_inputs(rng, pkg, 2) if not raw else np.zeros((1, 4), np.int64)
    np.save(d / "x.npy", x)
    return ["golden", "--package", str(d), "--inputs", str(d / "x.npy"), "--out", str(d / "r.npz")], d / "r.npz"


@pytest.mark.parametrize("name,at,past,field", CASES, ids=[c[0] for c in CASES])
def test_limit_at_and_past(name, at, past, field, tmp_path, capsys):
    ok = at()
    validate(ok)
    argv, out = _golden(tmp_path, ok, "at")
    assert main(argv) == 0, capsys.readouterr().err
    assert out.exists()
    capsys.readouterr()
    argv, out = _golden(tmp_path, past(), "past", raw=True)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("logspike: error: ") and field in err[0], (name, err)
    assert not out.exists()

