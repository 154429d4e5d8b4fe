"""Network package on disk (SPEC section 1): write, read and validate.

Every check raises PackageError naming the field, the value and the limit;
nothing is clipped or guessed. `validate` also proves from the worst case that
no potential can leave the signed `acc_bits` range (SPEC section 2).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import arith

FORMAT = "logspike-net"
VERSION = 2          # the newest version this reader takes; every older one still loads unchanged
VERSIONS = (1, 2)
MODES = ("ttfs", "multistep")
WEIGHTED = ("dense", "conv2d")
LAYER_KEYS = {
    "dense": {"type", "in", "out", "exp_offset"},
    "conv2d": {"type", "in_shape", "out_channels", "kernel", "stride", "padding", "exp_offset"},
    "maxpool2d": {"type", "kernel"},
    "flatten": {"type"},
}
COMMON_KEYS = {"format", "version", "mode", "input_shape", "weight_bits", "frac_bits", "acc_bits", "time_steps", "layers"}
MODE_KEYS = {"ttfs": {"tau", "lut", "thresholds"}, "multistep": {"leak_shift", "exit"}}
# version 2: optional fields of a multistep spiking layer (SPEC section 1, "Version 2")
NEURON_KEYS = ("leak_shift", "v_reset")
# version 2: a conv2d layer's residual shortcut (SPEC section 1, "Residual connections")
SHORTCUT_KINDS = {"identity": {"from", "kind", "exp_offset"}, "projection": {"from", "kind", "stride", "exp_offset"}}


class PackageError(ValueError):
    """A package field is malformed or out of range."""


@dataclass
class Package:
    """Manifest fields plus the arrays, keyed `L{i}.sign` / `.mag` / `.bias`."""

    manifest: dict
    tensors: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["manifest"][name]
        except KeyError:
            raise AttributeError(name) from None

    def weights(self, i: int):
        """(sign, mag, bias) of weighted layer i."""
        return self.tensors[f"L{i}.sign"], self.tensors[f"L{i}.mag"], self.tensors[f"L{i}.bias"]

    def weighted_indices(self) -> list[int]:
        return [i for i, l in enumerate(self.layers) if l["type"] in WEIGHTED]

    def output_index(self) -> int:
        return self.weighted_indices()[-1]

    def shapes(self) -> list[tuple]:
        """Output shape of every layer, in order (validated packages only)."""
        return layer_shapes(self.input_shape, self.layers)

    def layer_leak(self, i: int) -> int:
        """multistep: the leak shift of spiking layer i (its own, else the package's)."""
        return self.layers[i].get("leak_shift", self.manifest["leak_shift"])

    def shortcut(self, i: int) -> dict | None:
        """Layer i's residual shortcut (SPEC version 2), or None."""
        return self.layers[i].get("shortcut")

    def shortcut_weights(self, i: int):
        """(sign, mag) of layer i's shortcut, [K, C_src, 1, 1]: a projection's arrays, or for an identity
        shortcut the fixed weight +2^E on each channel's own input (mag 1, the diagonal)."""
        sc = self.layers[i]["shortcut"]
        if sc["kind"] == "projection":
            return self.tensors[f"L{i}.sc_sign"], self.tensors[f"L{i}.sc_mag"]
        k = self.layers[i]["out_channels"]
        return np.zeros((k, k, 1, 1), np.uint8), np.eye(k, dtype=np.uint8).reshape(k, k, 1, 1)

    def layer_reset(self, i: int) -> int | None:
        """multistep: the value spiking layer i resets to after a spike, or None (subtract 2^F)."""
        return self.layers[i].get("v_reset")

    def copy(self) -> "Package":
        return Package(copy.deepcopy(self.manifest), {k: v.copy() for k, v in self.tensors.items()})


def _fail(field_name, value, limit):
    raise PackageError(f"{field_name} = {value!r}: {limit}")


def _int(name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        _fail(name, v, "must be an integer")
    if lo is not None and v < lo:
        _fail(name, v, f"must be >= {lo}")
    if hi is not None and v > hi:
        _fail(name, v, f"must be <= {hi}")
    return int(v)


def conv_out_size(size: int, k: int, s: int, p: int) -> int:
    """A conv output's height or width: kernel k, stride s, padding p."""
    return (size + 2 * p - k) // s + 1


def layer_shapes(input_shape, layers) -> list[tuple]:
    """Chain the shapes through the layers, checking every layer's geometry."""
    shape = tuple(input_shape)
    out = []
    for i, l in enumerate(layers):
        name = f"layers[{i}]"
        t = l["type"]
        if t == "dense":
            if len(shape) != 1:
                _fail(f"{name}.type", t, f"dense needs a 1-D input, got shape {list(shape)} (add a flatten layer)")
            if l["in"] != shape[0]:
                _fail(f"{name}.in", l["in"], f"must equal the incoming size {shape[0]}")
            shape = (l["out"],)
        elif t == "conv2d":
            if len(shape) != 3 or list(l["in_shape"]) != list(shape):
                _fail(f"{name}.in_shape", l["in_shape"], f"must equal the incoming shape {list(shape)}")
            k, s, p = l["kernel"], l["stride"], l["padding"]
            h, w = conv_out_size(shape[1], k, s, p), conv_out_size(shape[2], k, s, p)
            if h < 1 or w < 1:
                _fail(f"{name}.kernel", k, f"larger than the padded input {list(shape)} with padding {p}")
            shape = (l["out_channels"], h, w)
        elif t == "maxpool2d":
            if len(shape) != 3:
                _fail(f"{name}.type", t, f"maxpool2d needs a [C, H, W] input, got {list(shape)}")
            k = l["kernel"]
            if k > shape[1] or k > shape[2]:
                _fail(f"{name}.kernel", k, f"must be <= the input height and width {list(shape[1:])}")
            shape = (shape[0], shape[1] // k, shape[2] // k)
        elif t == "flatten":
            if len(shape) != 3:
                _fail(f"{name}.type", t, f"flatten needs a [C, H, W] input, got {list(shape)}")
            shape = (shape[0] * shape[1] * shape[2],)
        out.append(shape)
    return out


def weight_shape(layer) -> tuple:
    if layer["type"] == "dense":
        return (layer["out"], layer["in"])
    c = layer["in_shape"][0]
    return (layer["out_channels"], c, layer["kernel"], layer["kernel"])


def _check_manifest(m: dict):
    if not isinstance(m, dict):
        _fail("manifest", type(m).__name__, "must be a JSON object")
    if m.get("format") != FORMAT:
        _fail("format", m.get("format"), f"must be {FORMAT!r}")
    if m.get("version") not in VERSIONS:
        _fail("version", m.get("version"), f"must be one of {list(VERSIONS)}")
    mode = m.get("mode")
    if mode not in MODES:
        _fail("mode", mode, f"must be one of {list(MODES)}")
    need = COMMON_KEYS | MODE_KEYS[mode]
    missing = sorted(need - set(m))
    if missing:
        _fail(missing[0], None, "missing from the manifest")
    extra = sorted(set(m) - need)
    if extra:
        _fail(extra[0], m[extra[0]], f"is not a field of a {mode} package")

    shp = m["input_shape"]
    if not isinstance(shp, list) or len(shp) not in (1, 3):
        _fail("input_shape", shp, "must be a list [N] or [C, H, W]")
    for j, d in enumerate(shp):
        _int(f"input_shape[{j}]", d, 1, 1 << 20)
    _int("weight_bits", m["weight_bits"], *arith.WEIGHT_BITS_RANGE)
    _int("frac_bits", m["frac_bits"], *arith.FRAC_BITS_RANGE)
    _int("acc_bits", m["acc_bits"], *arith.ACC_BITS_RANGE)
    if m["acc_bits"] < m["frac_bits"] + 2:
        _fail("acc_bits", m["acc_bits"], f"must be >= frac_bits + 2 = {m['frac_bits'] + 2} to hold 2^F")

    if mode == "ttfs":
        T = _int("time_steps", m["time_steps"], *arith.TTFS_T_RANGE)
        tau = _int("tau", m["tau"], *arith.TAU_RANGE)
        if tau & (tau - 1):
            _fail("tau", tau, "must be a power of 2")
        lut = m["lut"]
        if not isinstance(lut, list) or len(lut) != tau:
            _fail("lut", lut, f"must be a list of tau = {tau} integers")
        want = arith.make_lut(m["frac_bits"], tau)
        for r, v in enumerate(lut):
            _int(f"lut[{r}]", v)
            if v != want[r]:
                _fail(f"lut[{r}]", v, f"must be round(2^F * 2^(-{r}/{tau})) = {want[r]}")
        thr = m["thresholds"]
        if not isinstance(thr, list) or len(thr) != T:
            _fail("thresholds", thr if not isinstance(thr, list) else f"list of {len(thr)}", f"must be a list of time_steps = {T} integers")
        hi = (1 << (m["acc_bits"] - 1)) - 1
        for t, v in enumerate(thr):
            _int(f"thresholds[{t}]", v, 1, hi)
            if t and v > thr[t - 1]:
                _fail(f"thresholds[{t}]", v, f"must be <= thresholds[{t - 1}] = {thr[t - 1]} (non-increasing)")
    else:
        _int("time_steps", m["time_steps"], *arith.MULTISTEP_T_RANGE)
        _int("leak_shift", m["leak_shift"], *arith.LEAK_SHIFT_RANGE)
        ex = m["exit"]
        if not isinstance(ex, dict) or set(ex) != {"margin", "min_steps"}:
            _fail("exit", ex, 'must be {"margin": int >= 0 or null, "min_steps": int >= 1}')
        if ex["margin"] is not None:
            _int("exit.margin", ex["margin"], 0, (1 << (m["acc_bits"] - 1)) - 1)
        _int("exit.min_steps", ex["min_steps"], 1, m["time_steps"])

    layers = m["layers"]
    if not isinstance(layers, list) or not layers:
        _fail("layers", layers, "must be a non-empty list")
    for i, l in enumerate(layers):
        name = f"layers[{i}]"
        if not isinstance(l, dict) or not isinstance(l.get("type"), str) or l["type"] not in LAYER_KEYS:
            _fail(f"{name}.type", l.get("type") if isinstance(l, dict) else l, f"must be one of {list(LAYER_KEYS)}")
        keys = LAYER_KEYS[l["type"]]
        if "shortcut" in l:
            _check_shortcut(m, layers, i, l["shortcut"])
            keys = keys | {"shortcut"}
        for k in NEURON_KEYS:
            if k in l and l["type"] in WEIGHTED:
                _check_neuron_field(m, layers, i, k, l[k])
                keys = keys | {k}
        if set(l) != keys:
            odd = sorted(set(l) ^ keys)[0]
            _fail(f"{name}.{odd}", l.get(odd), "missing" if odd in keys else f"is not a field of {l['type']}")
        if l["type"] == "dense":
            _int(f"{name}.in", l["in"], 1, 1 << 20)
            _int(f"{name}.out", l["out"], 1, 1 << 20)
        elif l["type"] == "conv2d":
            if not isinstance(l["in_shape"], list) or len(l["in_shape"]) != 3:
                _fail(f"{name}.in_shape", l["in_shape"], "must be [C, H, W]")
            for j, d in enumerate(l["in_shape"]):
                _int(f"{name}.in_shape[{j}]", d, 1, 1 << 20)
            _int(f"{name}.out_channels", l["out_channels"], 1, 1 << 20)
            _int(f"{name}.kernel", l["kernel"], 1, 64)
            _int(f"{name}.stride", l["stride"], 1, 64)
            _int(f"{name}.padding", l["padding"], 0, l["kernel"] - 1)
        elif l["type"] == "maxpool2d":
            _int(f"{name}.kernel", l["kernel"], 1, 64)
        if l["type"] in WEIGHTED:
            _int(f"{name}.exp_offset", l["exp_offset"], *arith.EXP_OFFSET_RANGE)
    if layers[-1]["type"] != "dense":
        _fail(f"layers[{len(layers) - 1}].type", layers[-1]["type"], "the last layer (the output layer) must be dense")
    shapes = layer_shapes(shp, layers)
    _check_shortcut_shapes(m, shapes)
    first = next((i for i, l in enumerate(layers) if l["type"] in WEIGHTED), None)
    if mode == "multistep" and any(l["type"] == "maxpool2d" for l in layers[:first]):
        _fail("layers[0].type", "maxpool2d", "multistep cannot pool the graded byte input before the first weighted layer (SPEC defines pooling of binary spikes only)")
    if mode == "multistep" and m["exit"]["margin"] is not None and shapes[-1][0] < 2:
        _fail("exit.margin", m["exit"]["margin"], "needs an output layer of at least 2 neurons")


def _check_neuron_field(m: dict, layers: list, i: int, key: str, value):
    """A version-2 neuron field of layers[i] (a weighted layer): only in a version-2 multistep package, only on
    a spiking layer, and in range."""
    name = f"layers[{i}].{key}"
    if m["version"] < 2:
        _fail(name, value, f"is a version-2 field; the package declares version {m['version']}")
    if m["mode"] != "multistep":
        _fail(name, value, "is not a field of a ttfs layer (multistep spiking layers only)")
    if i == max(j for j, l in enumerate(layers) if isinstance(l, dict) and l.get("type") in WEIGHTED):
        _fail(name, value, "is not a field of the output layer (it never fires, leaks or resets)")
    if key == "leak_shift":
        _int(name, value, *arith.LEAK_SHIFT_RANGE)
    else:
        one = 1 << m["frac_bits"]
        _int(name, value, -one, one - 1)


def _check_shortcut(m: dict, layers: list, i: int, sc):
    """layers[i].shortcut: a version-2 conv2d layer's second input, the output of an earlier layer with a
    [C, H, W] output (conv2d or maxpool2d), through an identity or a 1x1 projection (SPEC section 1)."""
    name = f"layers[{i}].shortcut"
    if m["version"] < 2:
        _fail(name, sc, f"is a version-2 field; the package declares version {m['version']}")
    if layers[i]["type"] != "conv2d":
        _fail(name, sc, "only a conv2d layer takes a shortcut")
    if not isinstance(sc, dict) or sc.get("kind") not in SHORTCUT_KINDS:
        _fail(f"{name}.kind", sc.get("kind") if isinstance(sc, dict) else sc, f"must be one of {list(SHORTCUT_KINDS)}")
    keys = SHORTCUT_KINDS[sc["kind"]]
    if set(sc) != keys:
        odd = sorted(set(sc) ^ keys)[0]
        _fail(f"{name}.{odd}", sc.get(odd), "missing" if odd in keys else f"is not a field of a {sc['kind']} shortcut")
    j = _int(f"{name}.from", sc["from"], 0, i - 1)
    src = layers[j]
    if not isinstance(src, dict) or src.get("type") not in ("conv2d", "maxpool2d"):
        _fail(f"{name}.from", j, f"layers[{j}] must be a conv2d or maxpool2d layer (a [C, H, W] output of spikes)")
    _int(f"{name}.exp_offset", sc["exp_offset"], *arith.EXP_OFFSET_RANGE)
    if sc["kind"] == "projection":
        _int(f"{name}.stride", sc["stride"], 1, 64)


def _check_shortcut_shapes(m: dict, shapes: list):
    """Each shortcut's source output against its layer's output: equal for an identity; a 1x1 projection
    of stride s maps [C, H, W] onto [K, (H - 1) // s + 1, (W - 1) // s + 1]."""
    for i, l in enumerate(m["layers"]):
        sc = l.get("shortcut")
        if sc is None:
            continue
        j, name = sc["from"], f"layers[{i}].shortcut"
        src, out = shapes[j], shapes[i]
        if sc["kind"] == "identity":
            if tuple(src) != tuple(out):
                _fail(f"{name}.from", j, f"an identity shortcut needs the source's output shape {list(src)} to equal "
                      f"this layer's output shape {list(out)}")
        else:
            s = sc["stride"]
            want = (out[0], (src[1] - 1) // s + 1, (src[2] - 1) // s + 1)
            if tuple(out) != want:
                _fail(f"{name}.stride", s, f"a 1x1 projection of stride {s} maps the source's {list(src)} onto "
                      f"{list(want)}, not this layer's output {list(out)}")


def _check_tensors(m: dict, tensors: dict):
    layers = m["layers"]
    want = set()
    mm = arith.max_mag(m["weight_bits"])
    for i, l in enumerate(layers):
        if l["type"] not in WEIGHTED:
            continue
        ws = weight_shape(l)
        bs = (ws[0],)
        parts = [("sign", ws), ("mag", ws), ("bias", bs)]
        sc = l.get("shortcut")
        if sc is not None and sc["kind"] == "projection":
            src_c = _source_channels(m, sc["from"])
            parts += [("sc_sign", (ws[0], src_c, 1, 1)), ("sc_mag", (ws[0], src_c, 1, 1))]
        for part, shape in parts:
            key = f"L{i}.{part}"
            want.add(key)
            if key not in tensors:
                _fail(key, None, "missing from tensors.npz")
            a = tensors[key]
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
                _fail(f"{key}.dtype", getattr(a, "dtype", type(a).__name__), "must be an integer array")
            if part == "bias" and a.dtype != np.int64:
                _fail(f"{key}.dtype", str(a.dtype), "must be int64")
            if tuple(a.shape) != shape:
                _fail(f"{key}.shape", list(a.shape), f"must be {list(shape)}")
        for sn, gn in (("sign", "mag"), ("sc_sign", "sc_mag")):
            if f"L{i}.{gn}" not in tensors:
                continue
            s, g = tensors[f"L{i}.{sn}"], tensors[f"L{i}.{gn}"]
            if s.size and (s.min() < 0 or s.max() > 1):
                _fail(f"L{i}.{sn}", int(s.max() if s.max() > 1 else s.min()), "values must be 0 or 1")
            if g.size and (g.min() < 0 or g.max() > mm):
                _fail(f"L{i}.{gn}", int(g.max() if g.max() > mm else g.min()), f"values must be in [0, {mm}] for weight_bits = {m['weight_bits']}")
        b = tensors[f"L{i}.bias"]
        lo, hi = arith.signed_range(m["acc_bits"])
        if b.size and (b.min() < lo or b.max() > hi):
            _fail(f"L{i}.bias", int(b.max() if b.max() > hi else b.min()), f"must fit acc_bits = {m['acc_bits']}: [{lo}, {hi}]")
    extra = sorted(set(tensors) - want)
    if extra:
        _fail(extra[0], None, "is not an array of any weighted layer")


def _source_channels(m: dict, j: int) -> int:
    return layer_shapes(m["input_shape"], m["layers"][:j + 1])[-1][0]


def layer_magnitudes(pkg: Package, i: int, first_weighted: bool) -> np.ndarray:
    """Largest contribution magnitude of one input through each magnitude code of layer i."""
    return operand_magnitudes(pkg, pkg.layers[i]["exp_offset"], first_weighted)


def shortcut_magnitudes(pkg: Package, i: int) -> np.ndarray:
    """The same for layer i's shortcut: its source's spikes (never the graded input) at its exp_offset."""
    return operand_magnitudes(pkg, pkg.layers[i]["shortcut"]["exp_offset"], False)


def operand_magnitudes(pkg: Package, E: int, first_weighted: bool) -> np.ndarray:
    if pkg.mode == "ttfs":
        return arith.ttfs_table(pkg.weight_bits, E, pkg.lut, pkg.tau, pkg.time_steps).max(axis=0)
    if first_weighted:
        return arith.graded_table(pkg.weight_bits, E, pkg.frac_bits).max(axis=0)
    return arith.spike_table(pkg.weight_bits, E, pkg.frac_bits)


def potential_bounds(pkg: Package) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per weighted layer, per neuron: (lowest, highest) value any input can give its potential.

    A layer's drive (bias plus every contribution) lies between the bias plus all
    negative terms and the bias plus all positive terms at their largest; both are
    reached (every input of one sign at its strongest, the rest silent), so for a
    ttfs layer and a multistep output layer (which only sums its drives over the
    steps) the bound is the exact worst case over the layer's inputs. A multistep
    spiking layer carries its potential across steps through leak and soft reset:
    `multistep_extremes` follows the worst case step by step.
    """
    out = {}
    first = pkg.weighted_indices()[0]
    for i in pkg.weighted_indices():
        sign, mag, bias = pkg.weights(i)
        mtab = layer_magnitudes(pkg, i, i == first)
        mags = mtab[mag.astype(np.int64)].reshape(mag.shape[0], -1)
        neg = (sign.reshape(mag.shape[0], -1) == 1)
        if pkg.shortcut(i) is not None:   # the shortcut's terms: more inputs of each output channel
            ssign, smag = pkg.shortcut_weights(i)
            smags = shortcut_magnitudes(pkg, i)[smag.astype(np.int64)].reshape(smag.shape[0], -1)
            mags = np.concatenate([mags, smags], axis=1)
            neg = np.concatenate([neg, ssign.reshape(smag.shape[0], -1) == 1], axis=1)
        # int64 unless the sums could overflow it; then exact Python ints.
        steps = pkg.time_steps if pkg.mode == "multistep" else 1
        wide = (int(mags.max(initial=0)) * mags.shape[1] + int(np.abs(bias).max(initial=0)) + 1) * (steps + 1) >= (1 << 61)
        dt = object if wide else np.int64
        pos_sum = np.where(neg, 0, mags).astype(dt).sum(axis=1)
        neg_sum = np.where(neg, mags, 0).astype(dt).sum(axis=1)
        b = bias.astype(dt)
        lo, hi = b - neg_sum, b + pos_sum
        if pkg.mode == "multistep":
            if i == pkg.output_index():
                lo, hi = np.minimum(lo, 0) * pkg.time_steps, np.maximum(hi, 0) * pkg.time_steps
            else:
                lo, hi = multistep_extremes(lo, hi, pkg.time_steps, pkg.layer_leak(i), pkg.frac_bits, pkg.layer_reset(i))
        out[i] = (lo, hi)
    return out


def multistep_extremes(lo, hi, steps: int, leak_shift: int, frac_bits: int, v_reset: int | None = None):
    """(lowest, highest) potential of a multistep spiking neuron (SPEC section 4) over `steps` steps whose
    drive is any integer in [lo, hi] each step, the drive itself included.

    Step s adds a drive to leak(R), R the potential step s-1 left: V itself below 2^F, V - 2^F at or above
    it (v_reset there, for a layer that resets to a value). From the lowest and highest V of step s-1 this gives the lowest and highest R (both ends of the
    reachable interval, on each side of 2^F), and leak is non-decreasing in R, so the extremes follow
    step by step. They are never inside the reachable values; they are those values' extremes when the
    drives between lo and hi are all reachable (brute force: model/tests/test_acc_bound.py), and the
    lowest always is (a constant drive lo).
    """
    one = 1 << frac_bits

    def leak(v):
        return v - (v >> leak_shift) if leak_shift else v

    v_lo, v_hi = lo.copy(), hi.copy()       # step 1 starts from R = 0
    m_lo, m_hi = lo.copy(), hi.copy()       # this step's lowest and highest V
    for _ in range(1, steps):
        below, above = m_lo < one, m_hi >= one   # some V stays, some V fires
        if v_reset is None:
            r_hi = np.where(below, np.maximum(np.minimum(m_hi, one - 1), m_hi - one), m_hi - one)
            r_lo = np.where(below, np.where(above, np.minimum(m_lo, 0), m_lo), m_lo - one)
        else:   # a firing V leaves v_reset, a V that stays below 2^F itself
            r_hi = np.where(below, np.where(above, np.maximum(one - 1, v_reset), m_hi), v_reset)
            r_lo = np.where(below, np.where(above, np.minimum(m_lo, v_reset), m_lo), v_reset)
        n_lo, n_hi = leak(r_lo) + lo, leak(r_hi) + hi
        if np.array_equal(n_hi, m_hi) and np.array_equal(n_lo, m_lo):
            break   # a fixed point: every later step is the same
        m_lo, m_hi = n_lo, n_hi
        v_lo, v_hi = np.minimum(v_lo, m_lo), np.maximum(v_hi, m_hi)
    return v_lo, v_hi


def required_acc_bits(pkg: Package) -> int:
    """Smallest signed width that holds every potential of this package."""
    need = 2
    for lo, hi in potential_bounds(pkg).values():
        need = max(need, arith.bits_for(int(min(lo.min(), 0)), int(max(hi.max(), 0))))
    return need


def validate(pkg: Package) -> Package:
    _check_manifest(pkg.manifest)
    _check_tensors(pkg.manifest, pkg.tensors)
    need = required_acc_bits(pkg)
    if need > pkg.acc_bits:
        _fail("acc_bits", pkg.acc_bits, f"too narrow: the worst-case potential of this network needs {need} bits")
    return pkg


def _json_int(o):
    if isinstance(o, np.integer):
        return int(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def write(pkg: Package, path) -> Path:
    validate(pkg)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # validate accepts numpy integers in the manifest; JSON needs plain ints
    (path / "manifest.json").write_text(json.dumps(pkg.manifest, indent=1, default=_json_int) + "\n")
    np.savez_compressed(path / "tensors.npz", **pkg.tensors)
    return path


def read(path) -> Package:
    path = Path(path)
    if not path.is_dir():
        raise PackageError(f"package {str(path)!r}: not a directory")
    for name in ("manifest.json", "tensors.npz"):
        if not (path / name).is_file():
            raise PackageError(f"package {str(path)!r}: {name} is missing")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PackageError(f"manifest.json: not valid JSON ({e})") from None
    try:
        with np.load(path / "tensors.npz", allow_pickle=False) as z:
            tensors = {k: z[k] for k in z.files}
    except Exception as e:  # zip or npy corruption
        raise PackageError(f"tensors.npz: unreadable ({e})") from None
    return validate(Package(manifest, tensors))
