"""NIR (the Neuromorphic Intermediate Representation, package `nir`) in and out of multistep packages.

Import (`from_nir`): a chain Input -> ... -> Output of Affine / Linear / Conv2d layers, each followed by a
neuron (IF or LIF: a spiking layer; I or LI, or nothing, on the output layer), with Flatten, SumPool2d and
AvgPool2d between them. NIR's neurons are continuous-time; with the time step `dt` (forward Euler, as NIR's
reference simulators step them) one step of a LIF is

    v <- v + (dt / tau) * (v_leak - v + r * I);   spike where v > v_threshold, then v <- v_reset

and of an IF `v <- v + dt * r * I`. SPEC section 4 (version 2) runs `V <- V - (V >> k) + drive`, spikes at
V >= 2^F and sets V to the layer's v_reset, so per neuron the drive is the input scaled by dt / tau * r
(IF: dt * r) and divided by the threshold (the threshold becomes 2^F), v_leak folds into the bias, and the
leak 1 - dt / tau becomes 1 - 2^-k with k the nearest shift. What does not map exactly is reported per node
(`NirImport.deviations`): a leak that is not a power-of-two shift, neurons of one layer with different leaks
or reset values, an output layer that leaks or fires (SPEC's output layer integrates), and always the
threshold compare (NIR: v > threshold, SPEC: V >= 2^F) and the weights' rounding to W-bit log codes.

Pooling: NIR has no max-pool. A SumPool2d / AvgPool2d (stride = kernel, no padding) before a weighted
layer is linear, so it is folded into that layer exactly (its kernel and stride grow by the pool's, or a
dense layer's weights repeat over the window). A SumPool2d followed by an IF that fires on any input
spike and resets to 0 is the max-pool of binary spikes, SPEC's maxpool2d; `to_nir` writes maxpool2d so.

Input: the package's first layer takes bytes b = round(255 x) of an input x in [0, 1] and weighs them as
b / 256; the import scales the first layer's weights by 256 / 255 so that the package computes w * x.

Export (`to_nir`): a multistep package as that chain, with `logspike.*` metadata (exp_offset per layer,
the subtracting reset that NIR's neurons cannot express, T_max and the exit rule) so that importing the
file gives the same package back. Other tools read a subtracting layer as one that resets to 0.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import arith
from .nets import fold_pool_into_conv, fold_pool_into_dense
from .package import Package, PackageError, required_acc_bits, validate
from .quant import weight_codes, weight_exponent

SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "IF", "LIF", "I", "LI", "Flatten", "SumPool2d",
             "AvgPool2d")
INPUT_SCALE = 256 / 255   # the package weighs a byte b as b / 256; the NIR input is b / 255
META = "logspike."


class NirImportError(ValueError):
    """The NIR graph (or file) cannot be imported: names the node and the reason."""


@dataclass
class NirImport:
    package: Package
    deviations: list[str] = field(default_factory=list)   # one line per inexact mapping, node named


def _meta(node_or_graph, key, default=None):
    v = (getattr(node_or_graph, "metadata", None) or {}).get(META + key, default)
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def read_graph(path):
    """nir.read with a one-line error for a file that is not a NIR graph."""
    import nir

    p = Path(path)
    if not p.is_file():
        raise NirImportError(f"{p}: no such file")
    try:
        return nir.read(str(p))
    except Exception as e:   # h5py and nir raise many kinds on a foreign or broken file
        raise NirImportError(f"{p}: not a NIR graph file ({type(e).__name__}: {e})") from None


def chain(graph) -> tuple[list[str], dict]:
    """The node names from the Input's successor to the Output's predecessor, in order; refuses anything
    but one chain (a branch or merge, a recurrent edge, a subgraph)."""
    import nir

    nodes = graph.nodes
    succ, pred = {n: [] for n in nodes}, {n: [] for n in nodes}
    for a, b in graph.edges:
        for n in (a, b):
            if n not in nodes:
                raise NirImportError(f"edge ({a!r}, {b!r}): node {n!r} is not in the graph")
        succ[a].append(b)
        pred[b].append(a)
    for n, node in nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            raise NirImportError(f"node {n!r}: a subgraph (e.g. a recurrent layer) is not supported")
        if kind not in SUPPORTED:
            raise NirImportError(f"node {n!r}: {kind} is not supported; supported nodes: {', '.join(SUPPORTED)}")
        if len(pred[n]) > 1:
            raise NirImportError(f"node {n!r}: {len(pred[n])} inputs; only chains are supported "
                                 "(residual adds need SPEC residual connections)")
        if len(succ[n]) > 1:
            raise NirImportError(f"node {n!r}: {len(succ[n])} outputs; only chains are supported")
    ins = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise NirImportError(f"the graph has {len(ins)} Input and {len(outs)} Output nodes; it needs one of each")
    order, n, seen = [], ins[0], {ins[0]}
    while True:
        if not succ[n]:
            raise NirImportError(f"node {n!r}: nothing follows it, and it is not the Output")
        n = succ[n][0]
        if n in seen:
            raise NirImportError(f"node {n!r}: a cycle (recurrent edge) is not supported")
        seen.add(n)
        if n == outs[0]:
            break
        order.append(n)
    if len(seen) != len(nodes):
        stray = sorted(set(nodes) - seen)[0]
        raise NirImportError(f"node {stray!r} is not on the path from Input to Output")
    return order, nodes


def _input_shape(graph) -> list[int]:
    import nir

    node = next(v for v in graph.nodes.values() if isinstance(v, nir.Input))
    shp = [int(d) for d in np.asarray(node.input_type["input"]).reshape(-1)]
    if len(shp) not in (1, 3):
        raise NirImportError(f"Input: shape {shp}: must be [N] or [C, H, W]")
    return shp


def _pair(name, field_name, v) -> int:
    """A square 2-D parameter (int, pair or array) as one int."""
    a = np.asarray(v).reshape(-1)
    if a.size == 1 or (a.size == 2 and a[0] == a[1]):
        return int(a[0])
    raise NirImportError(f"node {name!r}: {field_name} = {a.tolist()}: only square (equal) values are supported")


def _per_neuron(name, field_name, v, n) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.size == 1:
        return np.full(n, float(a[0]))
    if a.size != n:
        raise NirImportError(f"node {name!r}: {field_name} has {a.size} values for a layer of {n} neurons")
    return a


def _pool_params(name, node) -> tuple[int, float]:
    k = _pair(name, "kernel_size", node.kernel_size)
    if _pair(name, "stride", node.stride) != k:
        raise NirImportError(f"node {name!r}: stride {np.asarray(node.stride).tolist()} != kernel {k}: only "
                             "pools whose stride is their kernel are supported")
    if _pair(name, "padding", node.padding) != 0:
        raise NirImportError(f"node {name!r}: padding {np.asarray(node.padding).tolist()}: pools without padding only")
    return k, 1.0 if type(node).__name__ == "SumPool2d" else 1.0 / (k * k)


def _conv_params(name, node, shape):
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise NirImportError(f"node {name!r}: weight shape {list(w.shape)}: a square 2-D kernel [O, C, k, k] is needed")
    if int(np.asarray(node.groups).reshape(-1)[0]) != 1:
        raise NirImportError(f"node {name!r}: groups = {node.groups}: grouped convolution is not supported")
    if _pair(name, "dilation", node.dilation) != 1:
        raise NirImportError(f"node {name!r}: dilation {np.asarray(node.dilation).tolist()}: not supported")
    k, s = w.shape[2], _pair(name, "stride", node.stride)
    pad = node.padding
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            p = 0
        elif pad == "same" and s == 1 and k % 2:
            p = k // 2
        else:
            raise NirImportError(f"node {name!r}: padding {pad!r} with kernel {k}, stride {s}: not supported")
    else:
        p = _pair(name, "padding", pad)
    if len(shape) != 3 or shape[0] != w.shape[1]:
        raise NirImportError(f"node {name!r}: a conv of {w.shape[1]} input channels after a tensor of shape {list(shape)}")
    b = np.asarray(node.bias, dtype=np.float64).reshape(-1) if getattr(node, "bias", None) is not None else np.zeros(w.shape[0])
    return w, b, k, s, p


def _nearest_shift(a: np.ndarray) -> int:
    """k >= 1 with 2^-k nearest to the leak step a = dt / tau (in the log domain)."""
    return int(min(max(round(-math.log2(float(np.median(a)))), 1), arith.LEAK_SHIFT_RANGE[1]))


def from_nir(graph, dt: float, time_steps: int | None = None, weight_bits: int | None = None,
             frac_bits: int | None = None, margin=None, min_steps: int | None = None) -> NirImport:
    """A NIR graph (nir.NIRGraph or a file path) as a multistep package. Parameters left None come from the
    graph's logspike metadata (a file `to_nir` wrote), else: weight_bits 5, frac_bits 16, min_steps 1;
    time_steps has no default (NIR graphs have no run length)."""
    if not isinstance(dt, (int, float)) or not dt > 0 or not math.isfinite(dt):
        raise NirImportError(f"dt = {dt!r}: must be a positive number (the simulation time step, seconds)")
    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    order, nodes = chain(graph)
    W = weight_bits or _meta(graph, "weight_bits", 5)
    F = frac_bits or _meta(graph, "frac_bits", 16)
    T = time_steps or _meta(graph, "time_steps")
    if T is None:
        raise NirImportError("time_steps: not given and not in the graph's metadata (NIR graphs have no run length)")
    if margin is None and _meta(graph, "margin") is not None:
        margin = _meta(graph, "margin")
    min_steps = min_steps or _meta(graph, "min_steps", 1)
    one = 1 << F
    shape = _input_shape(graph)
    in_shape = list(shape)
    pkg_shape = list(shape)          # the package's tensor (pools before a weighted layer are folded)
    pool = None                      # pending pool to fold: (kernel, scale, shape before it)
    layers, tensors, deviations, neurons = [], {}, [], []
    first_weighted = True
    i = 0
    while i < len(order):
        name, node = order[i], nodes[order[i]]
        kind = type(node).__name__
        if kind in ("SumPool2d", "AvgPool2d"):
            k, scale = _pool_params(name, node)
            if len(shape) != 3 or k > min(shape[1:]):
                raise NirImportError(f"node {name!r}: a {k}x{k} pool of a tensor of shape {shape}")
            nxt = order[i + 1] if i + 1 < len(order) else None
            if nxt is not None and type(nodes[nxt]).__name__ == "IF" and pool is None:
                # the max-pool of binary spikes: fires on any input spike, resets to 0, keeps nothing
                if first_weighted:
                    raise NirImportError(f"node {name!r}: a max-pool (pool and IF) before the first weighted layer: "
                                         "SPEC pools binary spikes only, not the graded input")
                n_out = shape[0] * (shape[1] // k) * (shape[2] // k)
                nd = nodes[nxt]
                r = _per_neuron(nxt, "r", nd.r, n_out) * dt * scale
                thr = _per_neuron(nxt, "v_threshold", nd.v_threshold, n_out)
                vr = _per_neuron(nxt, "v_reset", nd.v_reset, n_out)
                if not ((thr >= 0).all() and (r > thr).all() and (vr == 0).all()):
                    raise NirImportError(f"node {nxt!r}: an IF after pool {name!r} must fire on any input spike "
                                         "(dt * r > v_threshold >= 0) and reset to 0 to be a max-pool of spikes")
                layers.append({"type": "maxpool2d", "kernel": k})
                shape = pkg_shape = [shape[0], shape[1] // k, shape[2] // k]
                i += 2
                continue
            before = pool[2] if pool else list(pkg_shape)
            pool = (pool[0] * k if pool else k, (pool[1] if pool else 1.0) * scale, before)
            shape = [shape[0], shape[1] // k, shape[2] // k]
            i += 1
            continue
        if kind == "Flatten":
            if len(shape) != 3:
                raise NirImportError(f"node {name!r}: Flatten of a tensor of shape {shape}: [C, H, W] only")
            if pool is None:
                layers.append({"type": "flatten"})
                pkg_shape = [int(np.prod(pkg_shape))]
            shape = [int(np.prod(shape))]
            i += 1
            continue
        if kind not in ("Affine", "Linear", "Conv2d"):
            raise NirImportError(f"node {name!r}: {kind} must follow a weighted layer (Affine, Linear, Conv2d)")
        # ---- a weighted layer and its neuron
        if kind == "Conv2d":
            w, b, k, s, p = _conv_params(name, node, shape)
            oh, ow = (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1
            if oh < 1 or ow < 1:
                raise NirImportError(f"node {name!r}: a {k}x{k} kernel is larger than its padded input {shape}")
            out_shape = [w.shape[0], oh, ow]
            if pool:
                w, k, s, p = fold_pool_into_conv(w, k, s, p, pool[0], pool[1])
                if k > 64:
                    raise NirImportError(f"node {name!r}: with the pool before it folded in, the kernel is {k} (SPEC: at most 64)")
            layer = {"type": "conv2d", "in_shape": list(pkg_shape), "out_channels": int(w.shape[0]), "kernel": int(k),
                     "stride": int(s), "padding": int(p)}
        else:
            w = np.asarray(node.weight, dtype=np.float64)
            b = np.asarray(node.bias, dtype=np.float64).reshape(-1) if kind == "Affine" else np.zeros(w.shape[0])
            if w.ndim != 2 or len(shape) != 1 or w.shape[1] != shape[0]:
                raise NirImportError(f"node {name!r}: weight shape {list(w.shape)} after a tensor of shape {shape} "
                                     "(a dense layer needs a flat input: add a Flatten)")
            if pool:
                if len(pool[2]) != 3:
                    raise NirImportError(f"node {name!r}: a pool before a dense layer needs a Flatten between them")
                C, H, Wd = pool[2]
                w = fold_pool_into_dense(w, [C, H // pool[0], Wd // pool[0]], pool[2], pool[0], pool[1])
                if len(pkg_shape) == 3:   # the Flatten after the pool was held back for the fold
                    layers.append({"type": "flatten"})
                pkg_shape = [int(np.prod(pool[2]))]
            out_shape = [w.shape[0]]
            layer = {"type": "dense", "in": int(w.shape[1]), "out": int(w.shape[0])}
        pool = None
        n = out_shape[0] if len(out_shape) == 1 else out_shape[0] * out_shape[1] * out_shape[2]
        per_channel = out_shape[0]
        nxt = order[i + 1] if i + 1 < len(order) else None
        neuron = nodes[nxt] if nxt is not None and type(nodes[nxt]).__name__ in ("IF", "LIF", "I", "LI") else None
        last = (i + (2 if neuron is not None else 1)) >= len(order)
        nkind = type(neuron).__name__ if neuron is not None else None
        if not last and nkind not in ("IF", "LIF"):
            raise NirImportError(f"node {name!r}: a hidden weighted layer must be followed by an IF or LIF neuron "
                                 f"(found {nkind or type(nodes[nxt]).__name__ if nxt else 'nothing'})")
        # per output channel parameters (SPEC's bias is per channel): a neuron's arrays over the whole map
        # must be the same at every position of a channel
        def chan(field_name, v):
            a = _per_neuron(nxt, field_name, v, n).reshape(per_channel, -1)
            if not np.allclose(a, a[:, :1]):
                raise NirImportError(f"node {nxt!r}: {field_name} differs between positions of one channel "
                                     "(SPEC neurons of one output channel share their parameters)")
            return a[:, 0]
        spec_layer = dict(layer)
        if nkind in ("IF", "I"):
            gain = chan("r", neuron.r) * dt
            bias_add = np.zeros(per_channel)
            leak_a = None
        elif nkind in ("LIF", "LI"):
            a = dt / chan("tau", neuron.tau)
            gain = a * chan("r", neuron.r)
            bias_add = a * chan("v_leak", neuron.v_leak)
            leak_a = a
        else:   # no neuron: the output layer sums the layer's output over the steps
            gain, bias_add, leak_a = np.ones(per_channel), np.zeros(per_channel), None
        if nkind in ("IF", "LIF"):
            thr = chan("v_threshold", neuron.v_threshold)
            if not (thr > 0).all():
                raise NirImportError(f"node {nxt!r}: v_threshold must be > 0 (SPEC fires at V >= 2^F > 0)")
        else:
            thr = np.ones(per_channel)
        scale = gain / thr
        w_n = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b_n = (b * gain + bias_add) / thr
        if first_weighted:
            w_n = w_n * INPUT_SCALE
        if not last:
            if leak_a is None:
                k_leak = 0
            else:
                if (leak_a >= 1).any():
                    raise NirImportError(f"node {nxt!r}: dt / tau = {float(leak_a.max()):g} >= 1: the potential "
                                         "forgets itself every step; no SPEC leak shift (k >= 1) is that fast")
                k_leak = _nearest_shift(leak_a)
                dev = float(np.abs(2.0 ** -k_leak - leak_a).max() / leak_a.max())
                if dev > 1e-6:   # float32 time constants (snnTorch writes float32)
                    deviations.append(f"node {nxt!r}: leak dt/tau = {float(np.median(leak_a)):g} (over the layer "
                                      f"{float(leak_a.min()):g}..{float(leak_a.max()):g}) as 2^-{k_leak} = "
                                      f"{2.0 ** -k_leak:g}: {100 * dev:.1f}% off")
            own = _meta(neuron, "layer_fields")
            if own is not None:    # written by to_nir: the layer's own version-2 fields, exactly
                spec_layer.update(json.loads(own))
            else:
                vr = chan("v_reset", neuron.v_reset) / thr
                codes = np.rint(vr * one).astype(np.int64)
                vals, counts = np.unique(codes, return_counts=True)
                v_reset = int(vals[np.argmax(counts)])
                if len(vals) > 1:
                    deviations.append(f"node {nxt!r}: v_reset / v_threshold differs between neurons "
                                      f"({len(vals)} values); all reset to {v_reset / one:g}")
                if not -one <= v_reset < one:
                    clip = int(min(max(v_reset, -one), one - 1))
                    deviations.append(f"node {nxt!r}: v_reset / v_threshold = {v_reset / one:g} outside [-1, 1): "
                                      f"clipped to {clip / one:g}")
                    v_reset = clip
                spec_layer.update(leak_shift=k_leak, v_reset=v_reset)
            neurons.append(nxt)
        else:
            if nkind == "LI":
                deviations.append(f"node {nxt!r}: the output layer's leak (dt/tau = {float(np.median(leak_a)):g}) "
                                  "is dropped: SPEC's output layer integrates without leak")
            if nkind in ("IF", "LIF"):
                deviations.append(f"node {nxt!r}: the output layer integrates its input (no threshold, no reset): "
                                  "the prediction is the largest summed drive, not the most spikes")
        wt = torch.from_numpy(np.ascontiguousarray(w_n))
        E = _meta(node, "exp_offset")
        E = weight_exponent(wt) if E is None else int(E)
        sign, mag = weight_codes(wt, W, E)
        li = len(layers)
        spec_layer["exp_offset"] = E
        tensors[f"L{li}.sign"] = sign.numpy().astype(np.uint8)
        tensors[f"L{li}.mag"] = mag.numpy().astype(np.uint8)
        tensors[f"L{li}.bias"] = np.rint(b_n * one).astype(np.int64)
        layers.append(spec_layer)
        shape = pkg_shape = out_shape
        first_weighted = False
        i += 2 if neuron is not None else 1
        if last:
            break
    if not layers or layers[-1]["type"] != "dense":
        raise NirImportError("the last weighted node must be an Affine or Linear (SPEC's output layer is dense)")
    leak_default = _meta(graph, "leak_shift", 0)
    spiking = [l for l in layers[:-1] if l["type"] in ("dense", "conv2d")]
    version = max(2 if any("leak_shift" in l or "v_reset" in l for l in spiking) else 1, int(_meta(graph, "version", 1)))
    manifest = {"format": "logspike-net", "version": version,
                "mode": "multistep", "input_shape": in_shape, "weight_bits": int(W), "frac_bits": int(F),
                "acc_bits": arith.ACC_BITS_RANGE[1], "time_steps": int(T), "leak_shift": int(leak_default),
                "exit": {"margin": None if margin is None else int(margin), "min_steps": int(min_steps)},
                "layers": layers}
    pkg = Package(manifest, tensors)
    try:
        need = max(required_acc_bits(pkg), F + 2)
        pkg.manifest["acc_bits"] = max(need, int(_meta(graph, "acc_bits", need)))
        validate(pkg)
    except PackageError as e:
        raise NirImportError(f"the imported package is not valid: {e}") from None
    deviations.append("all spiking layers: NIR fires at v > v_threshold, SPEC at V >= 2^F (they differ where the "
                      "potential equals the threshold); weights round to "
                      f"{W}-bit log codes, biases and resets to F = {F} fraction bits")
    return NirImport(pkg, deviations)


# ---------------------------------------------------------------- export

def to_nir(pkg: Package, dt: float = 1e-4):
    """A multistep package as a NIR graph (see the module doc); ttfs packages have no NIR form."""
    import nir

    if pkg.mode != "multistep":
        raise NirImportError("mode = 'ttfs': NIR's neurons are binary spiking (IF, LIF); a ttfs package's "
                             "logarithmic spike times have no NIR form. Export multistep packages")
    for i, l in enumerate(pkg.layers):
        if "shortcut" in l:
            raise NirImportError(f"layers[{i}].shortcut: residual connections are not exported to NIR yet (the "
                                 "import takes chains only)")
    F, one = pkg.frac_bits, 1 << pkg.frac_bits
    shapes = pkg.shapes()
    ins = [list(pkg.input_shape)] + [list(s) for s in shapes[:-1]]
    first, out_i = pkg.weighted_indices()[0], pkg.output_index()
    nodes = {"input": nir.Input(input_type={"input": np.array(pkg.input_shape)})}
    edges, prev = [], "input"

    def add(name, node):
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    for i, l in enumerate(pkg.layers):
        t = l["type"]
        if t == "flatten":
            add(f"L{i}", nir.Flatten(input_type={"input": np.array(ins[i])}, start_dim=0, end_dim=-1))
            continue
        if t == "maxpool2d":
            k = l["kernel"]
            add(f"L{i}", nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0])))
            n = np.ones(shapes[i])
            add(f"L{i}_or", nir.IF(r=n / dt, v_threshold=0.5 * n, v_reset=0 * n))
            continue
        sign, mag, bias = pkg.weights(i)
        E = l["exp_offset"]
        w = np.where(mag > 0, np.where(sign == 1, -1.0, 1.0) * np.exp2(E - (mag.astype(np.float64) - 1)), 0.0)
        if i == first:
            w = w / INPUT_SCALE
        b = bias.astype(np.float64) / one
        meta = {META + "exp_offset": int(E)}
        if t == "dense":
            add(f"L{i}", nir.Affine(weight=w, bias=b, metadata=meta))
        else:
            add(f"L{i}", nir.Conv2d(input_shape=tuple(ins[i][1:]), weight=w, stride=l["stride"], padding=l["padding"],
                                    dilation=1, groups=1, bias=b, metadata=meta))
        n = np.ones(shapes[i])
        if i == out_i:
            add(f"L{i}_out", nir.I(r=n / dt))
            break
        k, v_reset = pkg.layer_leak(i), pkg.layer_reset(i)
        own = {f: l[f] for f in ("leak_shift", "v_reset") if f in l}
        nmeta = {META + "layer_fields": json.dumps(own), META + "reset": "subtract" if v_reset is None else "value"}
        vr = (0 if v_reset is None else v_reset / one) * n
        if k == 0:
            add(f"L{i}_if", nir.IF(r=n / dt, v_threshold=n, v_reset=vr, metadata=nmeta))
        else:
            add(f"L{i}_lif", nir.LIF(tau=n * dt * (1 << k), r=n * (1 << k), v_leak=0 * n, v_threshold=n, v_reset=vr,
                                     metadata=nmeta))
    nodes["output"] = nir.Output(output_type={"output": np.array(shapes[out_i])})
    edges.append((prev, "output"))
    meta = {META + k: v for k, v in (("version", pkg.version), ("weight_bits", pkg.weight_bits), ("frac_bits", F), ("acc_bits", pkg.acc_bits),
                                     ("time_steps", pkg.time_steps), ("leak_shift", pkg.leak_shift),
                                     ("min_steps", pkg.exit["min_steps"]), ("dt", dt))}
    if pkg.exit["margin"] is not None:
        meta[META + "margin"] = int(pkg.exit["margin"])
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def subtracting_layers(pkg: Package) -> list[int]:
    """Spiking layers that reset by subtraction: NIR readers other than LogSpike see them reset to 0."""
    return [i for i in pkg.weighted_indices()[:-1] if pkg.layer_reset(i) is None]


# ---------------------------------------------------------------- float reference of NIR's semantics

def reference(graph, x: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """The graph run in float64 with forward-Euler steps of dt (the module doc's equations) on a constant
    input x [B, ...] in [0, 1]: the output after every step [B, steps, K] (an output IF/LIF: its spike
    counts; I/LI: its potential; no neuron: the summed output)."""
    import torch.nn.functional as fn

    def t64(v):
        return torch.as_tensor(np.asarray(v, np.float64))

    order, nodes = chain(graph)
    xt = t64(x)
    ops = []   # per node, once: (kind, its tensors), then applied at every step
    h = xt
    for name in order:   # one pass on the input to learn each neuron's shape
        nd, kind = nodes[name], type(nodes[name]).__name__
        if kind in ("Affine", "Linear"):
            op = (kind, t64(nd.weight).T, t64(nd.bias) if kind == "Affine" else 0.0)
            h = h @ op[1] + op[2]
        elif kind == "Conv2d":
            w, b, k, s, p = _conv_params(name, nd, list(h.shape[1:]))
            op = (kind, t64(w), t64(b), s, p)
            h = fn.conv2d(h, op[1], op[2], s, p)
        elif kind in ("SumPool2d", "AvgPool2d"):
            k, scale = _pool_params(name, nd)
            op = ("pool", k, k * k * scale)
            h = fn.avg_pool2d(h, k) * op[2]
        elif kind == "Flatten":
            op = (kind,)
            h = h.flatten(1)
        else:
            shp, n = h.shape[1:], h[0].numel()

            def par(v, shp=shp, n=n):
                a = t64(v)
                return a.reshape(shp) if a.numel() == n else a.reshape(-1)[0]
            leak = (dt / par(nd.tau), par(nd.v_leak)) if kind in ("LIF", "LI") else None
            fire = (par(nd.v_threshold), par(nd.v_reset)) if kind in ("IF", "LIF") else None
            op = ("neuron", name, par(nd.r), leak, fire)
        ops.append(op)
    state, outs, total = {}, [], None
    integrates = type(nodes[order[-1]]).__name__ in ("I", "LI")   # the output is a potential, else a sum
    for _ in range(steps):
        h = xt
        for op in ops:
            if op[0] in ("Affine", "Linear"):
                h = h @ op[1] + op[2]
            elif op[0] == "Conv2d":
                h = fn.conv2d(h, op[1], op[2], op[3], op[4])
            elif op[0] == "pool":
                h = fn.avg_pool2d(h, op[1]) * op[2]
            elif op[0] == "Flatten":
                h = h.flatten(1)
            else:
                _, name, r, leak, fire = op
                v = state.get(name, torch.zeros_like(h))
                v = v + dt * r * h if leak is None else v + leak[0] * (leak[1] - v + r * h)
                if fire is not None:
                    z = v > fire[0]
                    v = torch.where(z, fire[1] * torch.ones_like(v), v)
                    h = z.to(torch.float64)
                else:
                    h = v
                state[name] = v
        total = h if integrates or total is None else total + h
        outs.append(total.clone())
    return torch.stack(outs, dim=1).numpy()
