"""Random valid packages of both modes, for tests of the golden model and the RTL.

Weights, biases, thresholds and exponent offsets are drawn so that every
layer fires some but not all neurons; acc_bits is the proven minimum plus a
margin, so the packages also exercise narrow accumulators.
"""
from __future__ import annotations

import copy

import numpy as np

from . import arith
from .package import WEIGHTED, Package, layer_shapes, required_acc_bits, validate, weight_shape


def random_layers(rng, input_shape, kind: str) -> list[dict]:
    """A small random topology: 'dense' (MLP) or 'conv' (conv, pool, flatten, dense)."""
    if kind == "dense":
        n = int(np.prod(input_shape))
        layers = [] if len(input_shape) == 1 else [{"type": "flatten"}]
        for _ in range(int(rng.integers(1, 3))):
            m = int(rng.integers(3, 20))
            layers.append({"type": "dense", "in": n, "out": m})
            n = m
        layers.append({"type": "dense", "in": n, "out": int(rng.integers(2, 8))})
        return layers
    c, h, w = input_shape
    layers = []
    k = int(rng.integers(1, 4))
    pad = int(rng.integers(0, k))
    stride = int(rng.integers(1, 3))
    oc = int(rng.integers(2, 6))
    layers.append({"type": "conv2d", "in_shape": [c, h, w], "out_channels": oc, "kernel": k, "stride": stride, "padding": pad})
    shape = layer_shapes(input_shape, [dict(l, exp_offset=0) for l in layers])[-1]
    if shape[1] >= 2 and shape[2] >= 2 and rng.random() < 0.7:
        layers.append({"type": "maxpool2d", "kernel": 2})
        shape = (shape[0], shape[1] // 2, shape[2] // 2)
    if shape[1] >= 2 and shape[2] >= 2 and rng.random() < 0.5:
        layers.append({"type": "conv2d", "in_shape": list(shape), "out_channels": int(rng.integers(2, 5)), "kernel": 2, "stride": 1, "padding": int(rng.integers(0, 2))})
        shape = layer_shapes(shape, [dict(layers[-1], exp_offset=0)])[-1]
    n = int(np.prod(shape))
    layers.append({"type": "flatten"})
    layers.append({"type": "dense", "in": n, "out": int(rng.integers(2, 7))})
    return layers


def _random_tensors(rng, layers, W: int, F: int, p: float, spread: int, sign_p, bias_range) -> dict:
    """sign / mag / bias of every weighted layer (and its exp_offset, set in place): magnitudes zero with
    probability p, exp_offset about one threshold from a few strong inputs +- spread octaves; sign_p is the
    probability of a negative weight, or a (lo, hi) range it is drawn from per layer; biases drawn from
    bias_range (numpy's integers: high excluded)."""
    mm = arith.max_mag(W)
    tensors = {}
    for i, l in enumerate(layers):
        if l["type"] not in WEIGHTED:
            continue
        shape = weight_shape(l)
        fan_in = max(1.0, np.prod(shape[1:]) * (1 - p))
        l["exp_offset"] = int(np.clip(round(np.log2(3 / np.sqrt(fan_in))) + rng.integers(-spread, spread + 1),
                                      *arith.EXP_OFFSET_RANGE))
        mag = rng.integers(1, mm + 1, size=shape)
        mag[rng.random(shape) < p] = 0
        r = rng.random(shape)
        tensors[f"L{i}.sign"] = (r < (rng.uniform(*sign_p) if isinstance(sign_p, tuple) else sign_p)).astype(np.uint8)
        tensors[f"L{i}.mag"] = mag.astype(np.uint8)
        tensors[f"L{i}.bias"] = rng.integers(*bias_range, size=shape[0]).astype(np.int64)
    return tensors


def _jittered_thresholds(rng, F: int, T: int, tau: int) -> list[int]:
    """2^(F - t/tau) with each code's level moved by up to half a code, made non-increasing after rounding."""
    jitter = np.sort(rng.uniform(-0.5, 0.5, size=T))
    thr = [max(1, int(round(2.0 ** (F - (t + j) / tau)))) for t, j in enumerate(jitter)]
    return [max(thr[t:]) for t in range(T)]


def random_package(rng, mode: str = "ttfs", kind: str = "dense", input_shape=None, weight_bits=None, frac_bits=None,
                   tau=None, time_steps=None, sparsity=None, leak_shift=None, margin="auto", min_steps=None,
                   acc_slack: int = 1) -> Package:
    """A random valid package; any argument left None is drawn at random."""
    W = weight_bits or int(rng.integers(3, 7))
    F = frac_bits or int(rng.integers(8, 17))
    if input_shape is None:
        input_shape = [int(rng.integers(4, 24))] if kind == "dense" else [int(rng.integers(1, 3)), int(rng.integers(4, 8)), int(rng.integers(4, 8))]
    layers = random_layers(rng, list(input_shape), kind)
    p = rng.uniform(0.2, 0.7) if sparsity is None else sparsity
    # about one threshold from a few strong inputs; +-1 octave of spread
    tensors = _random_tensors(rng, layers, W, F, p, spread=1, sign_p=0.4, bias_range=(-(1 << F) // 4, (1 << F) // 4))
    return _random_manifest(rng, 1, mode, input_shape, W, F, layers, tensors, tau, time_steps, leak_shift, margin,
                            min_steps, acc_slack)


def _random_manifest(rng, version, mode, input_shape, W, F, layers, tensors, tau, time_steps, leak_shift, margin,
                     min_steps, acc_slack) -> Package:
    """The manifest around drawn layers and arrays: the mode's fields (any argument left None drawn at
    random, margin 'auto' drawn), acc_bits the proven minimum plus acc_slack - 1; validated."""
    m = {"format": "logspike-net", "version": version, "mode": mode, "input_shape": list(input_shape),
         "weight_bits": W, "frac_bits": F, "acc_bits": 62, "layers": layers}
    if mode == "ttfs":
        tau = tau or int(rng.choice([1, 2, 4]))
        T = time_steps or int(rng.integers(4, 17))
        m.update(time_steps=T, tau=tau, lut=arith.make_lut(F, tau), thresholds=_jittered_thresholds(rng, F, T, tau))
    else:
        T = time_steps or int(rng.integers(3, 12))
        if margin == "auto":
            margin = None if rng.random() < 0.2 else int(rng.integers(0, 1 << (F - 2)))
        m.update(time_steps=T, leak_shift=int(rng.integers(0, 4)) if leak_shift is None else leak_shift,
                 exit={"margin": margin, "min_steps": min_steps or int(rng.integers(1, max(2, T // 2)))})
    pkg = Package(m, tensors)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg) + acc_slack - 1, F + 2)
    return validate(pkg)


def residual_layers(rng, input_shape) -> list[dict]:
    """A small residual topology (SPEC version 2): a stem conv, a block whose second conv adds the stem's
    output through an identity shortcut, an optional max-pool, a strided conv that adds the block's output
    through a 1x1 projection of the same stride, then flatten and dense."""
    c, h, w = input_shape
    ch = int(rng.integers(2, 6))
    layers = [{"type": "conv2d", "in_shape": [c, h, w], "out_channels": ch, "kernel": 3, "stride": 1, "padding": 1},
              {"type": "conv2d", "in_shape": [ch, h, w], "out_channels": ch, "kernel": 3, "stride": 1, "padding": 1},
              {"type": "conv2d", "in_shape": [ch, h, w], "out_channels": ch, "kernel": int(rng.choice([1, 3])),
               "stride": 1, "padding": 0, "shortcut": {"from": 0, "kind": "identity"}}]
    layers[-1]["padding"] = layers[-1]["kernel"] // 2
    src, shape = 2, (ch, h, w)
    if h >= 4 and w >= 4 and rng.random() < 0.5:
        layers.append({"type": "maxpool2d", "kernel": 2})
        src, shape = 3, (ch, h // 2, w // 2)
    s = int(rng.choice([1, 2]))
    k2 = int(rng.integers(2, 6))
    conv = {"type": "conv2d", "in_shape": list(shape), "out_channels": k2, "kernel": 3, "stride": s, "padding": 1,
            "shortcut": {"from": src, "kind": "projection", "stride": s}}
    layers.append(conv)
    out = layer_shapes(input_shape, layers)[-1]
    layers += [{"type": "flatten"}, {"type": "dense", "in": int(np.prod(out)), "out": int(rng.integers(2, 7))}]
    return layers


def random_residual_package(rng, mode: str = "ttfs", input_shape=None, weight_bits=None, frac_bits=None,
                            tau=None, time_steps=None, margin="auto", layers=None) -> Package:
    """A random valid version-2 package with an identity and a projection shortcut (residual_layers), or
    random weights for the given residual `layers` (shortcut exponents drawn here)."""
    W = weight_bits or int(rng.integers(3, 7))
    F = frac_bits or int(rng.integers(8, 17))
    if layers is not None:
        input_shape = list(layers[0]["in_shape"])
    input_shape = input_shape or [int(rng.integers(1, 3)), int(rng.integers(4, 8)), int(rng.integers(4, 8))]
    layers = residual_layers(rng, list(input_shape)) if layers is None else copy.deepcopy(layers)
    p = rng.uniform(0.2, 0.6)
    tensors = _random_tensors(rng, layers, W, F, p, spread=1, sign_p=0.4, bias_range=(-(1 << F) // 4, (1 << F) // 4))
    if mode == "multistep":   # the stem takes bytes as b / 256: two octaves up, so that it fires
        layers[0]["exp_offset"] = min(layers[0]["exp_offset"] + 2, arith.EXP_OFFSET_RANGE[1])
    shapes = layer_shapes(input_shape, layers)
    for i, l in enumerate(layers):
        sc = l.get("shortcut")
        if sc is None:
            continue
        # about one threshold from the shortcut alone, as for the main path's strong inputs
        sc["exp_offset"] = int(rng.integers(-1, 1))
        if sc["kind"] == "projection":
            cs = shapes[sc["from"]][0]
            mag = rng.integers(1, arith.max_mag(W) + 1, size=(l["out_channels"], cs, 1, 1))
            mag[rng.random(mag.shape) < p] = 0
            tensors[f"L{i}.sc_sign"] = (rng.random(mag.shape) < 0.3).astype(np.uint8)
            tensors[f"L{i}.sc_mag"] = mag.astype(np.uint8)
    return _random_manifest(rng, 2, mode, input_shape, W, F, layers, tensors, tau, time_steps, None, margin, None, 1)


def random_inputs(rng, pkg: Package, batch: int, silent: float = 0.3) -> np.ndarray:
    shape = [batch] + list(pkg.input_shape)
    if pkg.mode == "ttfs":
        x = rng.integers(0, pkg.time_steps, size=shape)
        x[rng.random(shape) < silent] = pkg.time_steps
        return x.astype(np.int64)
    x = rng.integers(0, 256, size=shape)
    x[rng.random(shape) < silent] = 0
    return x.astype(np.uint8)


# The contract's range as the campaign draws it (SPEC section 1.1, narrowed only to keep one
# simulation short): shapes and counts small, every kind of value at its limits.
CAMPAIGN = {
    "weighted_layers": (2, 6), "conv_kernel": (1, 5), "conv_stride": (1, 3), "conv_padding": (0, 2),
    "pool_kernel": (2, 3), "channels": (1, 12), "hidden": (1, 24), "outputs": (1, 10), "input_dim": (1, 12),
    "dense_inputs": (1, 64), "weight_bits": arith.WEIGHT_BITS_RANGE, "frac_bits": arith.FRAC_BITS_RANGE,
    "tau": (1, 2, 4), "ttfs_T": (2, 64), "multistep_T": (1, 12), "leak_shift": (0, 4), "acc_slack": (0, 2),
}


def _draw(rng, key):
    lo, hi = CAMPAIGN[key]
    return int(rng.integers(lo, hi + 1))


def campaign_layers(rng, input_shape, n_weighted: int) -> list[dict]:
    """n_weighted weighted layers over the campaign's range: convs (kernel, stride, padding at their
    limits, channel counts of any size) with floored max-pools between them, then dense layers."""
    layers, shape = [], tuple(input_shape)
    if len(shape) == 3:
        n_conv = int(rng.integers(0, n_weighted))  # the last weighted layer is dense
        for _ in range(n_conv):
            c, h, w = shape
            p = min(_draw(rng, "conv_padding"), 4)
            k = min(_draw(rng, "conv_kernel"), min(h, w) + 2 * p)
            p = min(p, k - 1)  # SPEC: padding <= kernel - 1
            k = min(k, min(h, w) + 2 * p)
            s = _draw(rng, "conv_stride")
            layers.append({"type": "conv2d", "in_shape": list(shape), "out_channels": _draw(rng, "channels"),
                           "kernel": k, "stride": s, "padding": p})
            shape = layer_shapes(shape, [dict(layers[-1], exp_offset=0)])[-1]
            if min(shape[1:]) >= 2 and rng.random() < 0.4:
                pk = min(_draw(rng, "pool_kernel"), *shape[1:])
                layers.append({"type": "maxpool2d", "kernel": pk})
                shape = (shape[0], shape[1] // pk, shape[2] // pk)
        layers.append({"type": "flatten"})
        n_dense = n_weighted - n_conv
    else:
        n_dense = n_weighted
    n = int(np.prod(shape))
    for j in range(n_dense):
        m = _draw(rng, "hidden") if j < n_dense - 1 else _draw(rng, "outputs")
        layers.append({"type": "dense", "in": n, "out": m})
        n = m
    return layers


def campaign_package(rng, mode: str, frac_bits: int | None = None, weight_bits: int | None = None) -> Package:
    """A package drawn over the contract's whole range (CAMPAIGN): 2-6 weighted layers, W 2-8, F 8-24,
    tau 1/2/4, ttfs T 2-64, multistep T_max 1-12 with leaks 0-4 and margins null or not; acc_bits the
    proven minimum plus 0-2 bits. Raises PackageError where the draw is not a valid package (acc_bits
    past 62): the campaign counts those as refused."""
    W = weight_bits or _draw(rng, "weight_bits")
    F = frac_bits or _draw(rng, "frac_bits")
    if rng.random() < 0.4:
        input_shape = [_draw(rng, "dense_inputs")]
    else:
        input_shape = [int(rng.integers(1, 4)), _draw(rng, "input_dim"), _draw(rng, "input_dim")]
    layers = campaign_layers(rng, input_shape, _draw(rng, "weighted_layers"))
    p = rng.uniform(0.1, 0.8)
    tensors = _random_tensors(rng, layers, W, F, p, spread=2, sign_p=(0.2, 0.6),
                              bias_range=(-(1 << F) // 2, (1 << F) // 2 + 1))
    m = {"format": "logspike-net", "version": 1, "mode": mode, "input_shape": input_shape, "weight_bits": W,
         "frac_bits": F, "acc_bits": 62, "layers": layers}
    if mode == "ttfs":
        tau = int(rng.choice(CAMPAIGN["tau"]))
        T = _draw(rng, "ttfs_T")
        if rng.random() < 0.5:
            thr = arith.make_thresholds(F, T, tau, rounding=str(rng.choice(["floor", "nearest"])))
        else:
            thr = _jittered_thresholds(rng, F, T, tau)
        m.update(time_steps=T, tau=tau, lut=arith.make_lut(F, tau), thresholds=thr)
    else:
        T = _draw(rng, "multistep_T")
        n_out = layers[-1]["out"]
        margin = None if n_out < 2 or rng.random() < 0.3 else int(rng.integers(0, 1 << (F - 1)))
        m.update(time_steps=T, leak_shift=_draw(rng, "leak_shift"),
                 exit={"margin": margin, "min_steps": int(rng.integers(1, T + 1))})
    pkg = Package(m, tensors)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg) + _draw(rng, "acc_slack"), F + 2)
    return validate(pkg)


def with_neurons(pkg: Package, rng, p: float = 0.6) -> Package:
    """A version-2 copy of a multistep package (SPEC section 1, "Version 2"): each spiking layer, with
    probability p, gets its own leak_shift (0-4, the campaign's range), and, with probability p, resets to a
    value (0 half the time, else any in [-2^F, 2^F - 1]) instead of subtracting 2^F. acc_bits keeps its
    slack over the proven minimum; a package past 62 bits raises PackageError."""
    q = pkg.copy()
    F, out = q.frac_bits, q.output_index()
    slack = q.acc_bits - max(required_acc_bits(q), F + 2)
    for i in q.weighted_indices():
        if i == out:
            continue
        if rng.random() < p:
            q.layers[i]["leak_shift"] = _draw(rng, "leak_shift")
        if rng.random() < p:
            one = 1 << F
            q.layers[i]["v_reset"] = 0 if rng.random() < 0.5 else int(rng.integers(-one, one))
    q.manifest["version"] = 2
    q.manifest["acc_bits"] = max(required_acc_bits(q), F + 2) + slack
    return validate(q)


def with_shortcuts(pkg: Package, rng, p: float = 0.6) -> Package:
    """A version-2 copy of a package with residual shortcuts (SPEC section 1, "Residual connections"): each
    conv2d layer, with probability p, adds the output of the conv or max-pool layer one or two layers
    before it (flatten aside): an identity where the shapes are equal (half the time, else a projection
    of stride 1; campaign convs seldom keep a shape, so identities are rare), a 1x1 projection where some
    stride 1-4 maps the source's map onto the layer's; the
    shortcut's exponent -2..1 and its weights drawn as the layer's. acc_bits keeps its slack over the
    proven minimum; a package past 62 bits raises PackageError."""
    q = pkg.copy()
    F, W = q.frac_bits, q.weight_bits
    slack = q.acc_bits - max(required_acc_bits(q), F + 2)
    shapes = layer_shapes(q.input_shape, q.layers)
    entries = [i for i, l in enumerate(q.layers) if l["type"] != "flatten"]
    for n, i in enumerate(entries):
        l = q.layers[i]
        if l["type"] != "conv2d" or rng.random() >= p:
            continue
        sources = [j for j in entries[max(0, n - 2):n] if q.layers[j]["type"] in ("conv2d", "maxpool2d")]
        (k, h, w), options = tuple(shapes[i]), []
        for j in sources:
            c, hs, ws = tuple(shapes[j])
            if (c, hs, ws) == (k, h, w) and rng.random() < 0.5:
                options.append({"from": j, "kind": "identity"})
                continue
            options += [{"from": j, "kind": "projection", "stride": st} for st in range(1, 5)
                        if (hs - 1) // st + 1 == h and (ws - 1) // st + 1 == w]
        if not options:
            continue
        sc = dict(options[int(rng.integers(len(options)))], exp_offset=int(rng.integers(-2, 2)))
        l["shortcut"] = sc
        if sc["kind"] == "projection":
            mag = rng.integers(1, arith.max_mag(W) + 1, size=(k, shapes[sc["from"]][0], 1, 1))
            mag[rng.random(mag.shape) < rng.uniform(0.1, 0.8)] = 0
            q.tensors[f"L{i}.sc_sign"] = (rng.random(mag.shape) < rng.uniform(0.2, 0.6)).astype(np.uint8)
            q.tensors[f"L{i}.sc_mag"] = mag.astype(np.uint8)
    q.manifest["version"] = 2
    q.manifest["acc_bits"] = max(required_acc_bits(q), F + 2) + slack
    return validate(q)


def campaign_inputs(rng, pkg: Package, random: int = 2) -> np.ndarray:
    """`random` random samples, then an all-silent one and an all-firing one (ttfs: every code T, then
    every code 0; multistep: every byte 0, then every byte 255)."""
    x = random_inputs(rng, pkg, random, silent=float(rng.uniform(0.0, 0.8)))
    lo, hi = (pkg.time_steps, 0) if pkg.mode == "ttfs" else (0, 255)
    edge = np.stack([np.full(pkg.input_shape, lo), np.full(pkg.input_shape, hi)]).astype(x.dtype)
    return np.concatenate([x, edge])


def shaped_package(net: str, input_shape, classes: int = 10, seed: int = 0, spec=None) -> Package:
    """A ttfs package of a named topology (model.nets) from a random float net, normalised on random inputs:
    the shape, widths and build of a real network of it, random weights."""
    import torch

    from .convert import to_package
    from .nets import Net, build_spec, normalise
    from .quant import QuantConfig

    torch.manual_seed(seed)
    n = Net(tuple(input_shape), spec or build_spec(net, tuple(input_shape), classes), batch_norm=False).eval()
    n, _ = normalise(n, torch.rand((64,) + tuple(input_shape)))
    return to_package(n, QuantConfig())
