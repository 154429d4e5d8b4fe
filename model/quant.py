"""Conversion-aware quantizers: the TTFS log activation and the W-bit log weight.

Both use the tables of model/arith.py, so the trained ANN sees the same
levels the SNN will produce. Gradients are straight-through.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import arith


@dataclass(frozen=True)
class QuantConfig:
    """What the network will be converted to: the package's T, tau, F and W."""

    time_steps: int = 16
    tau: int = 2
    frac_bits: int = 16
    weight_bits: int = 5
    rounding: str = "nearest"  # thresholds: 'floor' or 'nearest' (log domain)

    def thresholds(self) -> list[int]:
        return arith.make_thresholds(self.frac_bits, self.time_steps, self.tau, self.rounding)

    def as_dict(self) -> dict:
        return asdict(self)


def act_codes(x: torch.Tensor, q: QuantConfig) -> torch.Tensor:
    """TTFS code of a normalised potential (1.0 = 2^F), as the firing rule gives it."""
    thr = torch.tensor(q.thresholds(), dtype=x.dtype, device=x.device) / (1 << q.frac_bits)
    return (x.unsqueeze(-1) < thr).sum(-1)


def code_values(codes: torch.Tensor, q: QuantConfig) -> torch.Tensor:
    """2^(-t/tau) for spike codes, 0 for silent."""
    return arith.code_value(codes, q.tau, q.time_steps).to(codes.device)


class _LogAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, q):
        ctx.save_for_backward(x)
        return code_values(act_codes(x, q), q).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x > 0) & (x < 1)).to(g.dtype), None  # clipped-ReLU straight-through


def log_act(x: torch.Tensor, q: QuantConfig) -> torch.Tensor:
    return _LogAct.apply(x, q)


def weight_exponent(w: torch.Tensor) -> int:
    """Per-layer exponent offset E: the largest weight rounds to 2^E (log domain)."""
    top = float(w.detach().abs().max())
    if top == 0:
        return 0
    lo, hi = arith.EXP_OFFSET_RANGE
    return int(min(max(round(torch.log2(torch.tensor(top)).item()), lo), hi))


def weight_codes(w: torch.Tensor, weight_bits: int, exp_offset: int):
    """(sign, mag) codes: |w| rounds to 2^k in the log domain; e = E - k; too small -> 0."""
    emax = arith.max_mag(weight_bits) - 1
    a = w.detach().abs()
    k = torch.round(torch.log2(a.clamp_min(1e-30)))
    e = (exp_offset - k).clamp_min(0)
    zero = (a == 0) | (e > emax)
    mag = torch.where(zero, torch.zeros_like(e), e + 1).to(torch.int64)
    sign = (w.detach() < 0).to(torch.int64) * (mag > 0)
    return sign, mag


def code_weights(sign: torch.Tensor, mag: torch.Tensor, exp_offset: int) -> torch.Tensor:
    """Real weight value of (sign, mag) codes: (-1)^sign * 2^(E - (mag - 1)), 0 for mag 0."""
    val = torch.pow(2.0, (exp_offset - (mag - 1)).to(torch.float32))
    val = torch.where(mag > 0, val, torch.zeros_like(val))
    return torch.where(sign.bool(), -val, val)


class _LogWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, weight_bits):
        E = weight_exponent(w)
        s, m = weight_codes(w, weight_bits, E)
        return code_weights(s, m, E).to(w.device, w.dtype)

    @staticmethod
    def backward(ctx, g):
        return g, None


def log_weight(w: torch.Tensor, weight_bits: int) -> torch.Tensor:
    return _LogWeight.apply(w, weight_bits)


def fixed_bias(b: torch.Tensor, frac_bits: int) -> torch.Tensor:
    """Bias on the 2^-F grid the package stores, straight-through."""
    s = float(1 << frac_bits)
    return b + (torch.round(b * s) / s - b).detach()
