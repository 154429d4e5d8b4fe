"""The PE lane: one operand through one (sign, mag) weight, SPEC section 2, shifts only.

The operand picks the shifted base value with a mux before the one barrel
shifter: lut[r] for a ttfs code (a multistep binary spike is the ttfs case
t = 0, tau = 1, lut[0] = 2^F), or x << F for a graded byte, whose shift is
8 + e - E (the ttfs formula with t = 8, tau = 1).

n = t + tau*(e - E); q, r = n >> log2(tau), n & (tau-1); m = lut[r] >> q or
lut[r] << -q; the result is taken modulo 2^A. Modular arithmetic is exact
here: the package guarantees every partial sum is in the A-bit range, and
sums mod 2^A of the exact terms give the exact sum. So left shifts of A or
more give 0, and right shifts past the LUT width give 0. Both directions are
one right shift: lut[r] << -q = (lut[r] << A) >> (A + q), and so is
lut[r] >> q; the lane computes n + A * tau (folded into the per-layer
constant), whose quotient is A + q, and clamps it to [0, A + BW] (0 leaves
only the zero low bits of lut[r] << A). No multiplier, no wide intermediate.
"""
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Config, ubits

EXP_BITS = 7  # exp_offset in [-32, 32]


def tau_e(E, taulog, A):
    """tau * (A - 1 - E): the exponent sum's per-layer constant (e = mag - 1; A * tau makes the quotient
    A + q, the right-shift amount of lut[r] << A), a register in the processor."""
    return (A - 1 - E) << taulog


def lane_base(t, graded, te):
    """The part of n = t + tau*(e - E) shared by every lane of one event: t + tau_e (t = 8 for a graded
    byte). The processor registers it a stage ahead, so each lane adds only mag << taulog (one short
    carry chain) in its first stage."""
    return Mux(graded, 8, t) + te


def _widths(cfg: Config):
    """(bits of n, widest base value, bits of a shift amount)."""
    # |mag - 1 - E| < 2^9 (magnitudes < 2^7, |E| < 2^6), shifted by at most the taulog register's range;
    # one more bit for A * tau (A < 2^9)
    nbits = max(cfg.sym_bits + 1, 10 + (1 << cfg.tau_log_bits) - 1) + 2
    BW = cfg.frac_bits + 8  # widest base: a byte << F
    return nbits, BW, ubits(cfg.acc_bits + BW)


def shift_limits(cfg: Config, taulog):
    """Stage 2's clamp limits on n (quotient A + q): below tau the quotient is <= 0 (a left shift of A or
    more), from (A + BW + 1) * tau on it is past the base. Constants shifted by the taulog register, so
    the processor registers them once (a shift of a constant in front of every lane's compare chains was
    on its worst paths)."""
    nbits, BW, _ = _widths(cfg)
    return Const(1, signed(nbits)) << taulog, Const(cfg.acc_bits + BW + 1, signed(nbits)) << taulog


def lane_stages(m: Module, cfg: Config, t, silent, sign, mag, base, taulog, limits, lut: Array, graded, name: str, pipe):
    """One lane's shift path in four stages; `pipe(sig, name)` is the boundary between them (a
    register in the processor, the identity in the standalone lane); limits from shift_limits. Stage 1:
    the exponent sum n = base + (mag << taulog) (base from lane_base); stage 2: quotient / remainder and
    the clamped shift, its compares taken on n against per-tau limits so they run beside the divide,
    and the base value lut[r]; stage 3: the shift's coarse part; stage 4: its fine part (together one
    right shift). Returns (magnitude mm, sign, nonzero) of the contribution, A bits unsigned (the
    accumulate stage adds or subtracts it: the negation folds into the adder's carry chain). graded (1 bit): t is a byte x, base x << F (taulog must then be 0)."""
    A, F = cfg.acc_bits, cfg.frac_bits
    nbits, BW, sh_bits = _widths(cfg)
    lim_zero, lim_rsat = limits
    # stage 1: n = t + tau * (e - E)
    n = Signal(signed(nbits), name=f"{name}_n")
    nz = Signal(name=f"{name}_nz")
    m.d.comb += [n.eq(base + (mag << taulog)), nz.eq(~silent & (mag != 0))]
    n, t, sign, nz, graded = (pipe(x, f"{name}_{k}1") for x, k in ((n, "n"), (t, "t"), (sign, "s"), (nz, "nz"), (graded, "g")))
    # stage 2: Q, r = divmod(n, tau) with Q = A + q (the base carries A * tau), the right-shift amount of
    # lut[r] << A: 0 when Q <= 0 (q <= -A: a left shift of A or more gives 0 mod 2^A), clamped to A + BW
    # past the base (the result is 0 either way)
    q = Signal(signed(nbits), name=f"{name}_q")
    r = Signal(unsigned(max(1, ubits(cfg.max_tau - 1))), name=f"{name}_r")
    zero, rsat = Signal(name=f"{name}_zero"), Signal(name=f"{name}_rsat")
    amt = Signal(sh_bits, name=f"{name}_amt")
    lr = Signal(BW, name=f"{name}_lut")
    m.d.comb += [q.eq(n >> taulog), r.eq(n & ((Const(1, 8) << taulog) - 1)),
                 zero.eq(n < lim_zero), rsat.eq(n >= lim_rsat),
                 amt.eq(Mux(zero, 0, Mux(rsat, A + BW, q[:sh_bits]))),
                 lr.eq(Mux(graded, t[:8] << F, lut[r]))]   # the base lut[r] (or x << F), beside the compares
    lr, amt, sign, nz = (pipe(x, f"{name}_{k}2") for x, k in ((lr, "lut"), (amt, "amt"), (sign, "s"), (nz, "nz")))
    # stage 3: the right shift's coarse part (by amt - amt % 8), kept A + 7 bits wide: the whole shift in
    # stage 4 would be six mux levels; three and three balance the two stages
    pre = Signal(A + 7, name=f"{name}_pre")
    m.d.comb += pre.eq(((lr << A) >> (amt[3:] << 3))[:A + 7])
    pre, fine, sign, nz = (pipe(x, f"{name}_{k}3") for x, k in ((pre, "pre"), (amt[:3], "fine"), (sign, "s"), (nz, "nz")))
    # stage 4: the fine shift (by amt % 8)
    mm = Signal(A, name=f"{name}_m")
    m.d.comb += mm.eq((pre >> fine)[:A])
    return mm, sign, nz


def lane_contrib(m: Module, cfg: Config, t, silent, sign, mag, E, taulog, lut: Array, name="pe", graded=None):
    """One lane's combinational contribution (SPEC section 2) as a signed A-bit Signal."""
    if graded is None:
        graded = Const(0, 1)
    mm, sign, nz = lane_stages(m, cfg, t, silent, sign, mag, lane_base(t, graded, tau_e(E, taulog, cfg.acc_bits)), taulog,
                               shift_limits(cfg, taulog), lut, graded, name, lambda x, _n: x)
    out = Signal(signed(cfg.acc_bits), name=f"{name}_c")
    m.d.comb += out.eq(Mux(nz, Mux(sign, -mm, mm), 0))
    return out


class ShiftAddLane(wiring.Component):
    """Standalone PE lane (for unit tests): all operands as ports, LUT as ports."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        sig = {
            "t": In(cfg.sym_bits), "T": In(cfg.code_bits), "graded": In(1),
            "sign": In(1), "mag": In(cfg.weight_bits - 1),
            "E": In(signed(EXP_BITS)), "taulog": In(cfg.tau_log_bits),
            "contrib": Out(signed(cfg.acc_bits)),
        }
        for i in range(cfg.max_tau):
            sig[f"lut{i}"] = In(cfg.frac_bits + 1)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        lut = Array([getattr(self, f"lut{i}") for i in range(self.conf.max_tau)])
        silent = Mux(self.graded, self.t == 0, self.t >= self.T)
        c = lane_contrib(m, self.conf, self.t, silent, self.sign, self.mag, self.E, self.taulog, lut, graded=self.graded)
        m.d.comb += self.contrib.eq(c)
        return m
