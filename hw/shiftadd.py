"""The PE lane: one ttfs spike through one (sign, mag) weight, SPEC section 2, shifts only.

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


def lane_contrib(m: Module, cfg: Config, t, silent, sign, mag, E, taulog, lut: Array, name="pe"):
    """Build one lane's combinational contribution; returns a signed A-bit Signal."""
    A, F = cfg.acc_bits, cfg.frac_bits
    nbits = cfg.code_bits + 8 + cfg.tau_log_bits + 8
    d = Signal(signed(10), name=f"{name}_d")
    n = Signal(signed(nbits), name=f"{name}_n")
    q = Signal(signed(nbits), name=f"{name}_q")
    r = Signal(unsigned(max(1, ubits(cfg.max_tau - 1))), name=f"{name}_r")
    m.d.comb += [
        d.eq(mag - 1 - E),
        n.eq(t + (d << taulog)),
        q.eq(n >> taulog),
        r.eq(n & ((Const(1, 8) << taulog) - 1)),
    ]
    lr = Signal(F + 1, name=f"{name}_lut")
    m.d.comb += lr.eq(lut[r])
    sh_bits = ubits(max(A, F + 1))
    rsh = Signal(sh_bits, name=f"{name}_rsh")
    lsh = Signal(sh_bits, name=f"{name}_lsh")
    mm = Signal(A, name=f"{name}_m")
    with m.If(q >= 0):
        m.d.comb += rsh.eq(Mux(q > F + 1, F + 1, q))
        m.d.comb += mm.eq(lr >> rsh)
    with m.Else():
        m.d.comb += lsh.eq(Mux(-q >= A, A, -q))
        with m.If(-q < A):
            m.d.comb += mm.eq((lr << lsh)[:A])
    out = Signal(signed(A), name=f"{name}_c")
    with m.If(~silent & (mag != 0)):
        m.d.comb += out.eq(Mux(sign, -mm, mm))
    return out


class ShiftAddLane(wiring.Component):
    """Standalone PE lane (for unit tests): all operands as ports, LUT as ports."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        sig = {
            "t": In(cfg.code_bits), "T": In(cfg.code_bits), "sign": In(1), "mag": In(cfg.weight_bits - 1),
            "E": In(signed(EXP_BITS)), "taulog": In(cfg.tau_log_bits),
            "contrib": Out(signed(cfg.acc_bits)),
        }
        for i in range(cfg.max_tau):
            sig[f"lut{i}"] = In(cfg.frac_bits + 1)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        lut = Array([getattr(self, f"lut{i}") for i in range(self.conf.max_tau)])
        c = lane_contrib(m, self.conf, self.t, self.t >= self.T, self.sign, self.mag, self.E, self.taulog, lut)
        m.d.comb += self.contrib.eq(c)
        return m
