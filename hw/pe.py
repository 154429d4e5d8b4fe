"""The PE array: P shift-add lanes (hw/shiftadd.py) and the accumulate stage, fed one (event, output group)
op per cycle by the Scatter.

Stages: issue (the Scatter's registers, the weight read), R (the weight word arrives; a banked weight
memory adds a stage before it, hw/banks.py), X1..X4 (the lane stages), A (accumulate and write back). The
potential word is read in X2 (`pmem_raddr`) and lands in pmem_q in X4 (the RAM's output register); the
potential memory's write port is a cycle behind A, so the four sums the read did not see are forwarded:
the three oldest into pe_a_old (in X4), the newest in A. Back-to-back ops on one potential word therefore
cost no stall.

Signals that fan out to every lane's bits (the forwarding selects, the shift limits and `taulog`) are
register copies, one per group of four lanes (hw/sequencer.copies).
"""
from __future__ import annotations

from functools import partial

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .banks import WeightBanks
from .config import Config, widths
from .protocol import weight_lane_layout
from .sequencer import copies, ram_q, reg
from .shiftadd import EXP_BITS, lane_base, lane_stages, shift_limits, tau_e


class PEArray(wiring.Component):
    """op / paddr / t: the Scatter's op. weight: the weight word of the op issued in the cycle before (the
    RAM's read data; with `banked`, the bank mux's register a cycle later). pmem_data: the potential
    memory's read data for `pmem_raddr`. wr_valid / wr_addr: the accumulate stage's op, whose sum
    `wr_data` is a cycle later (what the registered write port writes). sop: an op entered the array."""

    def __init__(self, cfg: Config, banked: bool):
        self.conf, self.banked = cfg, banked
        P, A = cfg.lanes, cfg.acc_bits
        XA = widths(cfg)[0]
        vl = data.ArrayLayout(signed(A), P)
        super().__init__({
            "op": In(1), "paddr": In(XA), "t": In(cfg.sym_bits),
            "weight": In(data.ArrayLayout(weight_lane_layout(cfg), P)),
            "pmem_data": In(vl), "pmem_raddr": Out(XA), "pmem_q": Out(vl),
            "exp_offset": In(signed(EXP_BITS)), "taulog": In(cfg.tau_log_bits), "T": In(cfg.code_bits),
            "graded": In(1), "lut": In(data.ArrayLayout(cfg.frac_bits + 1, cfg.max_tau)),
            "wr_valid": Out(1), "wr_addr": Out(XA), "wr_data": Out(vl),
            "busy": Out(1), "sop": Out(1),
        })

    def elaborate(self, platform):
        cfg, banked = self.conf, self.banked
        P, A = cfg.lanes, cfg.acc_bits
        vl = data.ArrayLayout(signed(A), P)
        m = Module()
        T, taulog, graded = self.T, self.taulog, self.graded
        luts = Array([self.lut[i] for i in range(cfg.max_tau)])
        NG = max(1, P // 4)   # register copies: one per group of four lanes
        grp = [l * NG // P for l in range(P)]   # each lane's copy
        pipe = partial(reg, m)   # (sig, name): sig one clock later

        r_v, r_pa, r_t = pipe(self.op, "pe_r_v"), pipe(self.paddr, "pe_r_pa"), pipe(self.t, "pe_r_t")
        m_v = r_v   # an op waiting for a banked weight word, in the stage before R (none in a one-memory build)
        if banked:  # the bank mux has a register of its own (hw/banks.py): the op waits a cycle for its word
            assert WeightBanks.LATENCY == 3
            m_v, (r_v, r_pa, r_t) = r_v, (pipe(r_v, "pe_r2_v"), pipe(r_pa, "pe_r2_pa"), pipe(r_t, "pe_r2_t"))
        x1_v, x1_pa, x1_t = pipe(r_v, "pe_x1_v"), pipe(r_pa, "pe_x1_pa"), pipe(r_t, "pe_x1_t")
        x1_w = ram_q(m, self.weight, "pe_x1_w") if not banked else self.weight   # the banks' register is their own
        x1_silent = pipe(Mux(graded, r_t == 0, r_t >= T), "pe_x1_silent")   # tested in R: X1 ANDs it with mag != 0
        # the event's share of every lane's exponent sum, from R; tau * (A - 1 - E) is constant over a layer
        x1_base = pipe(lane_base(r_t, graded, pipe(tau_e(self.exp_offset, taulog, A), "pe_tau_e")), "pe_x1_base")
        # taulog is static; the limits reach every lane's shift-amount compare: one copy per four lanes
        lim_copies = [copies(m, x, f"pe_lim{k}", NG) for k, x in enumerate(shift_limits(cfg, taulog))]
        taulog_copies = copies(m, taulog, "pe_taulog", NG)   # static; each lane's shift reads it (458 loads)
        lanes = [lane_stages(m, cfg, x1_t, x1_silent, x1_w[l].sign, x1_w[l].mag, x1_base, taulog_copies[grp[l]],
                             tuple(c[grp[l]] for c in lim_copies), luts, graded, f"pe{l}", pipe) for l in range(P)]
        x2_v, x2_pa = pipe(x1_v, "pe_x2_v"), pipe(x1_pa, "pe_x2_pa")
        x3_v, x3_pa = pipe(x2_v, "pe_x3_v"), pipe(x2_pa, "pe_x3_pa")
        x4_v, x4_pa = pipe(x3_v, "pe_x4_v"), pipe(x3_pa, "pe_x4_pa")
        a_v, a_pa = pipe(x4_v, "pe_a_v"), pipe(x4_pa, "pe_a_pa")
        sums = Signal(vl)
        # h1_s is what pmem's (registered) write port writes: the sum of the op one cycle past A
        h1_v, h1_pa, h1_s = pipe(a_v, "pe_h1_v"), pipe(a_pa, "pe_h1_pa"), pipe(sums, "pe_h1_s")  # summed last cycle
        h2_s = pipe(h1_s, "pe_h2_s")                                                              # two cycles ago
        h3_s = pipe(h2_s, "pe_h3_s")                                                              # three
        p_q = ram_q(m, self.pmem_data, "pmem_q")   # the word read in X2 (also the fire pass's F2 register)
        # in X4, h2_s and h3_s are the sums written in the cycle of the read and the one after, which the
        # read did not see, and h1_s is the sum of the op two ahead (the newest first); only the sum of the
        # op just ahead is forwarded in A itself, so the accumulate adder has a 2:1 mux in front (a 3:1
        # mux with its two selects fanning out to every lane's bits was a late path)
        # the forwarding selects drive every lane's bits (P x A mux selects each): one copy per group of
        # four lanes (hw/sequencer.py copies)
        # The compares run a stage early, on the registers one stage back (a_pa == x3_pa is x4_pa == x2_pa a
        # cycle before), so each copy loads from one flip-flop placed anywhere, not from a compare tree
        # that has to sit near all four copies.
        hit2 = copies(m, pipe(x4_v & (x4_pa == x2_pa), "pe_hit2_pre"), "pe_hit2", NG)
        hit3 = copies(m, pipe(a_v & (a_pa == x2_pa), "pe_hit3_pre"), "pe_hit3", NG)
        hit4 = copies(m, pipe(h1_v & (h1_pa == x2_pa), "pe_hit4_pre"), "pe_hit4", NG)
        a_old = Signal(vl, name="pe_a_old")
        for l in range(P):
            k = grp[l]
            m.d.sync += a_old[l].eq(Mux(hit2[k], h1_s[l], Mux(hit3[k], h2_s[l], Mux(hit4[k], h3_s[l], p_q[l]))))
        # no op enters the accumulate stage: hold it at 0, so its sum is 0 (clear and fire passes write it)
        zero_a = ~x4_v
        hit1 = copies(m, pipe(x4_v & (x4_pa == x3_pa), "pe_hit1_pre"), "pe_hit1", NG, clear=zero_a)
        with m.If(zero_a):
            m.d.sync += a_old.eq(0)
        for l, (mm, sg, nz) in enumerate(lanes):
            mm4, neg4, nz4 = pipe(mm, f"pe{l}_m3"), pipe(sg & nz, f"pe{l}_neg3"), pipe(nz, f"pe{l}_nz3")
            with m.If(zero_a):
                m.d.sync += nz4.eq(0)
            old = Mux(hit1[grp[l]], h1_s[l], a_old[l])
            # old + (nz ? (sign ? -mm : mm) : 0), the negation as invert-and-carry-in of one adder
            m.d.comb += sums[l].eq(old + (Mux(nz4, mm4, 0) ^ neg4.replicate(A)) + neg4)
        pe_busy = r_v | x1_v | x2_v | x3_v | x4_v | a_v | h1_v   # h1: the write of the last sum
        if banked:
            pe_busy = pe_busy | m_v
        m.d.comb += [self.pmem_raddr.eq(x2_pa), self.pmem_q.eq(p_q), self.wr_valid.eq(a_v), self.wr_addr.eq(a_pa),
                     self.wr_data.eq(h1_s), self.busy.eq(pe_busy), self.sop.eq(r_v)]
        return m
