"""The PE lane: one operand through one (sign, mag) weight, SPEC section 2, shifts only.

The operand picks the shifted base value with a mux before the one barrel
shifter: lut[r] for a ttfs code (a multistep binary spike is the ttfs case
t = 0, tau = 1, lut[0] = 2^F), or x << F for a graded byte, whose shift is
8 + e - E (the ttfs formula with t = 8, tau = 1).

n = t + tau*(e - E); q, r = n >> log2(tau), n & (tau-1); m = lut[r] >> q or
lut[r] << -q; the result is taken modulo 2^A. Modular arithmetic is exact
here: the package guarantees every partial sum is in the A-bit range, and
sums mod 2^A of the exact terms give the exact sum. So left shifts of A or
more give 0, and right shifts past the LUT width give 0: both shifters are
clamped, no multiplier, no wide intermediate.
"""
from amaranth.hdl import Array, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Config, ubits

EXP_BITS = 7  # exp_offset in [-32, 32]


def tau_e(E, taulog):
    """tau * (-1 - E): the exponent sum's per-layer constant (e = mag - 1), a register in the processor."""
    return (-1 - E) << taulog


def lane_base(t, graded, te):
    """The part of n = t + tau*(e - E) shared by every lane of one event: t + tau_e (t = 8 for a graded
    byte). The processor registers it a stage ahead, so each lane adds only mag << taulog (one short
    carry chain) in its first stage."""
    return Mux(graded, 8, t) + te


def lane_stages(m: Module, cfg: Config, t, silent, sign, mag, base, taulog, lut: Array, graded, name: str, pipe):
    """One lane's shift path in four stages; `pipe(sig, name)` is the boundary between them (a
    register in the processor, the identity in the standalone lane). Stage 1: the exponent sum
    n = base + (mag << taulog) (base from lane_base); stage 2: quotient / remainder and the clamped
    shift, its compares taken on n against per-tau limits so they run beside the divide; stage 3: the
    base value; stage 4: the barrel shift. Returns (magnitude mm, sign, nonzero) of the contribution,
    A bits unsigned (the accumulate stage adds or subtracts it: the negation folds into the adder's
    carry chain). graded (1 bit): t is a byte x, base x << F (taulog must then be 0)."""
    A, F = cfg.acc_bits, cfg.frac_bits
    # |mag - 1 - E| < 2^9 (magnitudes < 2^7, |E| < 2^6), shifted by at most the taulog register's range
    nbits = max(cfg.sym_bits + 1, 10 + (1 << cfg.tau_log_bits) - 1) + 1
    BW = F + 8  # widest base: a byte << F
    sh_bits = ubits(max(A, BW))
    # stage 1: n = t + tau * (e - E)
    n = Signal(signed(nbits), name=f"{name}_n")
    nz = Signal(name=f"{name}_nz")
    m.d.comb += [n.eq(base + (mag << taulog)), nz.eq(~silent & (mag != 0))]
    n, t, sign, nz, graded = (pipe(x, f"{name}_{k}1") for x, k in ((n, "n"), (t, "t"), (sign, "s"), (nz, "nz"), (graded, "g")))
    # stage 2: q, r = divmod(n, tau). q < 0: a left shift by -q = 1 + ~q (stage 4 shifts by one more),
    # 0 when -q >= A, i.e. n < (1 - A) * tau; q > BW: a right shift past the base, clamped to BW.
    q = Signal(signed(nbits), name=f"{name}_q")
    r = Signal(unsigned(max(1, ubits(cfg.max_tau - 1))), name=f"{name}_r")
    left, zero, rsat = Signal(name=f"{name}_left"), Signal(name=f"{name}_zero"), Signal(name=f"{name}_rsat")
    amt = Signal(sh_bits, name=f"{name}_amt")
    m.d.comb += [q.eq(n >> taulog), r.eq(n & ((Const(1, 8) << taulog) - 1)), left.eq(n[-1]),
                 zero.eq(n < (Const(1 - A, signed(nbits)) << taulog)),
                 rsat.eq(n >= (Const(BW + 1, signed(nbits)) << taulog)),
                 amt.eq(Mux(left, (~q)[:sh_bits], Mux(rsat, BW, q[:sh_bits])))]
    r, left, zero, amt, t, sign, nz, graded = (pipe(x, f"{name}_{k}2") for x, k in (
        (r, "r"), (left, "left"), (zero, "zero"), (amt, "amt"), (t, "t"), (sign, "s"), (nz, "nz"), (graded, "g")))
    # stage 3: base lut[r] (or x << F)
    lr = Signal(BW, name=f"{name}_lut")
    m.d.comb += lr.eq(Mux(graded, t[:8] << F, lut[r]))
    lr, left, zero, amt, sign, nz = (pipe(x, f"{name}_{k}3") for x, k in (
        (lr, "lut"), (left, "left"), (zero, "zero"), (amt, "amt"), (sign, "s"), (nz, "nz")))
    # stage 4: shifted
    mm = Signal(A, name=f"{name}_m")
    m.d.comb += mm.eq(Mux(left, Mux(zero, 0, ((lr << 1) << amt)[:A]), lr >> amt))
    return mm, sign, nz


def lane_contrib(m: Module, cfg: Config, t, silent, sign, mag, E, taulog, lut: Array, name="pe", graded=None):
    """One lane's combinational contribution (SPEC section 2) as a signed A-bit Signal."""
    if graded is None:
        graded = Const(0, 1)
    mm, sign, nz = lane_stages(m, cfg, t, silent, sign, mag, lane_base(t, graded, tau_e(E, taulog)), taulog, lut, graded, name,
                               lambda x, _n: x)
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
