"""Firing unit: P potentials to P ttfs codes (SPEC section 3).

A parallel comparator bank: the table is non-increasing, so the first t with
V >= thr[t] equals the number of thresholds V stays below. Unused table
entries (t >= the package's T) hold 0, which no compared V is below, so the
count is T (silent) exactly when no threshold is reached.

The compares are `thr_width` bits wide and unsigned (Config.thr_bits; the
package's thresholds are all >= 1, and `fits` refuses any of 2^W or more):
V is clamped to [0, 2^W - 1] first, which keeps every `V < thr` for a
threshold in [1, 2^W - 1] (V < 0 is below it and stays below; V >= 2^W - 1
is not and does not). A build for one network compares frac_bits + 2 bits
instead of acc_bits: the bank is the largest block of a 16-lane build.

Timing: `latency=0` is the combinational unit of the unit test. In the
processor (`latency=2`) the compare bits and the codes are registered.
`split=2` time-shares a bank of P/2 lanes over two cycles (the lower lanes
registered in the cycle `valid` is high and compared the next, the upper
half the cycle after; codes out at latency 4): the bank is P x T_max
compares of A bits, the largest block of a 16-lane build, and halving it
costs one cycle per fired word.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config


def thermo_count(bits):
    """The number of set bits of a thermometer code (ones first, as the compare bits of a non-increasing
    table are): bit j of the count is an OR of `count in [a, b)` tests, each two bits of the code, so the
    count is two LUT levels deep where an adder tree (which any code would need) is four or five."""
    N = len(bits)

    def ge(c):  # count >= c
        return Const(1, 1) if c <= 0 else Const(0, 1) if c > N else bits[c - 1]

    out = []
    for j in range(N.bit_length()):
        span = 1 << (j + 1)
        out.append(Cat(*[ge(k * span + span // 2) & ~ge((k + 1) * span) for k in range(N // span + 1)]).any())
    return Cat(*out)


class FiringUnit(wiring.Component):
    def __init__(self, cfg: Config, latency: int = 0, split: int = 1, valid_copies: int = 1):
        if (latency, split) not in ((0, 1), (2, 1), (4, 2)):
            raise ValueError(f"latency = {latency}, split = {split}: must be (0, 1), (2, 1) or (4, 2)")
        if split == 2 and cfg.lanes < 2:
            raise ValueError("split = 2 needs at least 2 lanes")
        self.conf, self.latency, self.split = cfg, latency, split
        super().__init__({
            "v": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.lanes)),
            # split = 2: v is taken in this cycle; valid_copies equal bits, each for a group of lanes (its
            # loads are every upper-half lane's hold enable and half-select: copies shorten the nets)
            "valid": In(valid_copies),
            "thr": In(data.ArrayLayout(cfg.thr_width, cfg.max_t)),
            "codes": Out(data.ArrayLayout(cfg.code_bits, cfg.lanes)),
        })

    def _clamp(self, v):
        """V clamped to the compare width's unsigned range (see the module docstring)."""
        W, A = self.conf.thr_width, self.conf.acc_bits
        if W >= A - 1:
            return Mux(v[A - 1], 0, v[:W])
        return Mux(v[A - 1], 0, Mux(v[W:A - 1].any(), (1 << W) - 1, v[:W]))

    def _below(self, v, t):
        """clamp(v) < thr[t] for an unclamped A-bit v, with no clamp mux in front of the compare's carry
        chain: a negative v is below every nonzero threshold, a v of 2^W or more below none, any other v
        compares its low W bits (the mux in front of the chain was the 1- and 4-lane builds' worst path)."""
        W, A = self.conf.thr_width, self.conf.acc_bits
        over = v[W:A - 1].any() if W < A - 1 else Const(0, 1)
        return Mux(v[A - 1], self.thr[t].any(), ~over & (v[:W] < self.thr[t]))

    def _bank(self, m, dom, vs, name, clamped=True):
        """Compare bits of each potential in vs (registered in dom), and their counts (comb); vs are
        clamped already, or (clamped False) full A-bit potentials."""
        counts = []
        for l, v in enumerate(vs):
            below = Signal(self.conf.max_t, name=f"{name}{l}")
            dom += below.eq(Cat(*[(v < self.thr[t]) if clamped else self._below(v, t) for t in range(self.conf.max_t)]))
            cnt = Signal(self.conf.code_bits, name=f"{name}{l}_n")
            m.d.comb += cnt.eq(thermo_count(below))
            counts.append(cnt)
        return counts

    def elaborate(self, platform):
        m = Module()
        P = self.conf.lanes
        if self.split == 1:
            dom = m.d.sync if self.latency else m.d.comb
            for l, cnt in enumerate(self._bank(m, dom, [self.v[l] for l in range(P)], "below", clamped=False)):
                dom += self.codes[l].eq(cnt)
            return m
        H = P // 2
        # the bank compares a register, loaded with the lower half in the cycle `valid` is high and with
        # the held upper half in the next: the half-select mux sits before that register, not in front
        # of the P/2 x T_max comparators it would otherwise be copied into (its select would fan out to
        # thousands of LUTs)
        W = self.conf.thr_width
        hold = Signal(data.ArrayLayout(W, H))   # clamped on the way in (the clamp is before both registers)
        cin = Signal(data.ArrayLayout(W, H))
        nv = len(self.valid)
        for l in range(H):
            vl = self.valid[l * nv // H]
            with m.If(vl):
                m.d.sync += hold[l].eq(self._clamp(self.v[H + l]))
            m.d.sync += cin[l].eq(Mux(vl, self._clamp(self.v[l]), hold[l]))
        lower = Signal()   # cin holds the lower half
        m.d.sync += lower.eq(self.valid[0])
        counts = self._bank(m, m.d.sync, [cin[l] for l in range(H)], "below")
        counted_lower, counted_upper = Signal(), Signal()
        m.d.sync += [counted_lower.eq(lower), counted_upper.eq(counted_lower)]
        for l, cnt in enumerate(counts):
            with m.If(counted_lower):
                m.d.sync += self.codes[l].eq(cnt)
            with m.If(counted_upper):
                m.d.sync += self.codes[H + l].eq(cnt)
        return m
