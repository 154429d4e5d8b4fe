"""An AXI4 memory model for co-simulation, in HDL so that it runs at simulator speed (hw/harness.py).

It answers an AXI4 read manager (protocol.AxiReadSignature) from a memory the testbench owns and fills
through VPI (its synchronous read port: rd_addr, rd_data a cycle later), with a settable latency (cycles from an accepted AR to its first beat at the earliest), bandwidth
(bytes per cycle, in sixteenths: a token bucket), random AR and R stalls, RID echoing ARID, a DECERR for every beat past
`size` bytes and a SLVERR for every beat in [err_lo, err_hi). Bursts are served in order; R beats of a
burst may be spread by the bandwidth and the stalls; RVALID, once up, stays up until taken.

It also checks the manager (`violations`, the first one's code in `first_violation`, Violation):
ARVALID dropped or AR changed before ARREADY, a burst across 4 KB, ARSIZE other than the beat, ARBURST
other than INCR, an ARADDR off the beat. Counts: bursts and beats requested, beats sent.
"""
from __future__ import annotations

import enum

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .config import XADDR_BITS, clog2
from .protocol import AxiReadSignature, Rresp


class Violation(enum.IntEnum):
    NONE = 0
    ARVALID_DROPPED = 1   # ARVALID fell before ARREADY
    AR_CHANGED = 2        # ARADDR / ARLEN / ARSIZE / ARBURST changed while ARVALID waited
    CROSSES_4K = 3
    ARSIZE = 4
    ARBURST = 5
    UNALIGNED = 6         # ARADDR off the beat: AXI allows it, this processor never does it (its own rule)


def xorshift32(x):
    """One step of Marsaglia's xorshift32 (13, 17, 5) on a 32-bit value."""
    x = (x ^ (x << 13))[:32]
    x = x ^ (x >> 17)
    return (x ^ (x << 5))[:32]


AR_QUEUE = 64   # bursts the model accepts ahead of their data


class AxiMemory(wiring.Component):
    """depth words of data_bits. latency: cycles; bw16: bytes per cycle x 16 (0: unlimited); ar_stall /
    r_stall: ARREADY / a new beat held back on a cycle with probability x / 2^16; seed: the generator's state
    at `start` (the testbench's, 0: a fixed default). All inputs are registered."""

    def __init__(self, data_bits: int, depth: int):
        self.data_bits, self.depth = data_bits, depth
        super().__init__({
            "axi": In(AxiReadSignature(data_bits)),
            # the memory's synchronous read port (the memory is the testbench's, so VPI reaches it by name)
            "rd_addr": Out(max(1, clog2(depth))), "rd_data": In(data_bits),
            "start": In(1), "latency": In(16), "bw16": In(16), "ar_stall": In(16), "r_stall": In(16), "seed": In(32),
            "size": In(XADDR_BITS + 1), "err_lo": In(XADDR_BITS), "err_hi": In(XADDR_BITS),
            "violations": Out(32), "first_violation": Out(8),
            "bursts": Out(32), "beats_requested": Out(32), "beats_sent": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        DW, B = self.data_bits, self.data_bits // 8
        lb = clog2(B)
        axi = self.axi

        q = {n: Signal.like(getattr(self, n), name=f"{n}_q")
             for n in ("start", "latency", "bw16", "ar_stall", "r_stall", "seed", "size", "err_lo", "err_hi")}
        m.d.sync += [q[n].eq(getattr(self, n)) for n in q]
        rng = Signal(32, init=0x9E3779B9)
        m.d.sync += rng.eq(xorshift32(rng))
        with m.If(q["start"]):
            m.d.sync += rng.eq(Mux(q["seed"] == 0, 0x9E3779B9, q["seed"] ^ 0x5BD1E995))
        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        # ---- AR: accepted into a queue with the cycle its first beat may leave
        m.submodules.arq = arq = SyncFIFO(width=XADDR_BITS + 8 + 32 + 1, depth=AR_QUEUE)
        m.d.comb += axi.arready.eq(arq.w_rdy & (rng[:16] >= q["ar_stall"]))
        ar_hs = axi.arvalid & axi.arready
        m.d.comb += [arq.w_en.eq(ar_hs), arq.w_data.eq(Cat(axi.araddr, axi.arlen, (now + q["latency"])[:32], axi.arid))]
        with m.If(ar_hs):
            m.d.sync += [self.bursts.eq(self.bursts + 1), self.beats_requested.eq(self.beats_requested + axi.arlen + 1)]

        # ---- protocol checks on the manager
        p_v, p_r = Signal(), Signal()
        p_ar = Signal(XADDR_BITS + 8 + 3 + 2)
        ar_now = Cat(axi.araddr, axi.arlen, axi.arsize, axi.arburst)
        m.d.sync += [p_v.eq(axi.arvalid), p_r.eq(axi.arready), p_ar.eq(ar_now)]
        waited = p_v & ~p_r
        checks = [
            (Violation.ARVALID_DROPPED, waited & ~axi.arvalid),
            (Violation.AR_CHANGED, waited & axi.arvalid & (ar_now != p_ar)),
            (Violation.CROSSES_4K, ar_hs & ((axi.araddr[:12] + ((axi.arlen + 1) << lb)) > 4096)),
            (Violation.ARSIZE, ar_hs & (axi.arsize != lb)),
            (Violation.ARBURST, ar_hs & (axi.arburst != 1)),
            (Violation.UNALIGNED, ar_hs & (axi.araddr[:lb] != 0)),
        ]
        bad = Signal()
        m.d.comb += bad.eq(Cat(*[c for _, c in checks]).any())
        with m.If(bad):
            m.d.sync += self.violations.eq(self.violations + 1)
        with m.If(self.first_violation == 0):
            for code, c in reversed(checks):
                with m.If(c):
                    m.d.sync += self.first_violation.eq(code)

        # ---- R: the head burst's beats, each read from the memory into a small buffer, then offered
        head_addr, head_len = arq.r_data[:XADDR_BITS], arq.r_data[XADDR_BITS:XADDR_BITS + 8]
        head_due, head_id = arq.r_data[XADDR_BITS + 8:XADDR_BITS + 40], arq.r_data[XADDR_BITS + 40]
        cur_addr, cur_id = Signal(XADDR_BITS), Signal()
        left = Signal(9)   # beats of the current burst not yet read
        m.submodules.rbuf = rbuf = SyncFIFOBuffered(width=DW + 4, depth=4)   # data, resp, last, id
        pend = Signal()     # a read whose data lands next cycle
        p_resp, p_last = Signal(2), Signal()
        tokens = Signal(24)
        cost = B * 16
        have_tokens = (q["bw16"] == 0) | (tokens >= cost)
        may_read = (left != 0) & have_tokens & (rbuf.level + pend < 3)
        due = (now - head_due)[31]   # the head's due cycle is still ahead (serial compare, wraps)
        m.d.comb += arq.r_en.eq((left == 0) & arq.r_rdy & ~due)
        with m.If(arq.r_en):
            m.d.sync += [cur_addr.eq(head_addr), left.eq(head_len + 1), cur_id.eq(head_id)]
        word = cur_addr[lb:]
        beyond = cur_addr >= q["size"]
        slverr = (cur_addr >= q["err_lo"]) & (cur_addr < q["err_hi"])
        m.d.comb += self.rd_addr.eq(word)
        with m.If(may_read):
            m.d.sync += [cur_addr.eq(cur_addr + B), left.eq(left - 1), pend.eq(1),
                         p_resp.eq(Mux(beyond, Rresp.DECERR, Mux(slverr, Rresp.SLVERR, Rresp.OKAY))), p_last.eq(left == 1)]
        with m.Else():
            m.d.sync += pend.eq(0)
        refill = Mux(tokens + q["bw16"] > 2 * cost, 2 * cost, tokens + q["bw16"])
        m.d.sync += tokens.eq(refill - Mux(may_read & (q["bw16"] != 0), cost, 0))
        p_id = Signal()
        with m.If(may_read):
            m.d.sync += p_id.eq(cur_id)
        m.d.comb += [rbuf.w_en.eq(pend), rbuf.w_data.eq(Cat(self.rd_data, p_resp, p_last, p_id))]

        # a beat is offered (and then held) unless the generator holds the next one back
        show = Signal()
        taken = axi.rvalid & axi.rready
        with m.If(~show | taken):
            m.d.sync += show.eq(rng[16:] >= q["r_stall"])
        offer = show & rbuf.r_rdy
        m.d.comb += [axi.rvalid.eq(offer), axi.rdata.eq(rbuf.r_data[:DW]), axi.rresp.eq(rbuf.r_data[DW:DW + 2]),
                     axi.rlast.eq(rbuf.r_data[DW + 2]), axi.rid.eq(rbuf.r_data[DW + 3]), rbuf.r_en.eq(taken)]
        with m.If(taken):
            m.d.sync += self.beats_sent.eq(self.beats_sent + 1)
        return m
