"""Directly trained multistep SNN with adaptive-timestep early exit (ATSNN-style).

IF or LIF neurons (power-of-two leak V -= V >> k), soft reset at 1.0 (2^F in
the package), surrogate gradient through time, W-bit log weights with a
straight-through gradient, the graded byte input (value x/256, as SPEC's
shift gives it) presented at every step, and a non-spiking integrating
output layer whose cumulative potential O_t is the output. The
time-dependent loss sum_t lambda_t * CE(O_t / t, y) teaches the net to be
right early, so the margin exit of SPEC 4.4 can stop sooner.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from . import arith, golden
from .convert import layer_tensors, package_version
from .data import Dataset
from .nets import build_spec, complete_layers, gap_dense, layer_modules, shortcut_term
from .package import Package, required_acc_bits, validate
from .quant import fixed_bias, log_weight
from .train import run_epochs


@dataclass(frozen=True)
class SNNConfig:
    time_steps: int = 16  # T_max
    leak_shift: int = 0  # 0 = IF; k > 0 = LIF with V -= V >> k
    frac_bits: int = 16
    weight_bits: int = 5
    loss: str = "early"  # 'early' (time-dependent, default), 'uniform', or 'final' (ablation)

    def as_dict(self):
        return asdict(self)


def loss_weights(kind: str, T: int) -> torch.Tensor:
    """lambda_t for t = 1..T, summing to 1.

    early:   lambda_t proportional to T - t + 1, so step 1 weighs T times the last
             step: the net is pushed to be confident as early as it can (default);
    uniform: all steps alike;
    final:   only t = T, the plain final-step loss (ablation).
    """
    if kind == "early":
        w = torch.arange(T, 0, -1, dtype=torch.float32)
    elif kind == "uniform":
        w = torch.ones(T)
    elif kind == "final":
        w = torch.zeros(T)
        w[-1] = 1
    else:
        raise ValueError(f"loss = {kind!r}: must be 'early', 'uniform' or 'final'")
    return w / w.sum()


class _Spike(torch.autograd.Function):
    """Heaviside at 1.0 with a triangular surrogate gradient of width 1 each side."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v >= 1.0).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g * torch.clamp(1.0 - (v - 1.0).abs(), min=0.0)


class MultistepNet(nn.Module):
    def __init__(self, input_shape, spec, cfg: SNNConfig):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.spec = complete_layers(input_shape, spec)
        self.cfg = cfg
        self.weighted, self.mods, _, self.sc_mods, self.sc_norms, sc_log2 = layer_modules(self.input_shape, self.spec,
                                                                                          batch_norm=False)
        for i in self.weighted:
            nn.init.kaiming_uniform_(self.mods[str(i)].weight, a=1.0)
            nn.init.zeros_(self.mods[str(i)].bias)
        for i, v in sc_log2.items():   # identity shortcuts: weight 2^0, the threshold's unit
            self.register_buffer(f"sc_log2_{i}", torch.tensor(v))

    def _quant_weight(self, w):
        return log_weight(w, self.cfg.weight_bits)

    def _apply(self, i, x):
        l, m = self.spec[i], self.mods[str(i)]
        w, b = log_weight(m.weight, self.cfg.weight_bits), fixed_bias(m.bias, self.cfg.frac_bits)
        if l["type"] == "dense":
            return nn.functional.linear(gap_dense(x, l), w, b)
        return nn.functional.conv2d(x, w, b, l["stride"], l["padding"])

    def forward(self, x_bytes: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Cumulative outputs O_1..O_steps, [steps, B, K]. x_bytes: uint8 or float in [0, 255]."""
        T = steps or self.cfg.time_steps
        x = x_bytes.to(torch.float32) / 256.0
        first, out_i = self.weighted[0], self.weighted[-1]
        for l in self.spec[:first]:  # only flatten may come first
            x = x.flatten(1)
        current0 = self._apply(first, x)
        k = self.cfg.leak_shift
        v: dict = {}
        o, outs = 0.0, []
        for _ in range(T):
            s, spikes = None, {}   # this step's spikes of each conv / pool layer (shortcut sources)
            for i in range(first, len(self.spec)):
                l = self.spec[i]
                if l["type"] == "flatten":
                    s = s.flatten(1)
                    continue
                if l["type"] == "maxpool2d":
                    s = spikes[i] = nn.functional.max_pool2d(s, l["kernel"])
                    continue
                drive = current0 if i == first else self._apply(i, s)
                if "shortcut" in l:
                    drive = drive + shortcut_term(self, i, spikes[l["shortcut"]["from"]], self._quant_weight)
                if i == out_i:
                    o = o + drive
                    break
                vi = v.get(i, torch.zeros_like(drive))
                if k:
                    vi = vi - vi * (2.0 ** -k)
                vi = vi + drive
                s = spikes[i] = _Spike.apply(vi)
                v[i] = vi - s.detach()  # soft reset
            outs.append(o)
        return torch.stack(outs)


def td_loss(outs: torch.Tensor, y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """sum_t lambda_t * CE(O_t / t, y)."""
    t = torch.arange(1, outs.shape[0] + 1, dtype=outs.dtype).reshape(-1, 1, 1)
    ce = torch.stack([nn.functional.cross_entropy(o, y) for o in outs / t])
    return (lam * ce).sum()


def train_snn(data: Dataset, net_name: str, cfg: SNNConfig, epochs: int = 40, lr: float = 2e-3, batch: int = 64, seed: int = 0) -> MultistepNet:
    """The time-dependent loss over the training split's bytes, with the one training loop (train.run_epochs)."""
    torch.manual_seed(seed)
    net = MultistepNet(data.shape, build_spec(net_name, data.shape, data.classes), cfg)
    lam = loss_weights(cfg.loss, cfg.time_steps)
    return run_epochs(net, data.train.bytes, data.train.y, lambda out, y: td_loss(out, y, lam), epochs, lr, batch,
                      seed, f"SNN {net_name} ({cfg.loss} loss)")


def to_package(net: MultistepNet, margin: int | None = None, min_steps: int = 1) -> Package:
    """The multistep package of a trained net (SPEC section 1)."""
    cfg = net.cfg
    layers, tensors = layer_tensors(net, cfg.weight_bits, cfg.frac_bits)
    manifest = {"format": "logspike-net", "version": package_version(layers), "mode": "multistep", "input_shape": list(net.input_shape),
                "weight_bits": cfg.weight_bits, "frac_bits": cfg.frac_bits, "acc_bits": arith.ACC_BITS_RANGE[1],
                "time_steps": cfg.time_steps, "leak_shift": cfg.leak_shift,
                "exit": {"margin": margin, "min_steps": min_steps}, "layers": layers}
    pkg = Package(manifest, tensors)
    pkg.manifest["acc_bits"] = max(required_acc_bits(pkg), cfg.frac_bits + 2)
    return validate(pkg)


# ---- early exit: the SPEC margin rule and a float entropy rule, both from per-step outputs ----

def margin_exit(trace: np.ndarray, margin: int | None, min_steps: int = 1):
    """SPEC 4.4 on a [B, T, K] integer trace: (exit_step, pred) per sample. The rule itself is
    arith.exit_now, its one home, applied at every step; the first step that exits is the exit step."""
    B, T, K = trace.shape
    tr = torch.from_numpy(np.ascontiguousarray(trace, dtype=np.int64))
    ok = torch.stack([arith.exit_now(tr[:, s - 1], s, margin, min_steps, T) for s in range(1, T + 1)], 1)
    ex = ok.to(torch.int8).argmax(1)   # the first step that exits (step T always does)
    pred = arith.argmax_first(tr[torch.arange(B), ex])
    return ex.numpy() + 1, pred.numpy()


def entropy_exit(trace: np.ndarray, threshold: float, frac_bits: int, min_steps: int = 1):
    """DT-SNN-style float rule: exit when the softmax entropy of O_t / t drops below the threshold
    (O in the trained units: the trace's fixed-point values over 2^frac_bits)."""
    B, T, K = trace.shape
    z = torch.from_numpy(trace.astype(np.float64)) / torch.arange(1, T + 1, dtype=torch.float64).reshape(1, T, 1)
    z = z / (1 << frac_bits)
    p = torch.softmax(z, dim=2)
    ent = -(p * torch.log(p.clamp_min(1e-30))).sum(2).numpy()
    ok = (ent < threshold) & (np.arange(1, T + 1) >= min_steps)
    ok[:, -1] = True
    ex = ok.argmax(1)
    return ex + 1, trace[np.arange(B), ex].argmax(1)


def exits(trace: np.ndarray, rule: str, value, frac_bits: int | None = None):
    """(exit_step, pred) per sample under one threshold of a rule (the entropy rule needs frac_bits)."""
    if rule == "margin":
        return margin_exit(trace, value)
    if frac_bits is None:
        raise ValueError("the entropy rule needs frac_bits (the trace's fixed-point scale)")
    return entropy_exit(trace, value, frac_bits)


def _scored(trace: np.ndarray, y: np.ndarray, rule: str, values, frac_bits: int | None):
    """(value, per-sample correct, exit steps) for each threshold value of a rule."""
    for v in values:
        ex, pred = exits(trace, rule, v, frac_bits)
        yield v, pred == y, ex


def sweep(trace: np.ndarray, y: np.ndarray, rule: str, values, frac_bits: int | None = None) -> list[tuple]:
    """(value, accuracy, mean steps) for each threshold value of a rule."""
    return [(v, float(right.mean()), float(ex.mean())) for v, right, ex in _scored(trace, y, rule, values, frac_bits)]


def margin_candidates(trace: np.ndarray, n: int = 200) -> list[int]:
    """Margins worth trying: quantiles of the observed per-step gap / t, plus 0."""
    top2 = np.sort(trace, axis=2)[:, :, -2:]
    per_step = (top2[:, :, 1] - top2[:, :, 0]) / np.arange(1, trace.shape[1] + 1)
    qs = np.unique(np.ceil(np.quantile(per_step, np.linspace(0, 1, n))).astype(np.int64))
    return [0] + [int(q) for q in qs if q > 0]


def loss_upper_bound(full_correct: np.ndarray, exit_correct: np.ndarray, confidence: float) -> float:
    """One-sided upper confidence bound of the accuracy lost by exiting early, from paired outcomes.

    Per image d = [all steps right] - [exit right] (-1, 0 or 1); the bound is mean(d) + z * sd(d) / sqrt(n)
    with z the normal quantile of `confidence` (0.5 gives the plain mean). One lost image out of a few hundred
    is bounded well above its own share, so a threshold is not set right at the budget, where it would land
    above it on another split about half the time. It sees only what the split shows: an exit that changes
    no image's outcome on it is bounded by 0.
    """
    d = full_correct.astype(np.float64) - exit_correct.astype(np.float64)
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return float(d.mean()) + NormalDist().inv_cdf(confidence) * sd / np.sqrt(n)


def calibrate(trace: np.ndarray, y: np.ndarray, rule: str, budget: float, values, frac_bits: int | None = None,
              confidence: float = 0.95) -> tuple:
    """(threshold, accuracy, mean steps): the cheapest threshold whose accuracy loss against running all
    T_max steps is within `budget` at the given one-sided confidence (loss_upper_bound); None when none is.

    Run on a validation split held apart from the test split.
    """
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence {confidence}: must be in [0.5, 1)")
    full_correct = margin_exit(trace, None)[1] == y
    ok = [(v, float(right.mean()), float(ex.mean())) for v, right, ex in _scored(trace, y, rule, values, frac_bits)
          if loss_upper_bound(full_correct, right, confidence) <= budget]
    if not ok:
        return None, float(full_correct.mean()), float(trace.shape[1])
    return min(ok, key=lambda r: (r[2], -r[1]))


def golden_trace(pkg: Package, x_bytes: np.ndarray) -> np.ndarray:
    return golden.output_trace(pkg, x_bytes)
