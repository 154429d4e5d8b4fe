"""Firing unit: P potentials to P ttfs codes in one cycle (SPEC section 3).

A parallel comparator bank: the table is non-increasing, so the first t with
V >= thr[t] equals the number of thresholds V stays below. Unused table
entries (t >= the package's T) hold the most negative value, which no V is
below, so the count is T (silent) exactly when no threshold is reached.
"""
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config


class FiringUnit(wiring.Component):
    def __init__(self, cfg: Config):
        self.conf = cfg
        super().__init__({
            "v": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.lanes)),
            "thr": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.max_t)),
            "codes": Out(data.ArrayLayout(cfg.code_bits, cfg.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for l in range(self.conf.lanes):
            below = [self.v[l] < self.thr[t] for t in range(self.conf.max_t)]
            cnt = 0
            for b in below:
                cnt = cnt + b
            m.d.comb += self.codes[l].eq(cnt)
        return m
