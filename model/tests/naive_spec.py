"""A deliberately naive, independent implementation of SPEC.md sections 2-5.

Written from SPEC.md alone, as a cross-check of the golden model.
It imports nothing from model.arith, model.golden or model.randnet: it reads
only the manifest dict and the numpy arrays of a package, turns everything
into plain Python ints (unbounded) and loops over samples, neurons, inputs and
kernel positions one at a time. Speed is irrelevant; readability is the point.

Activations are kept as flat Python lists in row-major order together with
their shape, so a [C, H, W] value at (c, y, x) sits at index (c*H + y)*W + x,
and `flatten` (row-major, C slowest) just relabels the shape.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np


class NaiveOverflow(ArithmeticError):
    """A potential left the signed acc_bits range."""


# ------------------------------------------------------------------ helpers


def spec_lut(F: int, tau: int) -> list[int]:
    """lut[r] = round(2^F * 2^(-r/tau)), r in [0, tau), computed at 100 digits.

    For r > 0 the value is irrational, so no rounding tie can occur; r = 0 is
    exactly 2^F.
    """
    out = []
    with localcontext() as ctx:
        ctx.prec = 100
        for r in range(tau):
            v = Decimal(2) ** F * Decimal(2) ** (Decimal(-r) / Decimal(tau))
            out.append(int(v.to_integral_value(rounding=ROUND_HALF_UP)))
    return out


def shift_magnitude(base: int, e: int, E: int, tau: int, lut: list[int]) -> int:
    """SPEC 2: n = base + tau*(e - E); q, r = floor(n/tau), n mod tau; m = lut[r] shifted by q."""
    n = base + tau * (e - E)
    q = n // tau  # Python // floors
    r = n % tau  # Python % is in [0, tau) for tau > 0
    if q >= 0:
        return lut[r] >> q
    return lut[r] << (-q)


def apply_sign(sign: int, m: int) -> int:
    return -m if sign else m


def check_range(v: int, acc_bits: int, where: str) -> int:
    lo = -(1 << (acc_bits - 1))
    hi = (1 << (acc_bits - 1)) - 1
    if v < lo or v > hi:
        raise NaiveOverflow(f"{where}: potential {v} outside signed {acc_bits}-bit range [{lo}, {hi}]")
    return v


def argmax_lowest(values: list[int]) -> int:
    best = 0
    for j in range(1, len(values)):
        if values[j] > values[best]:  # strictly greater: ties keep the lower index
            best = j
    return best


def conv_out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


# --------------------------------------------------------- weighted layers


def weighted_sums(layer: dict, sign: list, mag: list, bias: list, inputs: list, in_shape: tuple, contrib):
    """bias_j + sum over inputs of contrib(operand, sign, mag), for every output neuron.

    `contrib(operand, sign, mag)` returns the signed contribution of one input
    through one weight (and must return 0 for silent operands / zero weights).
    Returns (flat list of sums, output shape).
    """
    if layer["type"] == "dense":
        N, M = layer["in"], layer["out"]
        assert in_shape == (N,), (in_shape, N)
        sums = []
        for j in range(M):
            v = bias[j]
            for i in range(N):
                v += contrib(inputs[i], sign[j * N + i], mag[j * N + i])
            sums.append(v)
        return sums, (M,)

    # conv2d
    C, H, W = in_shape
    assert list(in_shape) == list(layer["in_shape"])
    K, k, s, p = layer["out_channels"], layer["kernel"], layer["stride"], layer["padding"]
    Ho, Wo = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    sums = []
    for oc in range(K):
        for oy in range(Ho):
            for ox in range(Wo):
                v = bias[oc]
                for c in range(C):
                    for ky in range(k):
                        for kx in range(k):
                            iy = oy * s - p + ky
                            ix = ox * s - p + kx
                            if iy < 0 or iy >= H or ix < 0 or ix >= W:
                                continue  # padding position: silent, contributes nothing
                            w = ((oc * C + c) * k + ky) * k + kx
                            v += contrib(inputs[(c * H + iy) * W + ix], sign[w], mag[w])
                sums.append(v)
    return sums, (K, Ho, Wo)


def shortcut_sums(layer: dict, sc_arrays, outputs: dict, out_shape: tuple, contrib):
    """SPEC version 2: the shortcut's term of every output neuron of a conv2d layer, from the output of
    layer `from` (a flat list and its shape): identity, each channel its own input through +2^E; projection,
    a 1x1 convolution of stride s. `contrib(operand, sign, mag, E)`."""
    sc = layer["shortcut"]
    src, (C, H, W) = outputs[sc["from"]]
    K, Ho, Wo = out_shape
    E = sc["exp_offset"]
    terms = []
    for k in range(K):
        for y in range(Ho):
            for x in range(Wo):
                if sc["kind"] == "identity":
                    terms.append(contrib(src[(k * H + y) * W + x], 0, 1, E))
                    continue
                st = sc["stride"]
                sign, mag = sc_arrays
                v = 0
                for c in range(C):
                    v += contrib(src[(c * H + y * st) * W + x * st], sign[k * C + c], mag[k * C + c], E)
                terms.append(v)
    return terms


def maxpool(inputs: list, in_shape: tuple, k: int, pick):
    """k x k window, stride k, no padding, floor of the size; `pick` reduces a window."""
    C, H, W = in_shape
    Ho, Wo = H // k, W // k
    out = []
    for c in range(C):
        for oy in range(Ho):
            for ox in range(Wo):
                window = []
                for ky in range(k):
                    for kx in range(k):
                        window.append(inputs[(c * H + oy * k + ky) * W + ox * k + kx])
                out.append(pick(window))
    return out, (C, Ho, Wo)


def flatten_shape(shape: tuple) -> tuple:
    C, H, W = shape
    return (C * H * W,)


# ------------------------------------------------------------------- package


def _layer_arrays(tensors: dict, i: int):
    sign = [int(v) for v in np.asarray(tensors[f"L{i}.sign"]).reshape(-1).tolist()]
    mag = [int(v) for v in np.asarray(tensors[f"L{i}.mag"]).reshape(-1).tolist()]
    bias = [int(v) for v in np.asarray(tensors[f"L{i}.bias"]).reshape(-1).tolist()]
    return sign, mag, bias


def _manifest_and_tensors(pkg):
    if isinstance(pkg, tuple):
        return pkg
    return pkg.manifest, pkg.tensors


# ---------------------------------------------------------------------- ttfs


def ttfs_sample(m: dict, arrays: dict, codes: list) -> tuple[list, dict]:
    F, tau, T, A = m["frac_bits"], m["tau"], m["time_steps"], m["acc_bits"]
    lut = spec_lut(F, tau)
    if list(m["lut"]) != lut:
        raise ValueError(f"manifest lut {m['lut']} != round(2^F * 2^(-r/tau)) = {lut}")
    thresholds = [int(t) for t in m["thresholds"]]
    weighted = [i for i, l in enumerate(m["layers"]) if l["type"] in ("dense", "conv2d")]
    out_i = weighted[-1]

    act, shape = list(codes), tuple(m["input_shape"])
    spikes, outputs = {}, {}   # outputs: every layer's output codes and shape (shortcut sources)
    for i, layer in enumerate(m["layers"]):
        t = layer["type"]
        if t == "flatten":
            shape = flatten_shape(shape)
        elif t == "maxpool2d":
            act, shape = maxpool(act, shape, layer["kernel"], min)  # earliest spike; silent T is largest
            spikes[i] = (list(act), shape)
        else:
            def product(code, sign, mag, E):
                if code == T or mag == 0:  # silent input or zero weight
                    return 0
                return apply_sign(sign, shift_magnitude(code, mag - 1, E, tau, lut))

            E = layer["exp_offset"]
            sign, mag, bias = arrays[i]
            V, shape = weighted_sums(layer, sign, mag, bias, act, shape, lambda c, sg, mg, E=E: product(c, sg, mg, E))
            if "shortcut" in layer:
                S = shortcut_sums(layer, arrays.get(("sc", i)), outputs, shape, product)
                V = [v + t for v, t in zip(V, S)]
            for v in V:
                check_range(v, A, f"ttfs layer {i}")
            if i == out_i:
                return V, spikes
            new = []
            for v in V:
                code = T
                for tt in range(T):
                    if v >= thresholds[tt]:
                        code = tt
                        break
                new.append(code)
            act = new
            spikes[i] = (list(act), shape)
        outputs[i] = (list(act), shape)
    raise ValueError("no output layer")


# ----------------------------------------------------------------- multistep


def multistep_sample(m: dict, arrays: dict, x: list) -> tuple[list, int, dict]:
    F, A, T_max = m["frac_bits"], m["acc_bits"], m["time_steps"]
    margin, min_steps = m["exit"]["margin"], m["exit"]["min_steps"]
    layers = m["layers"]
    weighted = [i for i, l in enumerate(layers) if l["type"] in ("dense", "conv2d")]
    first_i, out_i = weighted[0], weighted[-1]
    one = 1 << F

    def graded(xb, sign, mag, E):
        if mag == 0:
            return 0
        e = mag - 1
        sh = 8 + e - E
        val = xb << F
        mm = val >> sh if sh >= 0 else val << (E - e - 8)
        return apply_sign(sign, mm)

    def binary(spk, sign, mag, E):
        if spk == 0 or mag == 0:
            return 0
        return apply_sign(sign, shift_magnitude(0, mag - 1, E, 1, [one]))

    potentials = {}  # layer index -> flat list of potentials (spiking layers)
    O = None  # output potentials
    counts = {}  # layer index -> (flat list of spike counts, shape)

    for s in range(1, T_max + 1):
        act, shape = list(x), tuple(m["input_shape"])  # graded input, same every step
        outputs = {}   # this step's spikes of every layer (shortcut sources)
        for i, layer in enumerate(layers):
            t = layer["type"]
            if t == "flatten":
                shape = flatten_shape(shape)
                continue
            if t == "maxpool2d":
                if i < first_i:
                    raise ValueError("SPEC defines maxpool2d of binary spikes only")
                act, shape = maxpool(act, shape, layer["kernel"], lambda w: 1 if any(w) else 0)
            else:
                E = layer["exp_offset"]
                fn = graded if i == first_i else binary
                sign, mag, bias = arrays[i]
                drive, shape = weighted_sums(layer, sign, mag, bias, act, shape,
                                             lambda a, sg, mg, E=E, fn=fn: fn(a, sg, mg, E))
                if "shortcut" in layer:
                    S = shortcut_sums(layer, arrays.get(("sc", i)), outputs, shape, binary)
                    drive = [d + t for d, t in zip(drive, S)]
                if i == out_i:
                    if O is None:
                        O = [0] * len(drive)
                    O = [check_range(O[j] + drive[j], A, f"output layer {i} step {s}") for j in range(len(drive))]
                    break
                V = potentials.get(i, [0] * len(drive))
                k_leak = layer.get("leak_shift", m["leak_shift"])   # version 2: a layer's own leak
                v_reset = layer.get("v_reset")                     # version 2: reset to this value
                new_v, spk = [], []
                for j in range(len(drive)):
                    v = V[j]
                    if k_leak > 0:
                        v = v - (v >> k_leak)  # Python >> on ints is an arithmetic (flooring) shift
                    v = check_range(v + drive[j], A, f"layer {i} step {s}")
                    if v >= one:
                        spk.append(1)
                        v = v - one if v_reset is None else v_reset
                    else:
                        spk.append(0)
                    new_v.append(v)
                potentials[i] = new_v
                act = spk
            # spiking or pooling layer: count its spikes
            c, _ = counts.get(i, ([0] * len(act), shape))
            counts[i] = ([c[j] + act[j] for j in range(len(act))], shape)
            outputs[i] = (list(act), shape)

        # exit check (SPEC 4.4)
        if s == T_max:
            return O, s, counts
        if margin is not None and s >= min_steps:
            ranked = sorted(O, reverse=True)
            a, b = ranked[0], ranked[1]
            if a - b >= margin * s:
                return O, s, counts
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ entry


def naive_run(pkg, x) -> dict:
    """SPEC section 5 results for a package (Package or (manifest, tensors)) and inputs x."""
    m, tensors = _manifest_and_tensors(pkg)
    x = np.asarray(x)
    assert tuple(x.shape[1:]) == tuple(m["input_shape"]), (x.shape, m["input_shape"])
    arrays = {i: _layer_arrays(tensors, i) for i, l in enumerate(m["layers"]) if l["type"] in ("dense", "conv2d")}
    for i, l in enumerate(m["layers"]):   # version 2: projection shortcuts' arrays, flat in [K, C] order
        if l.get("shortcut", {}).get("kind") == "projection":
            arrays[("sc", i)] = ([int(v) for v in np.asarray(tensors[f"L{i}.sc_sign"]).reshape(-1)],
                                 [int(v) for v in np.asarray(tensors[f"L{i}.sc_mag"]).reshape(-1)])

    logits, preds, exits = [], [], []
    spikes: dict[int, list] = {}
    shapes: dict[int, tuple] = {}
    for b in range(x.shape[0]):
        sample = [int(v) for v in x[b].reshape(-1).tolist()]
        if m["mode"] == "ttfs":
            if any(v < 0 or v > m["time_steps"] for v in sample):
                raise ValueError("ttfs codes must be in [0, T]")
            O, sp = ttfs_sample(m, arrays, sample)
            step = 1
        elif m["mode"] == "multistep":
            if any(v < 0 or v > 255 for v in sample):
                raise ValueError("multistep bytes must be in [0, 255]")
            O, step, sp = multistep_sample(m, arrays, sample)
        else:
            raise ValueError(f"mode {m['mode']!r}")
        logits.append(O)
        preds.append(argmax_lowest(O))
        exits.append(step)
        for i, (vals, shape) in sp.items():
            spikes.setdefault(i, []).append(vals)
            shapes[i] = shape

    res = {
        "logits": np.array(logits, dtype=object).astype(np.int64).reshape(x.shape[0], -1),
        "pred": np.array(preds, dtype=np.int64),
        "exit_step": np.array(exits, dtype=np.int64),
    }
    for i in sorted(spikes):
        res[f"spikes_L{i}"] = np.array(spikes[i], dtype=object).astype(np.int64).reshape((x.shape[0],) + tuple(shapes[i]))
    return res
