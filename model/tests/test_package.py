"""Tests for model.package: round trip, every rejection, read-side errors, worst-case bounds."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from logspike.model import arith, golden
from logspike.model.package import (Package, PackageError, layer_shapes, potential_bounds, read, required_acc_bits,
                                    validate, write)
from logspike.model.randnet import random_inputs, random_package

# ------------------------------------------------------------------ fixtures

F = 10
W = 4  # magnitude codes 0..7


def dense_layers():
    return [
        {"type": "dense", "in": 12, "out": 6, "exp_offset": 0},
        {"type": "dense", "in": 6, "out": 5, "exp_offset": 1},
        {"type": "dense", "in": 5, "out": 3, "exp_offset": 0},
    ]


def conv_layers():
    return [
        {"type": "conv2d", "in_shape": [1, 6, 6], "out_channels": 3, "kernel": 3, "stride": 1, "padding": 1, "exp_offset": 0},
        {"type": "maxpool2d", "kernel": 2},  # -> [3, 3, 3]
        {"type": "conv2d", "in_shape": [3, 3, 3], "out_channels": 2, "kernel": 2, "stride": 1, "padding": 0, "exp_offset": 0},
        {"type": "flatten"},  # -> [8]
        {"type": "dense", "in": 8, "out": 4, "exp_offset": 0},
    ]


def build(mode: str, kind: str, seed: int = 0) -> Package:
    """A fixed, valid package of the given mode and topology, acc_bits at the proven minimum."""
    rng = np.random.default_rng(seed)
    input_shape, layers = ([12], dense_layers()) if kind == "dense" else ([1, 6, 6], conv_layers())
    tensors = {}
    for i, l in enumerate(layers):
        if l["type"] == "dense":
            shape = (l["out"], l["in"])
        elif l["type"] == "conv2d":
            shape = (l["out_channels"], l["in_shape"][0], l["kernel"], l["kernel"])
        else:
            continue
        tensors[f"L{i}.sign"] = (rng.random(shape) < 0.4).astype(np.uint8)
        tensors[f"L{i}.mag"] = rng.integers(0, arith.max_mag(W) + 1, size=shape).astype(np.uint8)
        tensors[f"L{i}.bias"] = rng.integers(-200, 200, size=shape[0]).astype(np.int64)
    m = {"format": "logspike-net", "version": 1, "mode": mode, "input_shape": input_shape, "weight_bits": W,
         "frac_bits": F, "acc_bits": 62, "layers": layers}
    if mode == "ttfs":
        m.update(time_steps=8, tau=2, lut=arith.make_lut(F, 2), thresholds=arith.make_thresholds(F, 8, 2))
    else:
        m.update(time_steps=8, leak_shift=1, exit={"margin": 5, "min_steps": 2})
    pkg = Package(m, tensors)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), F + 2)
    return validate(pkg)


BASES = {"ttfs_dense": ("ttfs", "dense"), "ttfs_conv": ("ttfs", "conv"),
         "ms_dense": ("multistep", "dense"), "ms_conv": ("multistep", "conv")}


def test_fixtures_are_valid():
    for mode, kind in BASES.values():
        validate(build(mode, kind))


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("mode", ["ttfs", "multistep"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip(tmp_path, mode, kind, seed):
    pkg = random_package(np.random.default_rng(seed), mode, kind)
    write(pkg, tmp_path / "pkg")
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["manifest.json", "tensors.npz"]
    back = read(tmp_path / "pkg")
    assert back.manifest == pkg.manifest
    assert json.dumps(back.manifest, sort_keys=True) == json.dumps(pkg.manifest, sort_keys=True)
    assert set(back.tensors) == set(pkg.tensors)
    for k, a in pkg.tensors.items():
        assert back.tensors[k].dtype == a.dtype, k
        assert back.tensors[k].shape == a.shape, k
        np.testing.assert_array_equal(back.tensors[k], a, err_msg=k)


@pytest.mark.parametrize("base", list(BASES))
def test_round_trip_fixed(tmp_path, base):
    pkg = build(*BASES[base])
    back = read(write(pkg, tmp_path / base))
    assert back.manifest == pkg.manifest
    for k, a in pkg.tensors.items():
        assert back.tensors[k].dtype == a.dtype and np.array_equal(back.tensors[k], a)


def test_write_accepts_numpy_integers_in_manifest(tmp_path):
    # validate accepts np.integer fields, so write must be able to serialise them
    pkg = build("ttfs", "dense")
    q = pkg.copy()
    q.manifest["weight_bits"] = np.int64(W)
    q.manifest["layers"][0]["exp_offset"] = np.int32(0)
    q.manifest["thresholds"] = [np.int64(v) for v in q.thresholds]
    back = read(write(q, tmp_path / "p"))
    assert back.manifest == pkg.manifest
    assert type(back.manifest["weight_bits"]) is int


def test_write_refuses_invalid_package(tmp_path):
    pkg = build("ttfs", "dense")
    pkg.manifest["weight_bits"] = 9
    with pytest.raises(PackageError, match=r"weight_bits"):
        write(pkg, tmp_path / "p")
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------ rejections

# Mutators: each returns a function that edits a package copy in place.


def setm(key, value):
    def f(p):
        p.manifest[key] = value
    return f


def delm(key):
    def f(p):
        del p.manifest[key]
    return f


def setl(i, key, value):
    def f(p):
        p.manifest["layers"][i][key] = value
    return f


def dell(i, key):
    def f(p):
        del p.manifest["layers"][i][key]
    return f


def setitem(key, j, value):
    def f(p):
        p.manifest[key][j] = value
    return f


def setexit(key, value):
    def f(p):
        p.manifest["exit"][key] = value
    return f


def layers(fn):
    def f(p):
        p.manifest["layers"] = fn(p.manifest["layers"])
    return f


def tensor(key, fn):
    def f(p):
        p.tensors[key] = fn(p.tensors[key])
    return f


def deltensor(key):
    def f(p):
        del p.tensors[key]
    return f


def addtensor(key, value):
    def f(p):
        p.tensors[key] = value
    return f


def poke(a, value, dtype=None):
    a = a.astype(dtype or a.dtype)
    a.flat[0] = value
    return a


def acc_hi(p):
    return (1 << (p.acc_bits - 1)) - 1


def bias_over(p):
    p.tensors["L0.bias"] = poke(p.tensors["L0.bias"], acc_hi(p) + 1)


def thr_over(p):
    p.manifest["thresholds"][0] = acc_hi(p) + 1


def out_one(p):
    p.manifest["layers"][-1]["out"] = 1


def thr_short(p):
    p.manifest["thresholds"] = p.manifest["thresholds"][:-1]


def thr_increasing(p):
    thr = p.manifest["thresholds"]
    thr[3] = thr[2] + 1


def lut_long(p):
    p.manifest["lut"] = p.manifest["lut"] + [1]


def lut_first(p):
    p.manifest["lut"][0] -= 1


def lut_second(p):
    p.manifest["lut"][1] += 1


def both(*fs):
    def f(p):
        for g in fs:
            g(p)
    return f


R = pytest.param
# (base package, mutation, substrings the message must contain)
REJECT = [
    # header
    R("ttfs_dense", setm("format", "logspike"), ["format = 'logspike'", "'logspike-net'"], id="format-wrong"),
    R("ttfs_dense", delm("format"), ["format = None", "'logspike-net'"], id="format-missing"),
    R("ttfs_dense", setm("version", 3), ["version = 3", "must be one of [1, 2]"], id="version-3"),
    R("ttfs_dense", setm("version", "1"), ["version = '1'", "must be one of [1, 2]"], id="version-string"),
    # version 2: a spiking layer's own leak and reset value
    R("ms_dense", setl(0, "v_reset", 0), ["layers[0].v_reset = 0", "version-2 field", "declares version 1"], id="v2-field-in-v1"),
    R("ms_dense", setl(0, "leak_shift", 2), ["layers[0].leak_shift = 2", "version-2 field"], id="v2-leak-in-v1"),
    R("ttfs_dense", both(setm("version", 2), setl(0, "v_reset", 0)), ["layers[0].v_reset = 0", "not a field of a ttfs layer"], id="v2-reset-ttfs"),
    R("ms_dense", both(setm("version", 2), setl(2, "v_reset", 0)), ["layers[2].v_reset = 0", "not a field of the output layer"], id="v2-reset-output"),
    R("ms_dense", both(setm("version", 2), setl(0, "v_reset", 1 << 10)), ["layers[0].v_reset = 1024", "<= 1023"], id="v2-reset-high"),
    R("ms_dense", both(setm("version", 2), setl(0, "v_reset", -(1 << 10) - 1)), ["layers[0].v_reset = -1025", ">= -1024"], id="v2-reset-low"),
    R("ms_dense", both(setm("version", 2), setl(1, "leak_shift", 32)), ["layers[1].leak_shift = 32", "<= 31"], id="v2-leak-high"),
    R("ms_dense", both(setm("version", 2), setl(0, "leak_shift", 1.0)), ["layers[0].leak_shift = 1.0", "must be an integer"], id="v2-leak-float"),
    R("ms_conv", both(setm("version", 2), setl(1, "v_reset", 0)), ["layers[1].v_reset = 0", "not a field of maxpool2d"], id="v2-reset-on-pool"),
    R("ms_conv", both(setm("version", 2), setl(3, "leak_shift", 1)), ["layers[3].leak_shift = 1", "not a field of flatten"], id="v2-leak-on-flatten"),
    R("ttfs_dense", setm("mode", "rate"), ["mode = 'rate'", "'ttfs', 'multistep'"], id="mode-bad"),
    R("ttfs_dense", delm("tau"), ["tau = None", "missing"], id="missing-tau"),
    R("ms_dense", delm("exit"), ["exit = None", "missing"], id="missing-exit"),
    R("ttfs_dense", delm("acc_bits"), ["acc_bits = None", "missing"], id="missing-acc_bits"),
    R("ttfs_dense", setm("comment", "hi"), ["comment = 'hi'", "not a field of a ttfs package"], id="extra-field"),
    R("ttfs_dense", setm("leak_shift", 0), ["leak_shift = 0", "not a field of a ttfs package"], id="ttfs-has-leak_shift"),
    R("ttfs_dense", setm("exit", {"margin": None, "min_steps": 1}), ["exit = ", "not a field of a ttfs package"], id="ttfs-has-exit"),
    R("ms_dense", setm("tau", 1), ["tau = 1", "not a field of a multistep package"], id="ms-has-tau"),
    R("ms_dense", setm("thresholds", [1024]), ["thresholds = [1024]", "not a field of a multistep package"], id="ms-has-thresholds"),
    # input_shape
    R("ttfs_dense", setm("input_shape", 12), ["input_shape = 12", "[N] or [C, H, W]"], id="input_shape-int"),
    R("ttfs_dense", setm("input_shape", (12,)), ["input_shape = (12,)", "[N] or [C, H, W]"], id="input_shape-tuple"),
    R("ttfs_conv", setm("input_shape", [6, 6]), ["input_shape = [6, 6]", "[N] or [C, H, W]"], id="input_shape-len2"),
    R("ttfs_dense", setm("input_shape", []), ["input_shape = []", "[N] or [C, H, W]"], id="input_shape-empty"),
    R("ttfs_conv", setm("input_shape", [1, 0, 6]), ["input_shape[1] = 0", ">= 1"], id="input_shape-zero"),
    R("ttfs_dense", setm("input_shape", [-12]), ["input_shape[0] = -12", ">= 1"], id="input_shape-negative"),
    R("ttfs_dense", setm("input_shape", [12.0]), ["input_shape[0] = 12.0", "integer"], id="input_shape-float"),
    # widths
    R("ttfs_dense", setm("weight_bits", 1), ["weight_bits = 1", ">= 2"], id="weight_bits-1"),
    R("ttfs_dense", setm("weight_bits", 9), ["weight_bits = 9", "<= 8"], id="weight_bits-9"),
    R("ttfs_dense", setm("frac_bits", 7), ["frac_bits = 7", ">= 8"], id="frac_bits-7"),
    R("ttfs_dense", setm("frac_bits", 25), ["frac_bits = 25", "<= 24"], id="frac_bits-25"),
    R("ttfs_dense", setm("acc_bits", 7), ["acc_bits = 7", ">= 8"], id="acc_bits-7"),
    R("ttfs_dense", setm("acc_bits", 63), ["acc_bits = 63", "<= 62"], id="acc_bits-63"),
    R("ttfs_dense", setm("acc_bits", F + 1), [f"acc_bits = {F + 1}", f"frac_bits + 2 = {F + 2}"], id="acc_bits-below-F+2"),
    # non-integers where an int is required
    R("ttfs_dense", setm("weight_bits", 4.0), ["weight_bits = 4.0", "must be an integer"], id="weight_bits-float"),
    R("ttfs_dense", setm("weight_bits", True), ["weight_bits = True", "must be an integer"], id="weight_bits-bool"),
    R("ttfs_dense", setm("weight_bits", "4"), ["weight_bits = '4'", "must be an integer"], id="weight_bits-string"),
    R("ttfs_dense", setm("frac_bits", None), ["frac_bits = None", "must be an integer"], id="frac_bits-null"),
    R("ttfs_dense", setm("acc_bits", 30.0), ["acc_bits = 30.0", "must be an integer"], id="acc_bits-float"),
    R("ttfs_dense", setm("time_steps", 8.0), ["time_steps = 8.0", "must be an integer"], id="time_steps-float"),
    R("ttfs_dense", setm("tau", False), ["tau = False", "must be an integer"], id="tau-bool"),
    R("ttfs_dense", setitem("thresholds", 2, 500.0), ["thresholds[2] = 500.0", "must be an integer"], id="threshold-float"),
    R("ttfs_dense", setitem("lut", 0, 1024.0), ["lut[0] = 1024.0", "must be an integer"], id="lut-float"),
    R("ms_dense", setm("leak_shift", "1"), ["leak_shift = '1'", "must be an integer"], id="leak_shift-string"),
    R("ms_dense", setexit("min_steps", True), ["exit.min_steps = True", "must be an integer"], id="min_steps-bool"),
    R("ms_dense", setexit("margin", 1.5), ["exit.margin = 1.5", "must be an integer"], id="margin-float"),
    R("ttfs_dense", setl(0, "out", 6.0), ["layers[0].out = 6.0", "must be an integer"], id="dense-out-float"),
    R("ttfs_conv", setl(0, "kernel", "3"), ["layers[0].kernel = '3'", "must be an integer"], id="conv-kernel-string"),
    R("ttfs_dense", setl(1, "exp_offset", True), ["layers[1].exp_offset = True", "must be an integer"], id="exp_offset-bool"),
    # ttfs fields
    R("ttfs_dense", setm("time_steps", 0), ["time_steps = 0", ">= 1"], id="ttfs-time_steps-0"),
    R("ttfs_dense", setm("time_steps", 256), ["time_steps = 256", "<= 255"], id="ttfs-time_steps-256"),
    R("ttfs_dense", setm("tau", 3), ["tau = 3", "power of 2"], id="tau-3"),
    R("ttfs_dense", setm("tau", 6), ["tau = 6", "power of 2"], id="tau-6"),
    R("ttfs_dense", setm("tau", 0), ["tau = 0", ">= 1"], id="tau-0"),
    R("ttfs_dense", setm("tau", 128), ["tau = 128", "<= 64"], id="tau-128"),
    R("ttfs_dense", lut_long, ["lut = [", "tau = 2"], id="lut-too-long"),
    R("ttfs_dense", setm("lut", [1 << F]), ["lut = [1024]", "tau = 2"], id="lut-too-short"),
    R("ttfs_dense", setm("lut", 1024), ["lut = 1024", "tau = 2"], id="lut-not-list"),
    R("ttfs_dense", lut_first, [f"lut[0] = {(1 << F) - 1}", f"= {1 << F}"], id="lut0-not-2^F"),
    R("ttfs_dense", lut_second, ["lut[1] = 725", "= 724"], id="lut1-wrong"),
    R("ttfs_dense", thr_short, ["thresholds = 'list of 7'", "time_steps = 8"], id="thresholds-short"),
    R("ttfs_dense", setm("thresholds", 1024), ["thresholds = 1024", "time_steps = 8"], id="thresholds-not-list"),
    R("ttfs_dense", thr_increasing, ["thresholds[3] = ", "<= thresholds[2]", "non-increasing"], id="thresholds-increasing"),
    R("ttfs_dense", setitem("thresholds", 7, 0), ["thresholds[7] = 0", ">= 1"], id="threshold-zero"),
    R("ttfs_dense", setitem("thresholds", 7, -3), ["thresholds[7] = -3", ">= 1"], id="threshold-negative"),
    R("ttfs_dense", thr_over, ["thresholds[0] = ", "must be <= "], id="threshold-above-acc"),
    # multistep fields
    R("ms_dense", setm("time_steps", 0), ["time_steps = 0", ">= 1"], id="ms-time_steps-0"),
    R("ms_dense", setm("time_steps", 4096), ["time_steps = 4096", "<= 4095"], id="ms-time_steps-4096"),
    R("ms_dense", setm("leak_shift", -1), ["leak_shift = -1", ">= 0"], id="leak_shift-negative"),
    R("ms_dense", setm("leak_shift", 32), ["leak_shift = 32", "<= 31"], id="leak_shift-32"),
    R("ms_dense", setm("exit", None), ["exit = None", "min_steps"], id="exit-null"),
    R("ms_dense", setm("exit", [5, 2]), ["exit = [5, 2]", "min_steps"], id="exit-list"),
    R("ms_dense", setm("exit", {"margin": 5}), ["exit = {'margin': 5}", "min_steps"], id="exit-missing-key"),
    R("ms_dense", setexit("patience", 3), ["exit = {", "patience", "min_steps"], id="exit-extra-key"),
    R("ms_dense", setexit("margin", -1), ["exit.margin = -1", ">= 0"], id="margin-negative"),
    R("ms_dense", setexit("min_steps", 0), ["exit.min_steps = 0", ">= 1"], id="min_steps-0"),
    R("ms_dense", setexit("min_steps", 9), ["exit.min_steps = 9", "<= 8"], id="min_steps-above-T"),
    R("ms_dense", out_one, ["exit.margin = 5", "at least 2 neurons"], id="margin-with-1-output"),
    # layers
    R("ttfs_dense", setm("layers", []), ["layers = []", "non-empty list"], id="layers-empty"),
    R("ttfs_dense", setm("layers", {"type": "dense"}), ["layers = {", "non-empty list"], id="layers-not-list"),
    R("ttfs_dense", setl(0, "type", "relu"), ["layers[0].type = 'relu'", "'dense', 'conv2d', 'maxpool2d', 'flatten'"], id="layer-type-unknown"),
    R("ttfs_dense", setl(1, "type", ["dense"]), ["layers[1].type = ['dense']", "must be one of"], id="layer-type-list"),
    R("ttfs_dense", layers(lambda ls: ls[:1] + ["dense"] + ls[2:]), ["layers[1].type = 'dense'", "must be one of"], id="layer-not-object"),
    R("ttfs_dense", dell(1, "out"), ["layers[1].out = None", "missing"], id="dense-missing-out"),
    R("ttfs_conv", dell(0, "stride"), ["layers[0].stride = None", "missing"], id="conv-missing-stride"),
    R("ttfs_conv", dell(0, "exp_offset"), ["layers[0].exp_offset = None", "missing"], id="conv-missing-exp_offset"),
    R("ttfs_conv", dell(1, "kernel"), ["layers[1].kernel = None", "missing"], id="maxpool-missing-kernel"),
    R("ttfs_dense", setl(0, "activation", "relu"), ["layers[0].activation = 'relu'", "not a field of dense"], id="dense-extra-key"),
    R("ttfs_conv", setl(1, "stride", 2), ["layers[1].stride = 2", "not a field of maxpool2d"], id="maxpool-extra-key"),
    R("ttfs_conv", setl(3, "exp_offset", 0), ["layers[3].exp_offset = 0", "not a field of flatten"], id="flatten-extra-key"),
    R("ttfs_dense", setl(2, "in", 7), ["layers[2].in = 7", "incoming size 5"], id="dense-in-mismatch"),
    R("ttfs_dense", setl(0, "in", 11), ["layers[0].in = 11", "incoming size 12"], id="dense-in-mismatch-input"),
    R("ttfs_dense", setl(0, "out", 0), ["layers[0].out = 0", ">= 1"], id="dense-out-zero"),
    R("ttfs_conv", layers(lambda ls: [l for l in ls if l["type"] != "flatten"]),
      ["layers[3].type = 'dense'", "1-D input", "[2, 2, 2]", "flatten"], id="dense-after-3d"),
    R("ttfs_conv", setl(2, "in_shape", [3, 6, 6]), ["layers[2].in_shape = [3, 6, 6]", "incoming shape [3, 3, 3]"], id="conv-in_shape-mismatch"),
    R("ttfs_conv", setl(0, "in_shape", [1, 6]), ["layers[0].in_shape = [1, 6]", "[C, H, W]"], id="conv-in_shape-len2"),
    R("ttfs_conv", setl(0, "out_channels", 0), ["layers[0].out_channels = 0", ">= 1"], id="conv-out_channels-0"),
    R("ttfs_conv", setl(0, "stride", 0), ["layers[0].stride = 0", ">= 1"], id="conv-stride-0"),
    R("ttfs_conv", both(setl(0, "kernel", 9), setl(0, "padding", 1)),
      ["layers[0].kernel = 9", "larger than the padded input [1, 6, 6]", "padding 1"], id="conv-kernel-too-large"),
    R("ttfs_conv", setl(2, "kernel", 4), ["layers[2].kernel = 4", "larger than the padded input [3, 3, 3]"], id="conv2-kernel-too-large"),
    R("ttfs_conv", setl(0, "padding", 3), ["layers[0].padding = 3", "<= 2"], id="padding-equals-kernel"),
    R("ttfs_conv", setl(0, "padding", -1), ["layers[0].padding = -1", ">= 0"], id="padding-negative"),
    R("ttfs_conv", setl(1, "kernel", 7), ["layers[1].kernel = 7", "[6, 6]"], id="maxpool-kernel-too-large"),
    R("ttfs_conv", setl(1, "kernel", 0), ["layers[1].kernel = 0", ">= 1"], id="maxpool-kernel-0"),
    R("ttfs_dense", layers(lambda ls: [{"type": "flatten"}] + ls), ["layers[0].type = 'flatten'", "[C, H, W]", "[12]"], id="flatten-on-1d"),
    R("ttfs_dense", layers(lambda ls: [{"type": "maxpool2d", "kernel": 2}] + ls), ["layers[0].type = 'maxpool2d'", "[C, H, W]", "[12]"], id="maxpool-on-1d"),
    R("ttfs_dense", layers(lambda ls: [dict(ls[0], type="conv2d")] + ls[1:]), ["layers[0]", "not a field of conv2d"], id="dense-keys-as-conv"),
    R("ttfs_conv", layers(lambda ls: ls[:4]), ["layers[3].type = 'flatten'", "last layer", "must be dense"], id="last-flatten"),
    R("ttfs_conv", layers(lambda ls: ls[:1]), ["layers[0].type = 'conv2d'", "last layer", "must be dense"], id="last-conv"),
    R("ttfs_dense", setl(1, "exp_offset", 33), ["layers[1].exp_offset = 33", "<= 32"], id="exp_offset-33"),
    R("ttfs_conv", setl(0, "exp_offset", -33), ["layers[0].exp_offset = -33", ">= -32"], id="exp_offset--33"),
    R("ms_conv", setm("layers", [{"type": "maxpool2d", "kernel": 2},  # [1, 6, 6] -> [1, 3, 3]
                                 {"type": "conv2d", "in_shape": [1, 3, 3], "out_channels": 2, "kernel": 3, "stride": 1,
                                  "padding": 0, "exp_offset": 0},
                                 {"type": "flatten"}, {"type": "dense", "in": 2, "out": 4, "exp_offset": 0}]),
      ["layers[0].type = 'maxpool2d'", "before the first weighted layer"], id="ms-maxpool-before-weights"),
    # tensors
    R("ttfs_dense", deltensor("L1.sign"), ["L1.sign = None", "missing from tensors.npz"], id="missing-sign"),
    R("ttfs_conv", deltensor("L2.mag"), ["L2.mag = None", "missing from tensors.npz"], id="missing-mag"),
    R("ms_dense", deltensor("L2.bias"), ["L2.bias = None", "missing from tensors.npz"], id="missing-bias"),
    R("ttfs_dense", addtensor("L3.mag", np.zeros((3, 5), np.uint8)), ["L3.mag = None", "not an array of any weighted layer"], id="extra-array"),
    R("ttfs_conv", addtensor("L1.sign", np.zeros((3, 3), np.uint8)), ["L1.sign = None", "not an array of any weighted layer"], id="array-for-maxpool"),
    R("ttfs_dense", addtensor("L0.scale", np.ones(6, np.int64)), ["L0.scale = None", "not an array"], id="array-unknown-part"),
    R("ttfs_dense", tensor("L0.mag", lambda a: a.astype(np.float64)), ["L0.mag.dtype", "float64", "integer array"], id="mag-float"),
    R("ttfs_dense", tensor("L0.sign", lambda a: a.astype(bool)), ["L0.sign.dtype", "bool", "integer array"], id="sign-bool"),
    R("ttfs_dense", tensor("L1.bias", lambda a: a.astype(np.float32)), ["L1.bias.dtype", "float32", "integer array"], id="bias-float"),
    R("ttfs_dense", tensor("L1.bias", lambda a: a.astype(np.int32)), ["L1.bias.dtype = 'int32'", "int64"], id="bias-int32"),
    R("ttfs_dense", tensor("L1.bias", lambda a: a.astype(np.uint64)), ["L1.bias.dtype = 'uint64'", "int64"], id="bias-uint64"),
    R("ttfs_dense", tensor("L0.sign", lambda a: a.T.copy()), ["L0.sign.shape = [12, 6]", "[6, 12]"], id="sign-transposed"),
    R("ttfs_conv", tensor("L0.mag", lambda a: a[:, :, :2, :2].copy()), ["L0.mag.shape = [3, 1, 2, 2]", "[3, 1, 3, 3]"], id="conv-mag-shape"),
    R("ttfs_dense", tensor("L2.bias", lambda a: a[:2].copy()), ["L2.bias.shape = [2]", "[3]"], id="bias-shape"),
    R("ttfs_dense", tensor("L0.sign", lambda a: poke(a, 2)), ["L0.sign = 2", "0 or 1"], id="sign-2"),
    R("ttfs_dense", tensor("L0.sign", lambda a: poke(a, -1, np.int8)), ["L0.sign = -1", "0 or 1"], id="sign-negative"),
    R("ttfs_dense", tensor("L1.mag", lambda a: poke(a, 8)), ["L1.mag = 8", "[0, 7]", "weight_bits = 4"], id="mag-above-max"),
    R("ttfs_dense", tensor("L1.mag", lambda a: poke(a, -1, np.int16)), ["L1.mag = -1", "[0, 7]"], id="mag-negative"),
    R("ttfs_dense", bias_over, ["L0.bias = ", "must fit acc_bits"], id="bias-above-acc"),
]


@pytest.mark.parametrize("base,mutate,expect", REJECT)
def test_reject(base, mutate, expect):
    pkg = build(*BASES[base]).copy()
    mutate(pkg)
    with pytest.raises(PackageError) as ei:
        validate(pkg)
    msg = str(ei.value)
    for s in expect:
        assert s in msg, f"{s!r} not in {msg!r}"


def test_reject_bias_below_acc():
    pkg = build("ttfs", "dense")
    lo = -(1 << (pkg.acc_bits - 1))
    pkg.tensors["L2.bias"][1] = lo - 1
    with pytest.raises(PackageError, match=rf"L2\.bias = {lo - 1}: must fit acc_bits = {pkg.acc_bits}: \[{lo}, {-lo - 1}\]"):
        validate(pkg)


def test_reject_manifest_not_object():
    with pytest.raises(PackageError, match=r"manifest = 'list': must be a JSON object"):
        validate(Package([1, 2], {}))


def test_version2_neurons_accepted_and_round_trip(tmp_path):
    pkg = build("multistep", "conv").copy()
    pkg.manifest["version"] = 2
    pkg.layers[0].update(leak_shift=3, v_reset=-(1 << F))
    pkg.layers[2].update(v_reset=(1 << F) - 1)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), F + 2)
    validate(pkg)
    back = read(write(pkg, tmp_path / "p"))
    assert back.manifest == pkg.manifest
    assert [back.layer_leak(i) for i in (0, 2)] == [3, 1] and [back.layer_reset(i) for i in (0, 2)] == [-(1 << F), (1 << F) - 1]


def test_ttfs_tau_any_power_of_two_accepted():
    for tau in (1, 4, 64):
        pkg = build("ttfs", "dense")
        pkg.manifest.update(tau=tau, lut=arith.make_lut(F, tau))
        pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), F + 2)
        validate(pkg)


def test_edges_accepted():
    """The limits themselves are valid: the checks are not off by one."""
    pkg = build("multistep", "dense")
    pkg.manifest["exit"] = {"margin": 0, "min_steps": pkg.time_steps}
    pkg.manifest["leak_shift"] = 0
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), F + 2)  # no leak: the potentials grow higher
    validate(pkg)
    pkg.manifest["exit"]["margin"] = None
    pkg.manifest["layers"][-1]["out"] = 1  # one output neuron is fine without a margin
    pkg.tensors = {k: (v[:1] if k.startswith("L2.") else v) for k, v in pkg.tensors.items()}
    validate(pkg)
    pkg = build("ttfs", "conv")
    pkg.manifest["layers"][1]["kernel"] = 6  # pool the whole 6x6 map
    pkg.manifest["layers"][2] = dict(pkg.manifest["layers"][2], in_shape=[3, 1, 1], kernel=1)
    pkg.tensors["L2.sign"] = pkg.tensors["L2.sign"][:, :, :1, :1].copy()
    pkg.tensors["L2.mag"] = pkg.tensors["L2.mag"][:, :, :1, :1].copy()
    pkg.manifest["layers"][4]["in"] = 2
    pkg.tensors["L4.sign"] = pkg.tensors["L4.sign"][:, :2].copy()
    pkg.tensors["L4.mag"] = pkg.tensors["L4.mag"][:, :2].copy()
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), F + 2)
    validate(pkg)
    pkg = build("ttfs", "dense")
    pkg.manifest["thresholds"] = [5] * pkg.time_steps  # flat table is non-increasing
    pkg.manifest["thresholds"][0] = (1 << (pkg.acc_bits - 1)) - 1
    validate(pkg)


# ------------------------------------------------------------------ acc_bits too narrow


def hand_package(acc_bits: int = 12) -> Package:
    """Two dense layers, F = 8, W = 3, tau = 1: every contribution is a power of two.

    With tau = 1 the product at code t of magnitude code mag is 2^F >> (t + mag - 1 - E)
    (or << for negative shifts). Code 0 gives the largest product.
      layer 0 (E = 0): mag 1 -> 256, mag 2 -> 128, mag 3 -> 64
      layer 1 (E = 3): mag 1 -> 2048, mag 2 -> 1024, mag 3 -> 512
    """
    m = {"format": "logspike-net", "version": 1, "mode": "ttfs", "input_shape": [3], "weight_bits": 3,
         "frac_bits": 8, "acc_bits": acc_bits, "time_steps": 4, "tau": 1, "lut": [256],
         "thresholds": [256, 128, 64, 32],
         "layers": [{"type": "dense", "in": 3, "out": 2, "exp_offset": 0},
                    {"type": "dense", "in": 2, "out": 2, "exp_offset": 3}]}
    t = {"L0.sign": np.array([[0, 1, 0], [0, 0, 1]], np.uint8),
         "L0.mag": np.array([[1, 2, 0], [3, 1, 1]], np.uint8),
         "L0.bias": np.array([10, -5], np.int64),
         "L1.sign": np.array([[1, 0], [0, 0]], np.uint8),
         "L1.mag": np.array([[1, 3], [2, 0]], np.uint8),
         "L1.bias": np.array([0, 100], np.int64)}
    return Package(m, t)


# (lo, hi) per neuron, by hand:
#   L0 n0: +256 (mag 1), -128 (mag 2), bias 10   -> [10 - 128, 10 + 256]      = [-118, 266]
#   L0 n1: +64 (mag 3), +256 (mag 1), -256, b -5 -> [-5 - 256, -5 + 320]      = [-261, 315]
#   L1 n0: -2048 (mag 1), +512 (mag 3), bias 0   -> [-2048, 512]
#   L1 n1: +1024 (mag 2), bias 100               -> [100, 1124]
HAND_BOUNDS = {0: ([-118, -261], [266, 315]), 1: ([-2048, 100], [512, 1124])}
# widest value -2048 needs 12 signed bits


def test_hand_bounds():
    b = potential_bounds(hand_package())
    assert set(b) == {0, 1}
    for i, (lo, hi) in HAND_BOUNDS.items():
        assert b[i][0].tolist() == lo and b[i][1].tolist() == hi, i
    assert required_acc_bits(hand_package()) == 12


def test_acc_bits_exactly_required_passes():
    validate(hand_package(12))


def test_acc_bits_one_less_than_required_rejected():
    with pytest.raises(PackageError, match=r"acc_bits = 11: too narrow: .*needs 12 bits"):
        validate(hand_package(11))


def test_acc_bits_too_narrow_random():
    pkg = random_package(np.random.default_rng(7), "ttfs", "dense", frac_bits=8, weight_bits=6)
    need = required_acc_bits(pkg)
    assert need > 8 + 2  # so the F + 2 rule does not fire first
    pkg.manifest["acc_bits"] = need
    validate(pkg)
    pkg.manifest["acc_bits"] = need - 1
    with pytest.raises(PackageError, match=rf"acc_bits = {need - 1}: too narrow.*needs {need} bits"):
        validate(pkg)


def test_acc_bits_too_narrow_multistep():
    pkg = build("multistep", "conv")
    need = required_acc_bits(pkg)
    assert need > F + 2
    pkg.manifest["acc_bits"] = need - 1
    with pytest.raises(PackageError, match=rf"acc_bits = {need - 1}: too narrow.*needs {need} bits"):
        validate(pkg)


# ------------------------------------------------------------------ read side


@pytest.fixture
def on_disk(tmp_path):
    return write(build("ttfs", "conv"), tmp_path / "pkg")


def test_read_missing_directory(tmp_path):
    with pytest.raises(PackageError, match=r"nope'?: not a directory"):
        read(tmp_path / "nope")


def test_read_path_is_a_file(on_disk):
    with pytest.raises(PackageError, match=r"not a directory"):
        read(on_disk / "manifest.json")


def test_read_manifest_missing(on_disk):
    (on_disk / "manifest.json").unlink()
    with pytest.raises(PackageError, match=r"manifest\.json is missing"):
        read(on_disk)


def test_read_tensors_missing(on_disk):
    (on_disk / "tensors.npz").unlink()
    with pytest.raises(PackageError, match=r"tensors\.npz is missing"):
        read(on_disk)


def test_read_manifest_not_json(on_disk):
    text = (on_disk / "manifest.json").read_text()
    (on_disk / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(PackageError, match=r"manifest\.json: not valid JSON"):
        read(on_disk)


def test_read_manifest_not_utf8(on_disk):
    (on_disk / "manifest.json").write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(PackageError, match=r"manifest\.json: not valid JSON"):
        read(on_disk)


def test_read_manifest_json_list(on_disk):
    (on_disk / "manifest.json").write_text("[1, 2]")
    with pytest.raises(PackageError, match=r"manifest = 'list'"):
        read(on_disk)


def test_read_tensors_corrupted(on_disk):
    raw = bytearray((on_disk / "tensors.npz").read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 64] = bytes(64)  # zero a stretch in the middle of the zip
    (on_disk / "tensors.npz").write_bytes(bytes(raw))
    with pytest.raises(PackageError, match=r"tensors\.npz: unreadable"):
        read(on_disk)


def test_read_tensors_garbage(on_disk):
    (on_disk / "tensors.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(PackageError, match=r"tensors\.npz: unreadable"):
        read(on_disk)


def test_read_tensors_truncated(on_disk):
    raw = (on_disk / "tensors.npz").read_bytes()
    (on_disk / "tensors.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(PackageError, match=r"tensors\.npz: unreadable"):
        read(on_disk)


def test_read_tensors_object_array_refused(on_disk):
    np.savez(on_disk / "tensors.npz", **{"L0.sign": np.array([None, 1], dtype=object)})
    with pytest.raises(PackageError, match=r"tensors\.npz: unreadable"):
        read(on_disk)


def test_read_validates(on_disk, tmp_path):
    m = json.loads((on_disk / "manifest.json").read_text())
    m["layers"][2]["in_shape"] = [3, 6, 6]
    (on_disk / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PackageError, match=r"layers\[2\]\.in_shape = \[3, 6, 6\]"):
        read(on_disk)
    other = write(build("ttfs", "dense"), tmp_path / "dense")
    shutil.copy(other / "tensors.npz", tmp_path / "pkg" / "tensors.npz")
    (on_disk / "manifest.json").write_text(json.dumps(dict(m, layers=conv_layers())))
    with pytest.raises(PackageError, match=r"L0\.sign\.shape"):
        read(on_disk)


# ------------------------------------------------------------------ worst-case bounds


def worst_inputs(pkg: Package, i: int, side: str) -> np.ndarray:
    """Per neuron j of dense layer i: code 0 where the weight pushes V towards `side`, silent elsewhere."""
    sign, mag, _ = pkg.weights(i)
    want = 0 if side == "hi" else 1
    return np.where((mag > 0) & (sign == want), 0, pkg.time_steps).astype(np.int64)


def test_hand_bound_attained_by_golden():
    # The output layer of a one-layer package: logits are the potentials themselves.
    pkg = hand_package()
    one = Package(dict(pkg.manifest, layers=[pkg.layers[0]]), {k: v for k, v in pkg.tensors.items() if k.startswith("L0.")})
    one.manifest["acc_bits"] = max(required_acc_bits(one), 10)
    lo, hi = potential_bounds(one)[0]
    assert lo.tolist() == HAND_BOUNDS[0][0] and hi.tolist() == HAND_BOUNDS[0][1]
    x_hi = worst_inputs(one, 0, "hi")
    assert x_hi.tolist() == [[0, 4, 4], [0, 0, 4]]  # by hand: positive weights at code 0
    res = golden.run(one, x_hi)
    assert np.diag(res["logits"]).tolist() == [266, 315]
    res = golden.run(one, worst_inputs(one, 0, "lo"))
    assert np.diag(res["logits"]).tolist() == [-118, -261]


def _one_layer_ttfs(seed: int) -> Package:
    """A random single dense layer (input -> output) ttfs package."""
    pkg = random_package(np.random.default_rng(seed), "ttfs", "dense")
    i = pkg.output_index()
    last = dict(pkg.layers[i], **{"in": pkg.input_shape[0]})
    rng = np.random.default_rng(seed + 100)
    shape = (last["out"], last["in"])
    t = {"L0.sign": (rng.random(shape) < 0.5).astype(np.uint8),
         "L0.mag": rng.integers(0, arith.max_mag(pkg.weight_bits) + 1, size=shape).astype(np.uint8),
         "L0.bias": pkg.tensors[f"L{i}.bias"].copy()}
    one = Package(dict(pkg.manifest, layers=[last]), t)
    one.manifest["acc_bits"] = max(required_acc_bits(one), pkg.frac_bits + 2)
    return validate(one)


@pytest.mark.parametrize("seed", range(4))
def test_bound_attained_random_dense_ttfs(seed):
    one = _one_layer_ttfs(seed)
    lo, hi = potential_bounds(one)[0]
    res_hi = golden.run(one, worst_inputs(one, 0, "hi"))
    res_lo = golden.run(one, worst_inputs(one, 0, "lo"))
    np.testing.assert_array_equal(np.diag(res_hi["logits"]), hi)
    np.testing.assert_array_equal(np.diag(res_lo["logits"]), lo)
    # and at exactly the proven width the golden model does not overflow on them
    assert one.acc_bits == max(required_acc_bits(one), one.frac_bits + 2)


def test_bound_attained_hidden_layer():
    pkg = random_package(np.random.default_rng(3), "ttfs", "dense")
    g = golden.Golden(pkg)
    lo, hi = potential_bounds(pkg)[0]
    for side, want in (("hi", hi), ("lo", lo)):
        v = g.layers[0].weighted_sum(torch.from_numpy(worst_inputs(pkg, 0, side)), pad_value=pkg.time_steps)
        np.testing.assert_array_equal(np.diag(v.numpy()), want)


def _python_bounds(pkg: Package, i: int):
    """Independent recomputation for ttfs with Python ints: bias + sum of code-0 contributions by sign."""
    sign, mag, bias = pkg.weights(i)
    l = pkg.layers[i]
    s2, m2 = sign.reshape(len(bias), -1), mag.reshape(len(bias), -1)
    lo, hi = [], []
    for j in range(len(bias)):
        c = [arith.ttfs_contrib(0, int(s), int(m), l["exp_offset"], pkg.lut, pkg.tau, pkg.time_steps)
             for s, m in zip(s2[j], m2[j])]
        lo.append(int(bias[j]) + sum(x for x in c if x < 0))
        hi.append(int(bias[j]) + sum(x for x in c if x > 0))
    return lo, hi


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(3))
def test_bounds_match_independent_ttfs(kind, seed):
    pkg = random_package(np.random.default_rng(seed), "ttfs", kind)
    b = potential_bounds(pkg)
    assert list(b) == pkg.weighted_indices()
    for i in pkg.weighted_indices():
        lo, hi = _python_bounds(pkg, i)
        assert b[i][0].tolist() == lo and b[i][1].tolist() == hi


class Recorder(golden.Golden):
    """Golden model that records min/max of every checked potential, per layer and neuron."""

    def __init__(self, pkg):
        super().__init__(pkg)
        self.seen = {}

    def _check(self, v, i, what, active=None):
        # records every sample, exited or not: the bound covers all T_max steps either way
        per = v.transpose(0, 1).reshape(v.shape[1], -1) if v.dim() > 2 else v.T
        mn, mx = per.min(dim=1).values.numpy(), per.max(dim=1).values.numpy()
        if i in self.seen:
            mn, mx = np.minimum(mn, self.seen[i][0]), np.maximum(mx, self.seen[i][1])
        self.seen[i] = (mn, mx)
        super()._check(v, i, what, active)


@pytest.mark.parametrize("mode", ["ttfs", "multistep"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(3))
def test_bounds_sound_on_random_inputs(mode, kind, seed):
    rng = np.random.default_rng(seed)
    pkg = random_package(rng, mode, kind)  # acc_bits is the proven minimum
    bounds = potential_bounds(pkg)
    rec = Recorder(pkg)
    x = random_inputs(rng, pkg, 128)
    if mode == "ttfs" and kind == "dense":
        # add the constructed worst cases of the first layer
        x = np.concatenate([x, worst_inputs(pkg, 0, "hi"), worst_inputs(pkg, 0, "lo")])
    rec.run(x)
    assert set(rec.seen) == set(bounds)
    for i, (mn, mx) in rec.seen.items():
        lo, hi = bounds[i]
        assert (mn >= lo).all() and (mx <= hi).all(), (i, mn, lo, mx, hi)
    if mode == "ttfs" and kind == "dense":
        lo, hi = bounds[0]
        np.testing.assert_array_equal(rec.seen[0][1], hi)
        np.testing.assert_array_equal(rec.seen[0][0], lo)


def test_output_logits_within_bounds_ttfs_dense():
    for seed in range(3):
        rng = np.random.default_rng(seed + 10)
        pkg = random_package(rng, "ttfs", "dense")
        lo, hi = potential_bounds(pkg)[pkg.output_index()]
        res = golden.run(pkg, random_inputs(rng, pkg, 200, silent=0.1))
        assert (res["logits"] >= lo).all() and (res["logits"] <= hi).all()


def test_spec_states_the_limits_the_reader_enforces():
    """SPEC.md section 1.1 names each range that model/package.py checks (model/arith.py's constants)."""
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[2] / "SPEC.md").read_text()
    rows = {}
    for line in spec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows.setdefault(cells[0].split("`")[1], []).append(cells[1])
    for field, (lo, hi) in {"weight_bits": arith.WEIGHT_BITS_RANGE, "frac_bits": arith.FRAC_BITS_RANGE,
                            "acc_bits": arith.ACC_BITS_RANGE, "tau": arith.TAU_RANGE,
                            "leak_shift": arith.LEAK_SHIFT_RANGE, "exp_offset": arith.EXP_OFFSET_RANGE}.items():
        assert any(f"{lo}..{hi}" in r for r in rows[field]), (field, rows.get(field))
    assert any(f"ttfs {arith.TTFS_T_RANGE[0]}..{arith.TTFS_T_RANGE[1]}" in r and
               f"multistep {arith.MULTISTEP_T_RANGE[0]}..{arith.MULTISTEP_T_RANGE[1]}" in r for r in rows["time_steps"])
    padding = [line for line in spec.splitlines() if line.startswith("| conv `padding`")]
    assert padding and "0 .. `kernel` - 1" in padding[0]


def test_padding_beyond_the_spec_limit_is_refused_with_the_limit():
    rng = np.random.default_rng(5)
    pkg = random_package(rng, "ttfs", "conv", weight_bits=5, frac_bits=10)
    i = next(j for j, l in enumerate(pkg.layers) if l["type"] == "conv2d")
    pkg.manifest["layers"][i]["padding"] = pkg.layers[i]["kernel"]
    with pytest.raises(PackageError, match=rf"layers\[{i}\]\.padding = {pkg.layers[i]['kernel']}: must be <= {pkg.layers[i]['kernel'] - 1}"):
        validate(pkg)


# ---- residual shortcuts (SPEC version 2) ------------------------------------------------------------

def _residual():
    return randnet_residual(np.random.default_rng(5), "ttfs")


def randnet_residual(rng, mode):
    from logspike.model.randnet import random_residual_package

    for _ in range(50):   # a draw with a max-pool, so a shortcut can come from one
        pkg = random_residual_package(rng, mode)
        if any(l["type"] == "maxpool2d" for l in pkg.layers):
            return pkg
    raise AssertionError("no residual draw with a pool")


def _proj(pkg):
    return next(i for i, l in enumerate(pkg.layers) if l.get("shortcut", {}).get("kind") == "projection")


def _ident(pkg):
    return next(i for i, l in enumerate(pkg.layers) if l.get("shortcut", {}).get("kind") == "identity")


RESIDUAL_REJECT = [
    (lambda p: p.manifest.update(version=1), ["shortcut", "version-2 field", "declares version 1"]),
    (lambda p: p.layers[_ident(p)]["shortcut"].update(kind="sum"), ["shortcut.kind = 'sum'", "identity"]),
    (lambda p: p.layers[_ident(p)]["shortcut"].update(stride=1), ["shortcut.stride = 1", "not a field of a identity shortcut"]),
    (lambda p: p.layers[_proj(p)]["shortcut"].pop("stride"), ["shortcut.stride = None", "missing"]),
    (lambda p: p.layers[_ident(p)]["shortcut"].update({"from": _ident(p)}), ["shortcut.from", "must be <="]),
    (lambda p: p.layers[_ident(p)]["shortcut"].update({"from": -1}), ["shortcut.from = -1", ">= 0"]),
    (lambda p: p.layers[_ident(p)]["shortcut"].update(exp_offset=40), ["shortcut.exp_offset = 40", "<= 32"]),
    (lambda p: p.layers[_proj(p)]["shortcut"].update(stride=3), ["shortcut.stride = 3", "1x1 projection of stride 3"]),
    (lambda p: p.tensors.pop(f"L{_proj(p)}.sc_mag"), [".sc_mag = None", "missing from tensors.npz"]),
    (lambda p: p.tensors[f"L{_proj(p)}.sc_mag"].__setitem__((0, 0, 0, 0), 99), [".sc_mag = 99", "values must be in"]),
    (lambda p: p.tensors.update({f"L{_ident(p)}.sc_sign": np.zeros((1, 1, 1, 1), np.uint8)}), [".sc_sign", "not an array of any weighted layer"]),
    (lambda p: p.layers[-1].update(shortcut={"from": 0, "kind": "identity", "exp_offset": 0}), ["shortcut", "only a conv2d layer"]),
]


@pytest.mark.parametrize("mutate,expect", RESIDUAL_REJECT)
def test_residual_reject(mutate, expect):
    pkg = _residual().copy()
    mutate(pkg)
    with pytest.raises(PackageError) as ei:
        validate(pkg)
    for s in expect:
        assert s in str(ei.value), f"{s!r} not in {str(ei.value)!r}"


def test_residual_identity_shape_mismatch_refused():
    pkg = _residual().copy()
    i = _proj(pkg)
    sc = pkg.layers[i]["shortcut"]
    pkg.layers[i]["shortcut"] = {"from": 0, "kind": "identity", "exp_offset": sc["exp_offset"]}
    pkg.tensors.pop(f"L{i}.sc_sign")
    pkg.tensors.pop(f"L{i}.sc_mag")
    assert layer_shapes(pkg.input_shape, pkg.layers)[0] != layer_shapes(pkg.input_shape, pkg.layers)[i]
    with pytest.raises(PackageError, match=rf"layers\[{i}\]\.shortcut\.from = 0: an identity shortcut needs"):
        validate(pkg)


def test_residual_round_trip(tmp_path):
    for mode in ("ttfs", "multistep"):
        pkg = randnet_residual(np.random.default_rng(9), mode)
        back = read(write(pkg, tmp_path / mode))
        assert back.manifest == pkg.manifest and set(back.tensors) == set(pkg.tensors)
