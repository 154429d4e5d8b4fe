"""The exact integer arithmetic of SPEC.md sections 2-4, in one place.

The golden model, the package validator, the training quantizers and the
hardware generator all take their tables and rules from here, so a change to
the contract is a change to this file only. Scalar functions work on Python
ints (unbounded, so they also serve as the reference for widths); the table
builders turn them into numpy arrays the vectorised code gathers from.
"""
from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np

# Limits of the package format (SPEC section 1) and of this implementation.
WEIGHT_BITS_RANGE = (2, 8)
FRAC_BITS_RANGE = (8, 24)
ACC_BITS_RANGE = (8, 62)  # int64 golden model: 62 leaves headroom for sums of two
TTFS_T_RANGE = (1, 255)  # codes fit one byte; T itself is the silent code
MULTISTEP_T_RANGE = (1, 4095)
TAU_RANGE = (1, 64)
EXP_OFFSET_RANGE = (-32, 32)
LEAK_SHIFT_RANGE = (0, 31)
INPUT_BYTE_BITS = 8  # multistep graded input is an unsigned byte


def max_mag(weight_bits: int) -> int:
    """Largest magnitude code: W-1 magnitude bits."""
    return (1 << (weight_bits - 1)) - 1


def make_lut(frac_bits: int, tau: int) -> list[int]:
    """lut[r] = round(2^F * 2^(-r/tau)), r in [0, tau).

    Computed in 60-digit decimal so the rounding is exact for every F and tau
    the format allows (no value lies near a .5 boundary for r > 0).
    """
    out = []
    with localcontext() as ctx:
        ctx.prec = 60
        for r in range(tau):
            v = (Decimal(2) ** frac_bits) * (Decimal(2) ** (Decimal(-r) / Decimal(tau)))
            out.append(int(v.to_integral_value(rounding="ROUND_HALF_EVEN")))
    return out


def make_thresholds(frac_bits: int, time_steps: int, tau: int, rounding: str = "floor") -> list[int]:
    """TTFS firing table: code t stands for the value 2^(-t/tau).

    floor:   fire at t when V >= 2^(-t/tau)          (the code never overstates V)
    nearest: fire at t when V >= 2^(-(t+1/2)/tau)    (nearest level in the log domain)
    """
    if rounding not in ("floor", "nearest"):
        raise ValueError(f"rounding: {rounding!r} is not 'floor' or 'nearest'")
    half = Decimal(1) / 2 if rounding == "nearest" else Decimal(0)
    out = []
    with localcontext() as ctx:
        ctx.prec = 60
        for t in range(time_steps):
            v = (Decimal(2) ** frac_bits) * (Decimal(2) ** (-(Decimal(t) + half) / Decimal(tau)))
            out.append(max(1, int(v.to_integral_value(rounding="ROUND_HALF_EVEN"))))
    return out


def shift_value(lut: list[int], tau: int, n: int) -> int:
    """m = lut[n mod tau] >> floor(n/tau), or << for negative quotients."""
    q, r = divmod(n, tau)  # Python divmod floors: r in [0, tau)
    return lut[r] >> q if q >= 0 else lut[r] << (-q)


def ttfs_contrib(t: int, sign: int, mag: int, exp_offset: int, lut: list[int], tau: int, time_steps: int) -> int:
    """Signed contribution of a ttfs spike with code t through weight (sign, mag)."""
    if mag == 0 or t >= time_steps:
        return 0
    m = shift_value(lut, tau, t + tau * ((mag - 1) - exp_offset))
    return -m if sign else m


def spike_contrib(sign: int, mag: int, exp_offset: int, frac_bits: int) -> int:
    """Signed contribution of a multistep binary spike: tau = 1, lut = [2^F]."""
    if mag == 0:
        return 0
    m = shift_value([1 << frac_bits], 1, (mag - 1) - exp_offset)
    return -m if sign else m


def graded_contrib(x: int, sign: int, mag: int, exp_offset: int, frac_bits: int) -> int:
    """Signed contribution of a multistep graded byte x through weight (sign, mag)."""
    if mag == 0:
        return 0
    s = INPUT_BYTE_BITS + (mag - 1) - exp_offset
    m = (x << frac_bits) >> s if s >= 0 else (x << frac_bits) << (-s)
    return -m if sign else m


def ttfs_table(weight_bits: int, exp_offset: int, lut: list[int], tau: int, time_steps: int) -> np.ndarray:
    """Magnitudes C[t, mag] for t in [0, T] and every magnitude code (row T and column 0 are zero)."""
    c = np.zeros((time_steps + 1, max_mag(weight_bits) + 1), dtype=np.int64)
    for t in range(time_steps):
        for mag in range(1, c.shape[1]):
            c[t, mag] = ttfs_contrib(t, 0, mag, exp_offset, lut, tau, time_steps)
    return c


def spike_table(weight_bits: int, exp_offset: int, frac_bits: int) -> np.ndarray:
    """Magnitudes of a binary spike through each magnitude code."""
    return np.array([spike_contrib(0, m, exp_offset, frac_bits) for m in range(max_mag(weight_bits) + 1)], dtype=np.int64)


def graded_table(weight_bits: int, exp_offset: int, frac_bits: int) -> np.ndarray:
    """Magnitudes G[x, mag] for every input byte x and magnitude code."""
    g = np.zeros((1 << INPUT_BYTE_BITS, max_mag(weight_bits) + 1), dtype=np.int64)
    for x in range(g.shape[0]):
        for mag in range(1, g.shape[1]):
            g[x, mag] = graded_contrib(x, 0, mag, exp_offset, frac_bits)
    return g


def fire_code(v, thresholds):
    """First t with V >= thresholds[t], else T (silent). Works on torch int64 tensors.

    The table is non-increasing, so the first hit is the count of thresholds V
    does not reach: a binary search in the negated (non-decreasing) table.
    """
    import torch

    neg_thr = -torch.as_tensor(thresholds, dtype=torch.int64)
    return torch.searchsorted(neg_thr, -v.contiguous(), right=False)


def leak(v, leak_shift: int):
    """LIF leak V - (V >> k) with an arithmetic (flooring) shift; IF when k = 0."""
    return v - (v >> leak_shift) if leak_shift > 0 else v


def soft_reset(v, frac_bits: int):
    """Spike where V >= 2^F and subtract 2^F there. Returns (spikes, new V)."""
    spk = v >= (1 << frac_bits)
    return spk, v - (spk.to(v.dtype) << frac_bits)


def fire_and_reset(v, frac_bits: int, v_reset: int | None):
    """Spike where V >= 2^F; there V - 2^F (v_reset None) or V = v_reset (SPEC version 2). (spikes, new V)."""
    if v_reset is None:
        return soft_reset(v, frac_bits)
    spk = v >= (1 << frac_bits)
    return spk, v.masked_fill(spk, v_reset)


def exit_now(o, step: int, margin, min_steps: int, t_max: int):
    """SPEC 4.4 per sample: top-1 minus top-2 >= margin * step, after min_steps; always at T_max."""
    import torch

    if step >= t_max:
        return torch.ones(o.shape[0], dtype=torch.bool)
    if margin is None or step < min_steps:
        return torch.zeros(o.shape[0], dtype=torch.bool)
    top2 = torch.topk(o, 2, dim=1).values
    return (top2[:, 0] - top2[:, 1]) >= margin * step


def argmax_first(v):
    """argmax with the lowest index on ties (SPEC 3 and 4), explicit rather than relying on torch."""
    import torch

    idx = torch.arange(v.shape[1], dtype=torch.int64).expand_as(v)
    big = torch.full_like(idx, v.shape[1])
    return torch.where(v == v.max(dim=1, keepdim=True).values, idx, big).min(dim=1).values


def encode_value(v: np.ndarray, frac_bits: int, thresholds: list[int]) -> np.ndarray:
    """Host-side TTFS input encoding: code = min{t : round(v * 2^F) >= thr[t]}, T if none."""
    fixed = np.rint(np.asarray(v, dtype=np.float64) * (1 << frac_bits)).astype(np.int64)
    thr = np.asarray(thresholds, dtype=np.int64)
    return (fixed[..., None] < thr).sum(-1).astype(np.int64)


def code_value(t, tau: int, time_steps: int):
    """Real value a code stands for, 2^(-t/tau), and 0 for silent (used by training only)."""
    import torch

    t = torch.as_tensor(t)
    val = torch.pow(2.0, -t.to(torch.float32) / tau)
    return torch.where(t >= time_steps, torch.zeros_like(val), val)


def signed_range(bits: int) -> tuple[int, int]:
    """Inclusive range of a two's-complement integer of this width."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def bits_for(lo: int, hi: int) -> int:
    """Smallest signed width holding every integer in [lo, hi]."""
    need = max(hi, -lo - 1, 0)
    return max(1, need.bit_length() + 1)

