"""The controller: the processor's phase FSM, the layer-table walk and the inference counters.

Phases of one inference (one layer-table entry per non-flatten layer):

  CLEAR    after reset: every potential word back to zero (clear_addr walks them)
  IDLE     config beats are taken; an input offered while none is in flight starts an inference
  PREP     the first entry is read as the Writer's consumer (nxt)
  INPUT    in_words input words go to the Writer
  BIAS     external weights only: until the biases are in from the external memory (loaded from IDLE on)
  LAYER    entry li is read as the layer computed (cur), entry li + 1 as its consumer (nxt); the
           Writer restarts for it
  SCATTER  weighted layers: the Scatter issues every op; DRAIN waits for the PE array to empty
  SC_*     a layer with a residual shortcut (has_sc), between its DRAIN and FIRE: its shortcut entry
           (li + 1) becomes cur and nxt; SC_WALK re-emits the source's words through the Writer (a walk
           of kernel 1 and the shortcut's stride, no result beats, no counts) as the records of a 1x1
           conv; SCATTER and DRAIN scatter them into the layer's potentials (cur is the shortcut entry,
           sc_entry), then SC_BACK reloads the layer (cur)
           and the entry after the shortcut (nxt) for the fire pass. The source's words are intact: the
           layer before this one wrote the other bank, and this layer's Writer has not yet written
  FIRE     one issue per output word (paced for the exit controller and a split firing bank)
  POOL     the PoolWalk steps while the result FIFO has room
  DECIDE   after the output layer: END, or (multistep) the next step, or the exit read-out:
  OUTE     the output layer's potentials as LOGIT beats, CNTL / CNTE every counted layer's spike
           counts as COUNT beats
  END      the END beat

The state is one-hot, every decode one flip-flop; a transition clears its own bit and sets the target's,
so each bit's next value depends on the few transitions that touch it. The FSM waits on registered busy
flags: each is the OR of a pipeline's valid bits and of what starts it this cycle, so one cycle late is
never too early, and the wide ORs stay out of the next-state logic.
"""
from __future__ import annotations

from functools import partial

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Config, clog2, widths
from .exit import LANE_CYCLES
from .protocol import entry_layout
from .sequencer import copies, reg

(S_CLEAR, S_IDLE, S_PREP, S_PREP2, S_PREP3, S_INPUT, S_LAYER, S_LAYER2, S_LAYER3, S_LAYER4, S_SCATTER,
 S_DRAIN, S_FIRE, S_POOL, S_DECIDE, S_OUTE, S_CNTL, S_CNTL2, S_CNTL3, S_CNTE, S_END, S_END2,
 S_SC_LOAD, S_SC_LOAD2, S_SC_LOAD3, S_SC_START, S_SC_START2, S_SC_WALK, S_SC_REC, S_SC_REC2, S_SC_GO,
 S_SC_BACK, S_SC_BACK2, S_SC_BACK3, S_SC_FIRE, S_BIAS) = range(36)
N_STATES = 36


class Controller(wiring.Component):
    """In: the input port's valid, the decoder's busy and in_words, the layer table's read data (for
    `table_addr` two cycles before), the Writer's record count, the pipelines' busy flags and marks, the
    result FIFO's credit (and the pool walk's copy of it), the exit controller's step-1 flag and decision.
    Out: which phase runs, the layer entries (cur computed, nxt consuming the Writer's words), the starts,
    steps and fire-address controls of the blocks, the exit controller's controls, the emit and END beat
    selects, the cycle counter and busy."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        XA = widths(cfg)[0]
        el = entry_layout(cfg)
        super().__init__({
            "inp_valid": In(1), "cfg_busy": In(1), "in_words": In(XA), "table_data": In(el), "writer_count": In(XA),
            "mode_ms": In(1), "step1": In(1), "exit_now": In(1),
            "scatter_busy": In(1), "pe_busy": In(1), "fire_busy": In(1), "exit_busy": In(1), "pool_busy": In(1),
            "f1_valid": In(1), "f2_valid": In(1), "fire_more": In(1), "window_done": In(1),
            "credit_next": In(1),   # the result FIFO has room for a word issued in the next cycle
            # phases
            "clearing": Out(1), "idle": Out(1), "inputting": Out(1), "firing": Out(1), "pooling": Out(1),
            "sc_walk": Out(1),   # the shortcut's re-emit walk (its words reach the Writer only)
            "clear_addr": Out(XA),
            # the layer-table walk
            "table_addr": Out(clog2(cfg.max_layers)), "cur": Out(el), "nxt": Out(el), "first": Out(1), "bank": Out(1),
            "code_bank": Out(1), "event_bank": Out(1),   # the banks the pool walk and the scatter read
            "n_rec": Out(XA), "pooled": Out(XA),
            # block controls
            "writer_restart": Out(1), "scatter_start": Out(1), "pool_start": Out(1), "pool_step": Out(1),
            "fire_addr_zero": Out(1), "fire_addr_inc": Out(1), "fire_issue": Out(1), "bias_advance": Out(1),
            "layer_start": Out(1),
            "exit_start": Out(1), "exit_clear": Out(1), "exit_advance": Out(1),
            # result beats the controller selects, counters
            "emit_logit_beat": Out(1), "emit_count_beat": Out(1), "end_beat": Out(1),
            "count_clear": Out(1), "cycles": Out(32), "busy": Out(1),
            # external weights: the biases are in (hw/fetch.py); no layer starts before
            **({"weights_ready": In(1)} if cfg.external else {}),
        })

    def elaborate(self, platform):
        cfg = self.conf
        P, NW = cfg.lanes, cfg.words
        m = Module()
        cur, nxt, t_data = self.cur, self.nxt, self.table_data
        ms, step1 = self.mode_ms, self.step1

        pipe = partial(reg, m)   # (sig, name): sig one clock later

        li = Signal(range(cfg.max_layers + 2))
        # li's next value (the states below assign li_n); the layer table's read address is a register of its
        # own loaded from it (li + 1 in S_LAYER, for S_LAYER2's read of the next entry): a state-selected
        # address in front of the table's LUT RAM (259 bits, ~65 RAM cells on its address) was the worst path
        li_n, t_a = Signal.like(li), Signal.like(self.table_addr)
        m.d.comb += [li_n.eq(li), self.table_addr.eq(t_a)]
        m.d.sync += li.eq(li_n)
        first = li == 0       # table entry 0 is the first weighted layer (only flatten precedes it)
        graded = ms & first   # the first layer of a multistep network reads graded bytes
        # the bank the layer reads (the other one it writes): flips with each layer computed, so a shortcut
        # entry, which is no layer of its own, takes none
        bank = Signal()
        # one-hot state: every decode is one flip-flop (the state register fans out to most of the datapath)
        state = Signal(N_STATES, init=1 << S_CLEAR)
        m.d.comb += [self.first.eq(first), self.bank.eq(bank),
                     # while cur is a shortcut entry only its walk reads codes and only its scatter reads
                     # records: the walk reads its source where the layer before this one left it (the bank
                     # this layer reads only when it is the layer's own input), the scatter the records the
                     # Writer wrote into the other bank
                     self.code_bank.eq(bank ^ (cur.sc_entry & ~cur.sc_near)),
                     self.event_bank.eq(bank ^ cur.sc_entry)]
        m.d.comb += [self.clearing.eq(state[S_CLEAR]), self.idle.eq(state[S_IDLE]), self.inputting.eq(state[S_INPUT]),
                     self.firing.eq(state[S_FIRE]), self.pooling.eq(state[S_POOL]), self.sc_walk.eq(state[S_SC_WALK])]

        # the pool walk's copies of the S_POOL bit (kept by go below) and of the FIFO credit, its step's only
        # inputs: kept apart by the flow's `_dup` rule, they sit by the walk (from the FSM's and the FIFO
        # counter's flip-flops across the die, its load enables were late paths on most placements). Both are
        # registers of this module, so no port connection renames them.
        pool_st = Signal(name="pw_state_dup0", attrs={"keep": 1})
        credit_pw = copies(m, self.credit_next, "pw_credit", 1)[0]

        def go(frm, to):
            """A transition clears its own bit and sets the target's: each state bit's next value then depends
            on the few transitions that touch it (whole-vector assignments made every bit a priority chain
            over all states)"""
            m.d.sync += [state[frm].eq(0), state[to].eq(1)]
            walks = (S_POOL, S_SC_WALK)
            if frm in walks or to in walks:
                m.d.sync += pool_st.eq(to in walks)
            if frm in (S_FIRE, S_POOL):   # the next layer reads what this one wrote
                m.d.sync += bank.eq(~bank)
            if frm == S_DECIDE:           # a new step starts where the input is, bank 0
                m.d.sync += bank.eq(0)

        f_issue, fa_inc, fa_zero, f_more = self.fire_issue, self.fire_addr_inc, self.fire_addr_zero, self.fire_more
        # the FSM's credit: also a marked copy, or Yosys would merge it into the pool walk's (same input)
        credit = copies(m, self.credit_next, "fsm_credit", 1)[0]
        cycles, count_clear, po = self.cycles, self.count_clear, self.pooled
        f_gap = Signal(range(LANE_CYCLES * P))  # cycles until the next fire issue
        f_gap_z = Signal(init=1)                # f_gap == 0, registered with it (no compare before f_issue)
        sc_busy_r = pipe(self.scatter_busy | self.scatter_start, "sc_busy_r")
        pe_busy_r = pipe(self.pe_busy, "pe_busy_r")
        fire_busy_r = pipe(self.fire_busy | f_issue | self.exit_busy, "fire_busy_r")
        emit_busy_r = pipe(self.f1_valid | f_issue, "emit_busy_r")
        pool_busy_r = pipe(self.pool_busy | self.pool_start, "pool_busy_r")

        # FSM: one plain If per state (exclusive), so the Verilog has no incomplete case statements for lint
        running = Signal()
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += self.busy.eq(running)

        def emit_pass(beat, done):
            """One word per cycle from fa = 0 to cur.out_words (payload registered in F2), as result beats."""
            with m.If(self.f2_valid):
                m.d.comb += beat.eq(1)
            with m.If(f_more):
                with m.If(credit):
                    m.d.comb += [f_issue.eq(1), fa_inc.eq(1)]
            with m.Elif(~emit_busy_r):  # later stages act only in the fire pass
                done()

        clr = self.clear_addr
        with m.If(state[S_CLEAR]):
            m.d.sync += clr.eq(clr + 1)
            with m.If(clr == NW - 1):
                m.d.comb += li_n.eq(0)
                go(S_CLEAR, S_IDLE)
        with m.If(state[S_IDLE]):
            with m.If(self.inp_valid & ~self.cfg_busy):  # config beats first, and their writes landed
                # cycles counts from this cycle on, so the END beat (S_END2) reports every cycle up to its own
                # li is 0 here (S_END2 and S_CLEAR leave it so): the table address does not wait on the
                # config stream's valid through cfg_busy
                m.d.sync += [cycles.eq(1), running.eq(1)]
                m.d.sync += bank.eq(0)
                m.d.comb += count_clear.eq(1)
                m.d.comb += self.exit_start.eq(1)
                go(S_IDLE, S_PREP)
        with m.If(state[S_PREP]):   # t_a = li = 0
            go(S_PREP, S_PREP2)
        with m.If(state[S_PREP2]):
            m.d.sync += nxt.eq(t_data)
            go(S_PREP2, S_PREP3)
        in_last = Signal()  # the next input word is the last (clr + 1 == in_words, registered)
        in_words2 = reg(m, self.in_words - 2, "in_words2")   # in_words is static: clr + 2 == in_words without an add
        # the Writer restarts in S_PREP3 and S_LAYER4, entered unconditionally from S_PREP2 and S_LAYER3:
        # a flip-flop of its own (the OR of two state bits in front of its counters' muxes was a late path)
        m.d.sync += self.writer_restart.eq(state[S_PREP2] | state[S_LAYER3] | state[S_SC_LOAD3] | state[S_SC_BACK3])
        with m.If(state[S_PREP3]):
            m.d.sync += [clr.eq(0), in_last.eq(self.in_words == 1)]
            go(S_PREP3, S_INPUT)
        with m.If(state[S_INPUT]):
            with m.If(self.inp_valid):
                m.d.sync += [clr.eq(clr + 1), in_last.eq(clr == in_words2)]
                with m.If(in_last):
                    go(S_INPUT, S_BIAS if cfg.external else S_LAYER)
        if cfg.external:
            with m.If(state[S_BIAS] & self.weights_ready):   # t_a = li = 0
                go(S_BIAS, S_LAYER)
        m.d.sync += t_a.eq(Mux(state[S_LAYER] | state[S_SC_LOAD], li + 1, Mux(state[S_SC_BACK], li + 2, li_n)))
        with m.If(state[S_LAYER]):  # t_a = li
            go(S_LAYER, S_LAYER2)
        with m.If(state[S_LAYER2]):  # t_a = li + 1
            m.d.sync += cur.eq(t_data)
            go(S_LAYER2, S_LAYER3)
        with m.If(state[S_LAYER3]):
            m.d.sync += self.n_rec.eq(self.writer_count)   # the last input word reaches the Writer in S_LAYER2
            m.d.sync += nxt.eq(t_data)
            go(S_LAYER3, S_LAYER4)
        # the walk's start is a flip-flop (it enables every walk counter): high in S_LAYER4 of a pooling layer
        # and in S_SC_START2, both entered unconditionally from the state before, where cur is already loaded
        m.d.sync += self.pool_start.eq((state[S_LAYER3] & (cur.kind == 1)) | state[S_SC_START])
        with m.If(state[S_LAYER4]):
            m.d.comb += self.exit_clear.eq(cur.last)
            m.d.comb += fa_zero.eq(1)
            m.d.comb += self.layer_start.eq(1)
            m.d.sync += po.eq(0)
            with m.If(cur.kind == 1):   # pool_start is set from S_LAYER3 (below)
                go(S_LAYER4, S_POOL)
            with m.Elif(graded & ~step1):  # input current kept in imem since step 1
                go(S_LAYER4, S_FIRE)
            with m.Else():
                m.d.comb += self.scatter_start.eq(1)
                go(S_LAYER4, S_SCATTER)
        with m.If(state[S_SCATTER]):
            with m.If(~sc_busy_r):
                go(S_SCATTER, S_DRAIN)
        with m.If(state[S_DRAIN]):     # the last sums written before the fire pass reads them
            with m.If(~pe_busy_r):
                with m.If(cur.sc_entry):   # the shortcut's sums are in: back to its layer
                    go(S_DRAIN, S_SC_BACK)
                with m.Elif(cur.has_sc):
                    go(S_DRAIN, S_SC_LOAD)
                with m.Else():
                    go(S_DRAIN, S_FIRE)
        # the shortcut (see the module docstring); the table read address is li + 1 in SC_LOAD2, li + 2 in
        # SC_BACK2, each read lands two cycles after its address
        with m.If(state[S_SC_LOAD]):
            go(S_SC_LOAD, S_SC_LOAD2)
        with m.If(state[S_SC_LOAD2]):
            go(S_SC_LOAD2, S_SC_LOAD3)
        with m.If(state[S_SC_LOAD3]):   # the shortcut entry: the walk's layer and the Writer's consumer
            m.d.sync += [cur.eq(t_data), nxt.eq(t_data)]
            go(S_SC_LOAD3, S_SC_START)
        with m.If(state[S_SC_START]):   # the Writer restarts; the walk's per-layer registers load
            go(S_SC_START, S_SC_START2)
        with m.If(state[S_SC_START2]):   # pool_start is set from S_SC_START (below)
            go(S_SC_START2, S_SC_WALK)
        with m.If(state[S_SC_WALK]):
            with m.If(~pool_busy_r):
                go(S_SC_WALK, S_SC_REC)
        with m.If(state[S_SC_REC]):     # the last word reaches the Writer, its record the event memory
            go(S_SC_REC, S_SC_REC2)
        with m.If(state[S_SC_REC2]):
            m.d.sync += self.n_rec.eq(self.writer_count)
            go(S_SC_REC2, S_SC_GO)
        with m.If(state[S_SC_GO]):
            m.d.comb += self.scatter_start.eq(1)
            go(S_SC_GO, S_SCATTER)
        with m.If(state[S_SC_BACK]):
            go(S_SC_BACK, S_SC_BACK2)
        with m.If(state[S_SC_BACK2]):   # the layer itself, for its fire pass
            m.d.sync += cur.eq(t_data)
            go(S_SC_BACK2, S_SC_BACK3)
        with m.If(state[S_SC_BACK3]):   # the entry after the shortcut consumes the fire pass's words
            m.d.sync += nxt.eq(t_data)
            go(S_SC_BACK3, S_SC_FIRE)
        with m.If(state[S_SC_FIRE]):    # the Writer restarts; as S_LAYER4 for the fire pass
            m.d.comb += [fa_zero.eq(1), self.layer_start.eq(1)]
            go(S_SC_FIRE, S_FIRE)
        # the layer after this fire pass, past its shortcut entry: a register (li and cur hold through the
        # pass, whose end comes cycles after its start), so the pass's end test is all that feeds table_addr
        li_past_fire = reg(m, li + 1 + cur.has_sc, "li_past_fire")
        with m.If(state[S_FIRE]):
            with m.If(~f_gap_z):
                m.d.sync += [f_gap.eq(f_gap - 1), f_gap_z.eq(f_gap == 1)]
            with m.If(f_more):
                with m.If(credit & f_gap_z):
                    m.d.comb += [f_issue.eq(1), fa_inc.eq(1), self.bias_advance.eq(1)]
                    # the exit controller walks an output word in LANE_CYCLES * P cycles; a split bank
                    # takes 2 a word
                    gap = Mux(cur.last, LANE_CYCLES * P - 1, cfg.fire_split - 1)
                    m.d.sync += [f_gap.eq(gap), f_gap_z.eq(gap == 0)]
            with m.Elif(~fire_busy_r):
                with m.If(cur.last):
                    go(S_FIRE, S_DECIDE)
                with m.Else():   # past the layer's shortcut entry, if it has one
                    m.d.comb += li_n.eq(li_past_fire)
                    go(S_FIRE, S_LAYER)
        m.d.comb += self.pool_step.eq(pool_st & credit_pw)   # = in S_POOL & credit
        with m.If(state[S_POOL]):
            with m.If(self.window_done):
                m.d.sync += po.eq(po + 1)
            with m.If(~pool_busy_r):
                m.d.comb += li_n.eq(li + 1)
                go(S_POOL, S_LAYER)
        with m.If(state[S_DECIDE]):  # the fire pass ended after the exit controller settled (fire_busy_r)
            if not cfg.multistep:
                go(S_DECIDE, S_END)
            else:
                with m.If(~ms):
                    go(S_DECIDE, S_END)
                with m.Elif(self.exit_now):
                    m.d.comb += fa_zero.eq(1)
                    go(S_DECIDE, S_OUTE)
                with m.Else():
                    m.d.comb += [self.exit_advance.eq(1), li_n.eq(0)]
                    go(S_DECIDE, S_LAYER)
        # the multistep read-out passes exist only in a build with the multistep datapath: in a ttfs-only
        # build their states would never be entered, but Yosys would keep them, and their beat selects
        # would reach the result FIFO's write register
        if cfg.multistep:
            with m.If(state[S_OUTE]):  # O at the exit step, from vmem
                def to_counts():
                    m.d.comb += li_n.eq(0)
                    go(S_OUTE, S_CNTL)
                emit_pass(self.emit_logit_beat, to_counts)
            with m.If(state[S_CNTL]):  # t_a = li
                go(S_CNTL, S_CNTL2)
            with m.If(state[S_CNTL2]):
                m.d.sync += cur.eq(t_data)
                m.d.comb += fa_zero.eq(1)
                go(S_CNTL2, S_CNTL3)
            with m.If(state[S_CNTL3]):
                with m.If(cur.last):
                    go(S_CNTL3, S_END)
                with m.Elif(cur.sc_entry):   # counts nothing
                    m.d.comb += li_n.eq(li + 1)
                    go(S_CNTL3, S_CNTL)
                with m.Else():
                    go(S_CNTL3, S_CNTE)
            with m.If(state[S_CNTE]):  # spike counters of one spiking or pooling layer
                def next_layer():
                    m.d.comb += li_n.eq(li + 1)
                    go(S_CNTE, S_CNTL)
                emit_pass(self.emit_count_beat, next_layer)
        with m.If(state[S_END]):
            with m.If(credit):  # not w_rdy: the write lands a cycle later, behind any write now in flight
                go(S_END, S_END2)
        with m.If(state[S_END2]):  # the END beat, selected by a state flip-flop alone (no credit, no adder)
            m.d.comb += self.end_beat.eq(1)
            m.d.sync += running.eq(0)
            m.d.comb += li_n.eq(0)
            go(S_END2, S_IDLE)
        return m
