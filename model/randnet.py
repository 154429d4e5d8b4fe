"""Random valid packages of both modes, for tests of the golden model and the RTL.

Weights, biases, thresholds and exponent offsets are drawn so that every
layer fires some but not all neurons; acc_bits is the proven minimum plus a
margin, so the packages also exercise narrow accumulators.
"""
from __future__ import annotations

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


def random_package(rng, mode: str = "ttfs", kind: str = "dense", input_shape=None, weight_bits=None, frac_bits=None,
                   tau=None, time_steps=None, sparsity=None, leak_shift=None, margin="auto", min_steps=None,
                   acc_slack: int = 1) -> Package:
    """A random valid package; any argument left None is drawn at random."""
    W = weight_bits or int(rng.integers(3, 7))
    F = frac_bits or int(rng.integers(8, 17))
    if input_shape is None:
        input_shape = [int(rng.integers(4, 24))] if kind == "dense" else [int(rng.integers(1, 3)), int(rng.integers(4, 8)), int(rng.integers(4, 8))]
    layers = random_layers(rng, list(input_shape), kind)
    mm = arith.max_mag(W)
    p = rng.uniform(0.2, 0.7) if sparsity is None else sparsity
    tensors = {}
    for i, l in enumerate(layers):
        if l["type"] not in WEIGHTED:
            continue
        shape = weight_shape(l)
        fan_in = max(1.0, np.prod(shape[1:]) * (1 - p))
        # about one threshold from a few strong inputs; +-1 octave of spread
        l["exp_offset"] = int(np.clip(round(np.log2(3 / np.sqrt(fan_in))) + rng.integers(-1, 2), *arith.EXP_OFFSET_RANGE))
        mag = rng.integers(1, mm + 1, size=shape)
        mag[rng.random(shape) < p] = 0
        tensors[f"L{i}.sign"] = (rng.random(shape) < 0.4).astype(np.uint8)
        tensors[f"L{i}.mag"] = mag.astype(np.uint8)
        tensors[f"L{i}.bias"] = rng.integers(-(1 << F) // 4, (1 << F) // 4, size=shape[0]).astype(np.int64)
    m = {"format": "logspike-net", "version": 1, "mode": mode, "input_shape": list(input_shape), "weight_bits": W,
         "frac_bits": F, "acc_bits": 62, "layers": layers}
    if mode == "ttfs":
        tau = tau or int(rng.choice([1, 2, 4]))
        T = time_steps or int(rng.integers(4, 17))
        jitter = np.sort(rng.uniform(-0.5, 0.5, size=T))
        thr = [max(1, int(round(2.0 ** (F - (t + j) / tau)))) for t, j in enumerate(jitter)]
        thr = [max(thr[t:]) for t in range(T)]  # non-increasing after rounding
        m.update(time_steps=T, tau=tau, lut=arith.make_lut(F, tau), thresholds=thr)
    else:
        T = time_steps or int(rng.integers(3, 12))
        if margin == "auto":
            margin = None if rng.random() < 0.2 else int(rng.integers(0, 1 << (F - 2)))
        m.update(time_steps=T, leak_shift=int(rng.integers(0, 4)) if leak_shift is None else leak_shift,
                 exit={"margin": margin, "min_steps": min_steps or int(rng.integers(1, max(2, T // 2)))})
    pkg = Package(m, tensors)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg) + acc_slack - 1, F + 2)
    return validate(pkg)


def random_inputs(rng, pkg: Package, batch: int, silent: float = 0.3) -> np.ndarray:
    shape = [batch] + list(pkg.input_shape)
    if pkg.mode == "ttfs":
        x = rng.integers(0, pkg.time_steps, size=shape)
        x[rng.random(shape) < silent] = pkg.time_steps
        return x.astype(np.int64)
    x = rng.integers(0, 256, size=shape)
    x[rng.random(shape) < silent] = 0
    return x.astype(np.uint8)
