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
  busy     words still in the pipeline: exit, pred, top1, top2 are final
           once it is low
Ties: a lane equal to top-1 becomes top-2 (a - b = 0, like topk), and the
first index of the top value is kept (strict >).

Pipelined for the clock: the P lanes of a word are reduced by a tree of
(top-1, index, top-2) merges, one level per cycle, left (lower index)
winning ties; the word's result then merges into the running state (the
left side: earlier words hold lower indices), and a - b and the exit test
are registered.
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
            "exit": Out(1), "busy": Out(1), "step": Out(SB), "pred": Out(16),
            "top1": Out(signed(A)), "top2": Out(signed(A)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.conf
        A, P = cfg.acc_bits, cfg.lanes
        lo = -(1 << (A - 1))
        s = Signal(cfg.step_bits)
        msum = Signal(A + 1 + cfg.step_bits)

        def node(name):
            return (Signal(signed(A), name=f"{name}_a"), Signal(16, name=f"{name}_i"), Signal(signed(A), name=f"{name}_b"))

        def merge(L, R, name):
            """(top-1, index, top-2) of the lanes of L then R; L wins ties."""
            out = node(name)
            ge = L[0] >= R[0]
            m.d.comb += [out[0].eq(Mux(ge, L[0], R[0])), out[1].eq(Mux(ge, L[1], R[1])),
                         out[2].eq(Mux(ge, Mux(L[2] >= R[0], L[2], R[0]), Mux(L[0] >= R[2], L[0], R[2])))]
            return out

        def stage(nodes, v, name):
            """Register a level of nodes and its valid bit."""
            regs = [node(f"{name}{k}") for k in range(len(nodes))]
            for r, n in zip(regs, nodes):
                m.d.sync += [r[0].eq(n[0]), r[1].eq(n[1]), r[2].eq(n[2])]
            rv = Signal(name=f"{name}_v")
            m.d.sync += rv.eq(v)
            return regs, rv

        leaves = []
        for l in range(P):
            idx = Cat(Const(l, cfg.lane_bits), self.addr)[:16] if cfg.lane_bits else self.addr[:16]
            leaves.append((Mux(self.mask[l], self.v[l], lo), idx, Const(lo, signed(A))))
        nodes, v = stage(leaves, self.valid, "ex_l0")
        valids = [v]
        lvl = 1
        while len(nodes) > 1:
            merged = [merge(nodes[k], nodes[k + 1], f"ex_m{lvl}_{k}") for k in range(0, len(nodes), 2)]
            nodes, v = stage(merged, v, f"ex_l{lvl}")
            valids.append(v)
            lvl += 1

        a, ai, b = Signal(signed(A), init=lo), Signal(16), Signal(signed(A), init=lo)
        run = merge((a, ai, b), nodes[0], "ex_run")
        with m.If(self.clear):
            m.d.sync += [a.eq(lo), b.eq(lo), ai.eq(0)]
        with m.Elif(v):
            m.d.sync += [a.eq(run[0]), ai.eq(run[1]), b.eq(run[2])]
        with m.If(self.start):
            m.d.sync += [s.eq(1), msum.eq(self.margin)]
        with m.Elif(self.advance):
            m.d.sync += [s.eq(s + 1), msum.eq(msum + self.margin)]
        gap = Signal(signed(A + 2))
        ex = Signal()
        m.d.sync += [gap.eq(a - b),
                     ex.eq((s >= self.t_max) | (~self.margin_null & (s >= self.min_steps) & (gap >= msum)))]
        settle = [Signal(name=f"ex_settle{k}") for k in range(3)]
        m.d.sync += [settle[0].eq(v), settle[1].eq(settle[0]), settle[2].eq(settle[1])]
        m.d.comb += [
            self.exit.eq(ex), self.busy.eq(Cat(*valids, *settle).any()),
            self.step.eq(s), self.pred.eq(ai), self.top1.eq(a), self.top2.eq(b),
        ]
        return m
