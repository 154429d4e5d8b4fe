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
  exit     (registered) exit at this step: s >= t_max, or margin not null,
           s >= min_steps and top1 - top2 >= msum
  step, pred, top1, top2: s, argmax (lowest index on ties), a, b
  ready    a word may be given this cycle (each word takes LANE_CYCLES * P cycles, back to back)
  busy     work in flight: exit, pred, top1, top2 are final once it is low
Ties: a lane equal to top-1 becomes top-2 (a - b = 0, like topk), and the
first index of the top value is kept (strict >).

Lane-serial for area and clock: a word is latched and its lanes merge into
(top-1, index, top-2) one every LANE_CYCLES = 2 cycles, lowest index first:
the lane is selected in two registered steps of 4:1 (one per cycle of the
lane), compared with top-1 and top-2 in the next cycle (the two compares
registered, a cycle after it is selected), and merged in the one after, so the
compare carry chains and the merge muxes (their selects fan out to 2A + 16
bits) are in different cycles; a - b, the exit test and `ready` are
registered. The compared values are kept offset by 2^(A-1) (the sign bit
inverted), so each compare is unsigned, its result the carry chain's own
output with no sign logic after it, and a masked lane is kept out by the merge's
enable rather than by a gate on the compare (this compare was the 16-lane
external-weight build's latest path).
The output layer is small (one word of 16 lanes holds 10 classes), so the
2P cycles a word costs are few, and a tree of P lanes' compares would cost
more logic than the rest of the firing path.
"""
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config

LANE_CYCLES = 2  # cycles per lane: a lane's compare and its merge alternate (the merge feeds the next compare)


class ExitController(wiring.Component):
    def __init__(self, cfg: Config):
        self.conf = cfg
        A, P, SB = cfg.acc_bits, cfg.lanes, cfg.step_bits
        super().__init__({
            "start": In(1), "advance": In(1), "clear": In(1),
            "valid": In(1), "v": In(data.ArrayLayout(signed(A), P)), "addr": In(cfg.word_addr_bits + 2),
            "mask": In(P),
            "margin": In(A + 1), "margin_null": In(1), "min_steps": In(SB), "t_max": In(SB),
            "exit": Out(1), "ready": Out(1), "busy": Out(1), "step": Out(SB), "pred": Out(16),
            "top1": Out(signed(A)), "top2": Out(signed(A)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.conf
        A, P, LB = cfg.acc_bits, cfg.lanes, cfg.lane_bits
        s = Signal(cfg.step_bits)
        msum = Signal(A + 1 + cfg.step_bits)
        # the word being walked, lane by lane
        word = Signal(data.ArrayLayout(signed(A), P))
        wmask = Signal(P)
        waddr = Signal.like(self.addr)
        lane = Signal(max(1, LB))
        walking = Signal()
        second = Signal()   # the second cycle of a lane
        rdy = Signal(init=1)  # ready, registered: computed from the next cycle's walking / lane / second
        walking_n, lane_n, second_n = Signal(), Signal.like(lane), Signal()
        m.d.comb += [self.ready.eq(rdy), walking_n.eq(walking), lane_n.eq(lane), second_n.eq(second)]
        with m.If(self.valid & rdy):
            m.d.sync += [word.eq(self.v), wmask.eq(self.mask), waddr.eq(self.addr)]
            m.d.comb += [lane_n.eq(0), walking_n.eq(1), second_n.eq(0)]
        with m.Elif(walking):
            m.d.comb += second_n.eq(~second)
            with m.If(second):
                m.d.comb += lane_n.eq(lane + 1)
                with m.If(lane == P - 1):
                    m.d.comb += walking_n.eq(0)
        m.d.sync += [walking.eq(walking_n), lane.eq(lane_n), second.eq(second_n),
                     rdy.eq(~walking_n | ((lane_n == P - 1) & second_n))]
        # the selected lane in two registered steps of at most 4:1 (one P:1 mux across the die
        # would be the longest path): in a lane's first cycle each group of 4 lanes picks by the low lane bits, in
        # its second the group is picked by the high bits and registered
        G = min(P, 4)
        GB = max(0, (G - 1).bit_length())
        groups = Signal(data.ArrayLayout(signed(A), P // G))
        for j in range(P // G):
            pick = Array([word[j * G + k] for k in range(G)])[lane[:GB]] if GB else word[j * G]
            m.d.sync += groups[j].eq(pick)
        sv, sok, si, s_valid = Signal(signed(A)), Signal(), Signal(16), Signal()
        idx = Cat(lane[:LB], waddr)[:16] if LB else waddr[:16]
        m.d.sync += [sv.eq(Array([groups[j] for j in range(P // G)])[lane[GB:]] if P > G else groups[0]),
                     sok.eq(wmask.bit_select(lane, 1)), si.eq(idx), s_valid.eq(walking & second)]
        # the selected lane once more registered beside the compares: the lane mux sits with the word,
        # the compares with top-1 / top-2, and the one net between them (a long route when the
        # compares read sv) gets a cycle of its own. From here on values are offset: v + 2^(A-1), unsigned
        # (x > y signed is x + 2^(A-1) > y + 2^(A-1) unsigned; the offset is the sign bit inverted)
        flip = 1 << (A - 1)
        qv, qok, qi, q_valid = Signal(A, name="qv_offset"), Signal(), Signal(16), Signal()
        m.d.sync += [qv.eq(sv.as_unsigned() ^ flip), qok.eq(sok), qi.eq(si), q_valid.eq(s_valid)]
        a, ai, b = Signal(A, name="top1_offset"), Signal(16), Signal(A, name="top2_offset")   # lo offset is 0
        # compare (a and b hold every earlier lane: its merge came the cycle before), registered
        gt_a, gt_b = Signal(name="gt_top1"), Signal(name="gt_top2")
        c_v, c_ok, c_sv, c_si = Signal(), Signal(), Signal(A), Signal(16)
        m.d.sync += [gt_a.eq(qv > a), gt_b.eq(qv > b), c_v.eq(q_valid), c_ok.eq(qok), c_sv.eq(qv), c_si.eq(qi)]
        with m.If(self.clear):
            m.d.sync += [a.eq(0), b.eq(0), ai.eq(0)]
        with m.Elif(c_v & c_ok):
            m.d.sync += [a.eq(Mux(gt_a, c_sv, a)), ai.eq(Mux(gt_a, c_si, ai)), b.eq(Mux(gt_a, a, Mux(gt_b, c_sv, b)))]
        with m.If(self.start):
            m.d.sync += [s.eq(1), msum.eq(self.margin)]
        with m.Elif(self.advance):
            m.d.sync += [s.eq(s + 1), msum.eq(msum + self.margin)]
        gap = Signal(signed(A + 2))
        ex = Signal()
        m.d.sync += [gap.eq(a - b),
                     ex.eq((s >= self.t_max) | (~self.margin_null & (s >= self.min_steps) & (gap >= msum)))]
        settle = [Signal(name=f"ex_settle{k}") for k in range(3)]
        m.d.sync += [settle[0].eq(c_v), settle[1].eq(settle[0]), settle[2].eq(settle[1])]
        m.d.comb += [
            self.exit.eq(ex), self.busy.eq(self.valid | walking | s_valid | q_valid | c_v | Cat(*settle).any()),
            self.step.eq(s), self.pred.eq(ai), self.top1.eq((a ^ flip).as_signed()), self.top2.eq((b ^ flip).as_signed()),
        ]
        return m
