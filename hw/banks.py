"""The weight memory split by address into banks, where one memory would be a cascade of block RAMs.

Yosys maps a memory deeper than its cheapest ECP5 block-RAM (DP16KD) shape as a column of RAMs behind a
read mux. The register after that mux is then not a RAM's output register (synth/outreg.py moves only a
register that a RAM output drives alone), so every weight read pays the RAM's clock-to-out without an
output register, several times a register's. Here each bank is a memory that one row of RAMs holds; its
read lands in its own register (the RAM's output register) and the bank mux follows those registers, its
select registered alongside, into a register of its own: a read takes one cycle more than one memory's
(hw/top.py holds the op a cycle for it). Only the addressed bank is read (its read enable) and written.

A build whose weight memory one row of RAMs holds at the cheapest cost keeps the single memory of
hw/top.py (`Config.weight_bank_depth`).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import clog2


class WeightBanks(wiring.Component):
    """depth words of `layout` in banks of bank_depth words (a power of two), the last one shorter.

    rd_addr at cycle t gives rd_q at t + 3 (LATENCY), a cycle after a read port followed by its register
    (hw.sequencer.ram_q). A write (wr_en at t) is registered with its bank decode and lands at the end of
    t + 1 (the decode fanning out to every bank was a late path); one at an address past depth writes
    nothing."""

    LATENCY = 3

    def __init__(self, layout: data.ArrayLayout, depth: int, bank_depth: int, addr_bits: int, wr_addr_bits: int,
                 init: list, attrs: dict):
        err = (f"bank_depth = {bank_depth}: must be a power of two below depth = {depth}"
               if bank_depth < 1 or bank_depth & (bank_depth - 1) or bank_depth >= depth else
               f"addr_bits = {addr_bits}, wr_addr_bits = {wr_addr_bits}: must reach depth = {depth}"
               if (1 << addr_bits) < depth or (1 << wr_addr_bits) < depth else None)
        if err:
            self._MustUse__silence = True   # refused, so not an unused elaboratable (Amaranth's own idiom)
            raise ValueError(err)
        self.layout, self.depth, self.bank_depth, self.init, self.attrs = layout, depth, bank_depth, list(init), attrs
        self.nbanks = -(-depth // bank_depth)
        super().__init__({"rd_addr": In(addr_bits), "rd_q": Out(layout),
                          "wr_addr": In(wr_addr_bits), "wr_data": In(layout.size), "wr_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        B, lb = self.bank_depth, clog2(self.bank_depth)
        rd_bank, wr_bank = self.rd_addr[lb:], self.wr_addr[lb:]
        # the bank a read addressed, as its data arrives (t + 1) and as its register has it (t + 2); the
        # mux's register holds the word at t + 3
        sel1 = Signal(len(rd_bank), name="wbank_sel1")
        sel2 = Signal(len(rd_bank), name="wbank_sel2")
        m.d.sync += [sel1.eq(rd_bank), sel2.eq(sel1)]
        wa = Signal(lb, name="wbank_wa", reset_less=True)
        wd = Signal(self.layout.size, name="wbank_wd", reset_less=True)
        m.d.sync += [wa.eq(self.wr_addr[:lb]), wd.eq(self.wr_data)]
        qs = []
        for k in range(self.nbanks):
            n = min(B, self.depth - k * B)
            mem = Memory(shape=self.layout.size, depth=n, init=self.init[k * B:(k + 1) * B], attrs=self.attrs)
            m.submodules[f"bank{k}"] = mem
            rd, wr = mem.read_port(), mem.write_port()
            # no reset, no enable, the port's only load: the RAM's output register (hw.sequencer.ram_q)
            q = Signal(self.layout.size, name=f"wbank{k}_q", reset_less=True)
            m.d.sync += q.eq(rd.data)
            qs.append(q)
            in_bank = wr_bank == k
            if n < B:   # the last, shorter bank: an address past depth is in no bank
                in_bank &= self.wr_addr[:lb] < n
            we = Signal(name=f"wbank{k}_we")
            m.d.sync += we.eq(self.wr_en & in_bank)
            m.d.comb += [rd.addr.eq(self.rd_addr[:lb]), rd.en.eq(rd_bank == k),
                         wr.addr.eq(wa), wr.data.eq(wd), wr.en.eq(we)]
        with m.Switch(sel2):
            for k, q in enumerate(qs):
                with m.Case(k):
                    m.d.sync += self.rd_q.eq(q)
        return m
