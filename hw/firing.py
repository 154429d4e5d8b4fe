"""Firing unit: P potentials to P ttfs codes in one cycle (SPEC section 3).

A parallel comparator bank: the table is non-increasing, so the first t with
V >= thr[t] equals the number of thresholds V stays below. Unused table
entries (t >= the package's T) hold the most negative value, which no V is
below, so the count is T (silent) exactly when no threshold is reached.
With `latency=2` the compare bits and the codes are registered (the
processor's fire pipeline); 0 is the combinational unit of the unit test.
"""
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config


class FiringUnit(wiring.Component):
    def __init__(self, cfg: Config, latency: int = 0):
        if latency not in (0, 2):
            raise ValueError(f"latency = {latency}: must be 0 or 2")
        self.conf, self.latency = cfg, latency
        super().__init__({
            "v": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.lanes)),
            "thr": In(data.ArrayLayout(signed(cfg.acc_bits), cfg.max_t)),
            "codes": Out(data.ArrayLayout(cfg.code_bits, cfg.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        dom = m.d.sync if self.latency else m.d.comb
        for l in range(self.conf.lanes):
            below = Signal(self.conf.max_t, name=f"below{l}")
            dom += below.eq(Cat(*[self.v[l] < self.thr[t] for t in range(self.conf.max_t)]))
            cnt = 0
            for t in range(self.conf.max_t):
                cnt = cnt + below[t]
            dom += self.codes[l].eq(cnt)
        return m
