"""Bit-exact integer golden model of SPEC sections 3-5, batched on torch tensors.

A product depends on the weight only through its magnitude code (at most
2^(W-1) - 1 values), so each layer is a handful of matrix products: for every
magnitude code k, the inputs' contributions through k (a table gather) times
the {-1, 0, +1} matrix of the weights that have code k.

Those products run as floating-point GEMMs where that is exact, and in int64
where it could not be. Every term is an integer; every partial sum a GEMM
forms, in whatever order and blocking, is a sum of a subset of one neuron's
terms, so its magnitude is at most that neuron's sum of |terms|. While that
bound is at most 2^24 (float32) or 2^53 (float64), every partial sum is an
integer the format holds exactly, so no addition rounds. `gemm_dtype` proves
the bound per layer from the weights. Conv layers with enough output positions
run as a float32 convolution of the expanded inputs instead (same products, same
argument: conv_path). model/tests/test_golden_naive.py checks every path against
the naive implementation.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from . import arith
from .package import WEIGHTED, Package, conv_out_size, operand_magnitudes, validate


class InputError(ValueError):
    """Inputs do not match the package (shape, dtype or range)."""


class OverflowError_(ArithmeticError):
    """A potential left the package's signed acc_bits range."""


def check_inputs(pkg: Package, x) -> np.ndarray:
    x = np.asarray(x)
    want = tuple(pkg.input_shape)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise InputError(f"inputs shape {list(x.shape)}: must be [B] + input_shape = [B, {', '.join(map(str, want))}]")
    if x.dtype.kind not in "iu":
        raise InputError(f"inputs dtype {x.dtype}: must be integer ({'codes' if pkg.mode == 'ttfs' else 'uint8 bytes'})")
    hi = pkg.time_steps if pkg.mode == "ttfs" else 255
    if x.size and (x.min() < 0 or x.max() > hi):
        what = "codes must be in [0, T]" if pkg.mode == "ttfs" else "bytes must be in [0, 255]"
        raise InputError(f"inputs value {int(x.min() if x.min() < 0 else x.max())}: {what} = [0, {hi}]")
    return x.astype(np.int64)


def patches(x: torch.Tensor, k: int, s: int, p: int, pad_value: int):
    """im2col: [B, C, H, W] -> ([B*H'*W', C*k*k], H', W'), columns in (C, kh, kw) order."""
    if p:
        x = torch.nn.functional.pad(x, (p, p, p, p), value=pad_value)
    u = x.unfold(2, k, s).unfold(3, k, s)  # B, C, H', W', k, k
    b, c, h, w = u.shape[:4]
    return u.permute(0, 2, 3, 1, 4, 5).reshape(b * h * w, c * k * k), h, w


class Layer:
    """One package layer with its tables prepared once (and its residual shortcut's, SPEC version 2)."""

    def __init__(self, pkg: Package, i: int, graded: bool, spec: dict | None = None, arrays=None):
        """spec, arrays: a layer of its own (a shortcut: its 1x1 conv spec, (sign, mag, bias))."""
        self.i, self.spec = i, spec or pkg.layers[i]
        self.type = self.spec["type"]
        self.shortcut = self.conv_weight = None
        if self.type not in WEIGHTED:
            return
        sign, mag, bias = arrays or pkg.weights(i)
        out = sign.shape[0]
        self.bias = torch.from_numpy(bias.astype(np.int64))
        sgn = torch.from_numpy(np.where(sign.reshape(out, -1) == 1, -1, 1).astype(np.int64))
        mag = torch.from_numpy(mag.reshape(out, -1).astype(np.int64))
        E = self.spec["exp_offset"]
        if pkg.mode == "ttfs":
            table = arith.ttfs_table(pkg.weight_bits, E, pkg.lut, pkg.tau, pkg.time_steps)
        elif graded:
            table = arith.graded_table(pkg.weight_bits, E, pkg.frac_bits)
        else:
            table = None
        self.dtype = gemm_dtype(operand_magnitudes(pkg, E, graded), mag.numpy())
        sc = self.spec.get("shortcut") if spec is None else None
        if sc is not None:   # a 1x1 conv of the source's output, of stride s (identity: the diagonal, stride 1)
            ssign, smag = pkg.shortcut_weights(i)
            sc_spec = {"type": "conv2d", "kernel": 1, "stride": sc.get("stride", 1), "padding": 0,
                       "exp_offset": sc["exp_offset"]}
            self.shortcut = (sc["from"], Layer(pkg, i, False, sc_spec, (ssign, smag, np.zeros(out, np.int64))))
        if table is None:  # binary spikes: the input is its own table row, one weight per term
            st = torch.from_numpy(arith.spike_table(pkg.weight_bits, E, pkg.frac_bits))
            self.table = torch.tensor([[0], [1]], dtype=self.dtype)
            self.wstack = (sgn * st[mag]).T.contiguous().to(self.dtype)
        else:  # one term per magnitude code in use whose column is not all zero
            t = torch.from_numpy(table)
            used = [k for k in range(1, t.shape[1]) if bool((mag == k).any()) and bool(t[:, k].any())] or [0]
            self.table = t[:, used].to(self.dtype).contiguous()
            # row (input i, term j) holds the {-1, 0, +1} weights of input i that have code used[j]
            w = torch.stack([(sgn * (mag == k)).T for k in used], 1)
            self.wstack = w.reshape(-1, out).to(self.dtype).contiguous()

    def weighted_sum(self, x: torch.Tensor, pad_value: int) -> torch.Tensor:
        """bias + sum of contributions for inputs x (codes, bytes or 0/1 spikes).

        Each input becomes its row of the table (its contribution through every
        term) and one GEMM sums them against the stacked weights; rows go in
        chunks so the expanded inputs stay cache-sized. A conv layer with enough
        output positions convolves the expanded input instead (conv_path).
        """
        l = self.spec
        if self.type == "conv2d":
            k, st, p = l["kernel"], l["stride"], l["padding"]
            positions = conv_out_size(x.shape[2], k, st, p) * conv_out_size(x.shape[3], k, st, p)
            if conv_path(self.dtype, x.shape[0], positions):
                return self._convolve(x, pad_value)
            cols, h, w = patches(x, k, st, p, pad_value)
        else:
            cols = x
        n, width = cols.shape[0], self.wstack.shape[0]
        acc = torch.empty(n, self.wstack.shape[1], dtype=self.dtype)
        rows = max(GEMM_MIN_ROWS, GEMM_CHUNK_ELEMS // max(width, 1))
        for s in range(0, n, rows):
            expanded = torch.nn.functional.embedding(cols[s:s + rows], self.table).reshape(-1, width)
            torch.mm(expanded, self.wstack, out=acc[s:s + rows])
        acc = acc.to(torch.int64) + self.bias  # integer-valued: the conversion is exact
        if self.type == "conv2d":
            b = x.shape[0]
            acc = acc.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        return acc

    def _convolve(self, x: torch.Tensor, pad_value: int) -> torch.Tensor:
        """A conv layer as torch's float32 convolution of the table-expanded input: channel (c, term j)
        holds input channel c's contribution through term j, the kernel the matching {-1, 0, +1} weights
        (made from wstack on first use and kept: rearranging it per call cost most of the gain). Whole
        images in chunks of the expanded input."""
        k, st, p = self.spec["kernel"], self.spec["stride"], self.spec["padding"]
        out, terms = self.wstack.shape[1], self.table.shape[1]
        if self.conv_weight is None:   # wstack rows are (c, kh, kw, term j)
            self.conv_weight = (self.wstack.reshape(-1, k, k, terms, out).permute(4, 0, 3, 1, 2)
                                .reshape(out, -1, k, k).contiguous())
        if p:   # padding positions are inputs of code pad_value
            x = torch.nn.functional.pad(x, (p, p, p, p), value=pad_value)
        b, c, h, w = x.shape
        imgs = max(1, GEMM_CHUNK_ELEMS // (c * terms * h * w))
        parts = []
        for s in range(0, b, imgs):
            e = torch.nn.functional.embedding(x[s:s + imgs], self.table)   # [B, C, H, W, terms]
            e = e.permute(0, 1, 4, 2, 3).reshape(e.shape[0], c * terms, h, w)
            with torch.backends.nnpack.flags(enabled=False):   # NNPACK's fast algorithms round
                parts.append(torch.nn.functional.conv2d(e, self.conv_weight, stride=st))
        acc = torch.cat(parts) if len(parts) > 1 else parts[0]
        # contiguous like the GEMM path's (one input channel gives a channels-last convolution)
        return (acc.to(torch.int64) + self.bias.reshape(1, -1, 1, 1)).contiguous()


FLOAT32_EXACT, FLOAT64_EXACT = 1 << 24, 1 << 53  # every integer up to these is representable
GEMM_CHUNK_ELEMS, GEMM_MIN_ROWS = 1 << 22, 256  # measured on VGG-16 and digits-CNN layer shapes
# A conv layer is convolved (Layer._convolve) where its output has at least CONV_MIN_POSITIONS positions an
# image and CONV_MIN_ROWS in the batch; on VGG-16's layers (2 cores) that took 0.6-0.85x the GEMM's time from
# 8x8 outputs up, 1.4x at 4x4 with 8 images, 1.1x at 2x2 with 256.
CONV_MIN_ROWS, CONV_MIN_POSITIONS = 512, 16


def conv_path(dtype: torch.dtype, images: int, positions: int) -> bool:
    """Whether a conv layer runs as torch's float32 convolution. A direct convolution, like a GEMM, sums
    each output's products in some order, so the exactness argument of the module docstring holds for
    it; NNPACK (Winograd, FFT) is kept out, and oneDNN must compute float32 as IEEE float32 (torch's
    settings and oneDNN's environment)."""
    return (dtype == torch.float32 and positions >= CONV_MIN_POSITIONS and images * positions >= CONV_MIN_ROWS
            and _conv_fp32_ieee())


def _conv_fp32_ieee() -> bool:
    # oneDNN also takes a default float math mode from the environment, which torch's settings leave alone
    env = [os.environ.get(v, "STRICT").upper() for v in ("ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE")]
    prec = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", "none")
    return (env == ["STRICT", "STRICT"] and prec in ("none", "ieee")
            and torch.get_float32_matmul_precision() == "highest")


def gemm_dtype(max_contrib: np.ndarray, mag: np.ndarray) -> torch.dtype:
    """The narrowest GEMM type in which this layer's sums are exact (module docstring).

    max_contrib[k] is the largest contribution magnitude through code k, mag the
    [out, in] magnitude codes; a neuron's sum of |terms| is at most the sum of
    max_contrib over its weights.
    """
    worst = max_contrib.astype(np.float64)[mag.reshape(mag.shape[0], -1)].sum(axis=1).max(initial=0.0)
    # The float64 estimate is within a factor 1 +- 2^-40 of the exact sum; the margins cover it.
    if worst <= FLOAT32_EXACT / 2 and torch.get_float32_matmul_precision() == "highest":
        return torch.float32
    if worst <= FLOAT64_EXACT / 2:
        return torch.float64
    return torch.int64


def _pool(x: torch.Tensor, k: int, reduce: str) -> torch.Tensor:
    """Non-overlapping k x k pooling that floors the size; codes and spike counts are small
    integers, exact in float32, where torch's pooling kernels run."""
    f = x.to(torch.float32)
    if reduce == "min":
        return (-torch.nn.functional.max_pool2d(-f, k, k)).to(torch.int64)
    return torch.nn.functional.max_pool2d(f, k, k).to(torch.int64)


class Golden:
    """A validated package ready to run; `run` returns the SPEC section 5 results."""

    def __init__(self, pkg: Package, check: bool = True):
        if check:
            validate(pkg)
        self.pkg = pkg
        first = pkg.weighted_indices()[0]
        self.layers = [Layer(pkg, i, graded=(i == first and pkg.mode == "multistep")) for i in range(len(pkg.layers))]
        self.out_index = pkg.output_index()
        self.lo, self.hi = arith.signed_range(pkg.acc_bits)
        self.trace = None  # multistep: list of per-step outputs while output_trace runs
        self.spike_trace = None  # multistep: {layer: list of per-step spikes} while step_spikes runs

    def _check(self, v: torch.Tensor, i: int, what: str, active=None):
        """Raise if a potential left acc_bits; multistep checks only samples that have not exited."""
        if active is not None:
            v = v[active]
        if v.numel() and (int(v.min()) < self.lo or int(v.max()) > self.hi):
            bad = int(v.max()) if int(v.max()) > self.hi else int(v.min())
            raise OverflowError_(f"layer {i} {what} = {bad}: outside acc_bits = {self.pkg.acc_bits} range [{self.lo}, {self.hi}]")

    def run(self, x, batch: int = 256) -> dict:
        x = check_inputs(self.pkg, x)
        parts = [self._run_batch(torch.from_numpy(x[s:s + batch])) for s in range(0, max(len(x), 1), batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _run_batch(self, x):
        return self._ttfs(x) if self.pkg.mode == "ttfs" else self._multistep(x)

    def _ttfs(self, codes):
        pkg, T = self.pkg, self.pkg.time_steps
        out, layer_out = {}, {}   # results; every layer's output codes (shortcut sources)
        for L in self.layers:
            if L.type == "flatten":
                codes = codes.reshape(codes.shape[0], -1)
            elif L.type == "maxpool2d":
                codes = _pool(codes, L.spec["kernel"], "min")  # earliest spike wins
                out[f"spikes_L{L.i}"] = codes
            else:
                v = L.weighted_sum(codes, pad_value=T)  # padding is silent
                if L.shortcut is not None:
                    v = v + L.shortcut[1].weighted_sum(layer_out[L.shortcut[0]], pad_value=T)
                self._check(v, L.i, "potential")
                if L.i == self.out_index:
                    logits = v
                    break
                codes = arith.fire_code(v, pkg.thresholds)
                out[f"spikes_L{L.i}"] = codes
            layer_out[L.i] = codes
        res = {"logits": logits, "pred": arith.argmax_first(logits), "exit_step": torch.ones(len(logits), dtype=torch.int64)}
        res.update(out)
        return {k: v.numpy().astype(np.int64) for k, v in res.items()}

    def _multistep(self, xb):
        pkg = self.pkg
        F, T = pkg.frac_bits, pkg.time_steps
        margin, min_steps = pkg.exit["margin"], pkg.exit["min_steps"]
        B = xb.shape[0]
        first = pkg.weighted_indices()[0]
        # The graded input is the same every step: its current is computed once.
        pre = xb
        for L in self.layers[:first]:
            pre = pre.reshape(B, -1)  # only flatten can precede the first weighted layer
        current0 = self.layers[first].weighted_sum(pre, pad_value=0)
        self._check(current0, first, "input current")
        state = {L.i: torch.zeros_like(current0) if L.i == first else None for L in self.layers}
        counts, out_o = {}, None
        active = torch.ones(B, dtype=torch.bool)
        exit_step = torch.full((B,), T, dtype=torch.int64)
        logits = None
        for s in range(1, T + 1):
            spikes, layer_out = None, {}   # this step's spikes of every layer (shortcut sources)
            for L in self.layers[first:]:
                if L.type == "flatten":
                    spikes = spikes.reshape(B, -1)
                    continue
                if L.type == "maxpool2d":
                    spikes = _pool(spikes, L.spec["kernel"], "max")
                    layer_out[L.i] = spikes
                else:
                    drive = current0 if L.i == first else L.weighted_sum(spikes, pad_value=0)
                    if L.shortcut is not None:
                        drive = drive + L.shortcut[1].weighted_sum(layer_out[L.shortcut[0]], pad_value=0)
                    if L.i != first:
                        self._check(drive, L.i, "input current", active)
                    v = state[L.i]
                    if v is None:
                        v = torch.zeros_like(drive)
                    if L.i == self.out_index:
                        v = v + drive
                        self._check(v, L.i, "output potential", active)
                        state[L.i] = v
                        out_o = v
                        break
                    v = arith.leak(v, pkg.layer_leak(L.i)) + drive
                    self._check(v, L.i, "potential", active)
                    spk, v = arith.fire_and_reset(v, F, pkg.layer_reset(L.i))
                    state[L.i] = v
                    spikes = spk.to(torch.int64)
                    layer_out[L.i] = spikes
                c = counts.setdefault(L.i, torch.zeros_like(spikes))
                mask = active.reshape((B,) + (1,) * (spikes.dim() - 1)).to(torch.int64)
                counts[L.i] = c + spikes * mask
                if self.spike_trace is not None:
                    self.spike_trace.setdefault(L.i, []).append(spikes * mask)
            if self.trace is not None:
                self.trace.append(out_o.clone())
            done = arith.exit_now(out_o, s, margin, min_steps, T) & active
            if logits is None:
                logits = torch.zeros_like(out_o)
            logits[done] = out_o[done]
            exit_step[done] = s
            active &= ~done
            if not bool(active.any()):
                break
        res = {"logits": logits, "pred": arith.argmax_first(logits), "exit_step": exit_step}
        res.update({f"spikes_L{i}": c for i, c in counts.items()})
        return {k: v.numpy().astype(np.int64) for k, v in res.items()}


def output_trace(pkg: Package, x, batch: int = 256) -> np.ndarray:
    """multistep: the output potentials O after every step 1..T_max, [B, T_max, K], exit disabled.

    Exit calibration sweeps margins over this without re-running the network.
    """
    if pkg.mode != "multistep":
        raise ValueError(f"mode = {pkg.mode!r}: output_trace needs a multistep package")
    p = pkg.copy()
    p.manifest["exit"] = {"margin": None, "min_steps": 1}
    g = Golden(p)
    x = check_inputs(p, x)
    parts = []
    for s in range(0, len(x), batch):
        g.trace = []
        g._run_batch(torch.from_numpy(x[s:s + batch]))
        parts.append(torch.stack(g.trace, 1).numpy())
    return np.concatenate(parts).astype(np.int64)


def step_spikes(pkg: Package, x, batch: int = 256) -> tuple[dict, dict]:
    """multistep: (results, {layer: [B, T_max, ...] spikes at every step}) of every spiking and pooling layer.

    A sample's spikes are zero after its exit step: the steps the hardware
    never runs. The energy estimate counts per-step events from this; the
    results are those of `run`.
    """
    if pkg.mode != "multistep":
        raise ValueError(f"mode = {pkg.mode!r}: step_spikes needs a multistep package")
    g = Golden(pkg)
    x = check_inputs(pkg, x)
    T = pkg.time_steps
    parts, spikes = [], {}
    for s in range(0, len(x), batch):
        g.spike_trace = {}
        parts.append(g._run_batch(torch.from_numpy(x[s:s + batch])))
        for i, per_step in g.spike_trace.items():
            sp = torch.stack(per_step, 1)  # steps run by this batch (all of its samples exited by then)
            pad = torch.zeros((sp.shape[0], T - sp.shape[1]) + tuple(sp.shape[2:]), dtype=sp.dtype)
            spikes.setdefault(i, []).append(torch.cat([sp, pad], 1).numpy())
    g.spike_trace = None
    res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return res, {i: np.concatenate(v) for i, v in spikes.items()}


def run(pkg: Package, x, batch: int = 256, check: bool = True) -> dict:
    """SPEC section 5 results for inputs x ([B] + input_shape codes or bytes)."""
    return Golden(pkg, check=check).run(x, batch=batch)


def save_results(res: dict, path):
    np.savez_compressed(path, **{k: np.asarray(v, dtype=np.int64) for k, v in res.items()})
