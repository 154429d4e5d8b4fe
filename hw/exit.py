"""Adaptive-timestep exit controller (SPEC 4.4), and the argmax of the output layer.

The output words go by once per step (P potentials a word, lowest index
first). The block keeps the top-1 value and index and the top-2 value of
what it has seen since `clear`, and the step count s since `start`. The rule
`a - b >= margin * s` needs no multiplier: `msum` holds margin * s as a
running sum, margin added at every `start` / `advance`. The host clamps
margin to 2^A (a - b < 2^A, so any larger margin never exits either) and
min_steps to T_max, which keeps the registers narrow.

Ports:
  start    pulse: a new inference begins its step 1 (s = 1, msum = margin)
  advance  pulse: the next step begins (s += 1, msum += margin)
  clear    pulse: an output pass begins (forget top-1 / top-2)
  valid, v, addr, mask: one output word; lane l is neuron addr*P + l and
           takes part only where mask[l] (the last word may be partial)
  exit     (comb) exit at this step: s >= t_max, or margin not null,
           s >= min_steps and top1 - top2 >= msum
  step, pred, top1, top2: s, argmax (lowest index on ties), a, b
Ties: a lane equal to top-1 becomes top-2 (a - b = 0, like topk), and the
first index of the top value is kept (strict >).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config


class ExitController(wiring.Component):
    def __init__(self, cfg: Config):
        self.conf = cfg
        A, P, SB = cfg.acc_bits, cfg.lanes, cfg.step_bits
        super().__init__({
            "start": In(1), "advance": In(1), "clear": In(1),
            "valid": In(1), "v": In(data.ArrayLayout(signed(A), P)), "addr": In(cfg.word_addr_bits + 2),
            "mask": In(P),
            "margin": In(A + 1), "margin_null": In(1), "min_steps": In(SB), "t_max": In(SB),
            "exit": Out(1), "step": Out(SB), "pred": Out(16),
            "top1": Out(signed(A)), "top2": Out(signed(A)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.conf
        A, P = cfg.acc_bits, cfg.lanes
        lo = -(1 << (A - 1))
        s = Signal(cfg.step_bits)
        msum = Signal(A + 1 + cfg.step_bits)
        a, b = Signal(signed(A), init=lo), Signal(signed(A), init=lo)
        ai = Signal(16)
        # lane chain: each lane updates (a, ai, b) in index order
        ca, cb, ci = a, b, ai
        for l in range(P):
            v = self.v[l]
            ok = self.mask[l]
            idx = Cat(Const(l, cfg.lane_bits), self.addr)[:16] if cfg.lane_bits else self.addr[:16]
            gt_a = ok & (v > ca)
            gt_b = ok & (v > cb)
            na, nb, ni = Signal(signed(A), name=f"ex_a{l}"), Signal(signed(A), name=f"ex_b{l}"), Signal(16, name=f"ex_i{l}")
            m.d.comb += [na.eq(Mux(gt_a, v, ca)), ni.eq(Mux(gt_a, idx, ci)),
                         nb.eq(Mux(gt_a, ca, Mux(gt_b, v, cb)))]
            ca, cb, ci = na, nb, ni
        with m.If(self.clear):
            m.d.sync += [a.eq(lo), b.eq(lo), ai.eq(0)]
        with m.Elif(self.valid):
            m.d.sync += [a.eq(ca), b.eq(cb), ai.eq(ci)]
        with m.If(self.start):
            m.d.sync += [s.eq(1), msum.eq(self.margin)]
        with m.Elif(self.advance):
            m.d.sync += [s.eq(s + 1), msum.eq(msum + self.margin)]
        gap = Signal(signed(A + 2))
        m.d.comb += [
            gap.eq(a - b),
            self.exit.eq((s >= self.t_max) | (~self.margin_null & (s >= self.min_steps) & (gap >= msum))),
            self.step.eq(s), self.pred.eq(ai), self.top1.eq(a), self.top2.eq(b),
        ]
        return m
