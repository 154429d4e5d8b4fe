"""The LogSpike processor: a programmable, event-driven, multiplier-free SNN core running ttfs and
multistep packages on one build (the mode is a config global). It composes these blocks, each a
wiring.Component with its own test (cocotb_tests/test_blocks.py), around the memories they share:

  stream  config beats                      input words                       result beats
            │                                 │                                 ▲
            ▼                                 ▼                                 │
  ConfigDecoder ──► registers, table,      Writer ──► code buffer, event list   result FIFO ◄── beats
  (hw/decoder.py)   weights, biases      (hw/sequencer.py)        │              ▲
                                              ▲                   ▼              │
                                              │               Scatter ──► PEArray ──► potentials
                                              │        (hw/sequencer.py) (hw/pe.py)      │
                                              ├──── PoolMin ◄── PoolWalk ◄── codes        ▼
                                              └──── FirePass (hw/passes.py) ◄── potentials, biases,
                                                      │  FiringUnit (hw/firing.py)       multistep state
                                                      ▼
                                                  ExitController (hw/exit.py)
  Controller (hw/controller.py): the phase FSM and the layer-table walk, starting and pacing every block.

The stream formats are hw/protocol.py's. Every stage boundary is a register and every block-RAM read
lands in a register before any arithmetic, so no path holds more than one carry chain of A bits and a
few LUT levels. That register (`ram_q`) has no reset, no enable and no other load, so the ECP5 flow
moves it into the RAM (its output register, synth/outreg.py); and no read whose data is used ever meets
a write to the same address in the same cycle, so the memories are marked `no_rw_check` and Yosys puts
no collision bypass mux between the RAM and that register. The result FIFO is written at most
PIPE_SLACK cycles after an issue; issues stop while it lacks that room (credit).

multistep repeats the layer passes for s = 1..T_max. The first layer's input current (bias + graded
contributions) is scattered once, at step 1, and kept in `imem`; later steps skip its scatter. Every
weighted layer's potentials live at once in `vmem` (region vbase of its table entry), the spike
counters of every spiking and pooling layer in `kmem` (region cbase). Nothing is cleared between
inferences: at step 1 the old V and counts read as 0.

Memories: potential accumulator (words of P x A, one layer at a time), code and event buffers (two
banks, ping-pong by layer parity), weights (P x W per word; banks of block-RAM rows where one memory
would be a cascade, hw/banks.py, a read a cycle longer), biases (P x A), layer table, multistep state
(vmem, kmem, imem). Config registers and memories are not reset: a reset aborts the inference (and
clears the accumulator) but keeps the loaded network.

External weights (Config.weights = "external", hw/fetch.py): no weight memory; the Scatter's ops wait in
ExternalWeights' prefetch for their words, read through the AXI4 port `m_axi`, and enter the PE array in
order with their word a cycle after, as a weight memory's read would give it; the bias memory is filled
from the same port at each inference's start (the controller's BIAS state waits for it).
"""
from functools import partial

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import CFG_ADDR_BITS, Config, clog2, ubits, widths
from .controller import Controller
from .decoder import ConfigDecoder
from .passes import FirePass, PoolMin, nonsilent
from .pe import PEArray
from .exit import ExitController
from .banks import WeightBanks
from .counter import split_counter
from .fetch import ExternalWeights
from .protocol import AxiReadSignature, Tag, cfg_layout, end_layout, entry_layout, res_layout, weight_lane_layout
from .sequencer import PoolWalk, RegisterSlice, Scatter, Writer, popcount, ram_q, record_layout, reg, tree_sum

RES_FIFO_DEPTH = 16
PIPE_SLACK = 13  # cycles from a fire / pool / emit issue to its result beat, and one more


class Processor(wiring.Component):
    def __init__(self, cfg: Config, image: dict | None = None):
        """image: optional baked network (from hw.image.bake), the reset/init contents."""
        self.conf, self.image = cfg, image
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(cfg))),
            "inp": In(stream.Signature(data.ArrayLayout(cfg.sym_bits, cfg.lanes))),
            "res": Out(stream.Signature(res_layout(cfg))),
            "cycles": Out(32), "sops": Out(32), "events": Out(32), "busy": Out(1),
            # external weights: the AXI4 read port to the memory that holds them (hw/fetch.py)
            **({"m_axi": Out(AxiReadSignature(cfg.axi_data_bits))} if cfg.external else {}),
        })

    def elaborate(self, platform):
        cfg, img = self.conf, self.image or {}
        P, A, SY, KB = cfg.lanes, cfg.acc_bits, cfg.sym_bits, cfg.count_bits
        XA, WA = widths(cfg)
        NW = cfg.words
        m = Module()

        # ---- config decoder: the global registers, LUT, thresholds and the memories' write ports
        m.submodules.decoder = dec = ConfigDecoder(cfg, img)
        wiring.connect(m, wiring.flipped(self.cfg), dec.cfg)
        T, taulog, in_words = dec.regs.T, dec.regs.taulog, dec.regs.in_words
        ms = dec.regs.mode   # the decoder wires it to ttfs in a ttfs-only build
        margin, mnull, min_steps, t_max = dec.regs.margin, dec.regs.margin_null, dec.regs.min_steps, dec.regs.t_max

        # ---- memories
        ent_l, rec_l = entry_layout(cfg), record_layout(cfg)
        wl = data.ArrayLayout(weight_lane_layout(cfg), P)
        vl = data.ArrayLayout(signed(A), P)
        cl = data.ArrayLayout(SY, P)
        kl = data.ArrayLayout(KB, P)
        # no used read meets a write to its address in the same cycle (config writes only while idle; the
        # Writer fills the bank the scatter and pool do not read; pmem is cleared a cycle after its fire
        # read, and a PE read that meets the accumulate stage's write is replaced by forwarding; vmem,
        # kmem, imem are written at addresses the fire / pool pipelines have passed), so collisions are
        # left undefined: Yosys then adds no bypass mux behind the RAM (it was on every BRAM path)
        ram = {"attrs": {"no_rw_check": 1}}
        m.submodules.table = table = Memory(shape=ent_l.size, depth=cfg.max_layers, init=img.get("table", []), **ram)
        ext = cfg.external   # weights and biases in an external memory (hw/fetch.py): no weight memory here
        banked = not ext and cfg.weight_bank_depth < cfg.max_weight_words
        if not ext and not banked:
            m.submodules.wmem = wmem = Memory(shape=wl.size, depth=cfg.max_weight_words, init=img.get("weights", []), **ram)
        elif banked:   # one RAM row per bank, the bank mux after the RAMs' output registers (hw/banks.py)
            m.submodules.wmem = wbanks = WeightBanks(wl, cfg.max_weight_words, cfg.weight_bank_depth,
                                                     clog2(cfg.max_weight_words), CFG_ADDR_BITS,
                                                     img.get("weights", []), ram["attrs"])
        # external weights: the biases arrive a beat at a time, each written into its slice of the word
        bias_bits, bias_gran = ((cfg.bias_beats * cfg.axi_data_bits, cfg.axi_data_bits) if ext else (vl.size, None))
        m.submodules.bmem = bmem = Memory(shape=bias_bits, depth=cfg.max_bias_words, init=img.get("bias", []), **ram)
        m.submodules.pmem = pmem = Memory(shape=vl.size, depth=NW, init=[], **ram)
        # two banks addressed as Cat(addr, bank): each bank a power of two deep, so bank 1 lies inside
        NB = 1 << clog2(NW)
        m.submodules.cmem = cmem = Memory(shape=cl.size, depth=2 * NB, init=[], **ram)
        m.submodules.emem = emem = Memory(shape=rec_l.size, depth=2 * NB, init=[], **ram)
        # multistep state: persistent potentials, spike counters, first layer's input current
        m.submodules.vmem = vmem = Memory(shape=vl.size, depth=cfg.max_state_words, init=[], **ram)
        m.submodules.kmem = kmem = Memory(shape=kl.size, depth=cfg.max_count_words, init=[], **ram)
        m.submodules.imem = imem = Memory(shape=vl.size, depth=NW, init=[], **ram)
        t_rd, t_wr = table.read_port(), table.write_port()
        if not ext and not banked:
            w_rd, w_wr = wmem.read_port(), wmem.write_port()
        b_rd, b_wr = bmem.read_port(), bmem.write_port(granularity=bias_gran)
        p_wr = pmem.write_port()
        p_rd = pmem.read_port()  # not transparent: the PE forwards in-flight sums
        c_rd, c_wr = cmem.read_port(), cmem.write_port()
        e_rd, e_wr = emem.read_port(), emem.write_port()
        v_rd, v_wr = vmem.read_port(), vmem.write_port()
        k_rd, k_wr = kmem.read_port(), kmem.write_port()
        i_rd, i_wr = imem.read_port(), imem.write_port()
        t_data = data.View(ent_l, t_rd.data)
        w_data = data.View(wl, w_rd.data) if not ext and not banked else None
        b_data = data.View(vl, b_rd.data[:vl.size])
        p_data = data.View(vl, p_rd.data)
        c_data = data.View(cl, c_rd.data)
        v_data = data.View(vl, v_rd.data)
        k_data = data.View(kl, k_rd.data)
        i_data = data.View(vl, i_rd.data)

        # ---- controller (hw/controller.py): the phase FSM and the layer-table walk
        m.submodules.controller = ctl = Controller(cfg)
        cur, nxt = ctl.cur, ctl.nxt   # the layer being computed, the layer consuming the Writer's words
        m.d.comb += [t_rd.addr.eq(ctl.table_addr), ctl.table_data.eq(t_data)]
        rbank, first = ctl.bank, ctl.first

        m.submodules.exit = ex = ExitController(cfg)
        m.d.comb += [ex.margin.eq(margin), ex.margin_null.eq(mnull), ex.min_steps.eq(min_steps), ex.t_max.eq(t_max)]
        step1 = ex.step == 1
        graded = ms & first   # the first layer of a multistep network reads graded bytes
        m.d.comb += [ctl.mode_ms.eq(ms), ctl.step1.eq(step1), ctl.exit_now.eq(ex.exit), ctl.exit_busy.eq(ex.busy),
                     ex.start.eq(ctl.exit_start), ex.clear.eq(ctl.exit_clear), ex.advance.eq(ctl.exit_advance)]

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=res_layout(cfg).size, depth=RES_FIFO_DEPTH)
        # the beat is chosen by state (spike, pool, logit, END words) into a register, written a cycle later:
        # the state-selected mux and the FIFO's write port are apart (together they were a routing-bound path)
        fw, fw_en = Signal(res_layout(cfg)), Signal()
        m.d.sync += [fifo.w_data.eq(fw), fifo.w_en.eq(fw_en)]
        # the result port's ready enables only the slice's registers (the FIFO's level logic behind it was a
        # late path from the port's consumer)
        m.submodules.res_slice = res_slice = RegisterSlice(res_layout(cfg))
        m.d.comb += [res_slice.i.payload.eq(fifo.r_data), res_slice.i.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(res_slice.i.ready)]
        wiring.connect(m, res_slice.o, wiring.flipped(self.res))
        # a word issued now reaches the FIFO at most PIPE_SLACK cycles later
        # the FIFO's occupancy as a counter of its own (its level is a sum of two registers: the sum and the
        # compare after it were a late path)
        res_occ = Signal(range(RES_FIFO_DEPTH + 1))
        # (a write is counted without the FIFO's w_rdy: credit keeps it from filling, and an overcount would
        # only withhold credit; w_rdy is a compare of the FIFO's level, a late path in front of this adder)
        credit_n = res_occ < RES_FIFO_DEPTH - PIPE_SLACK
        m.d.sync += res_occ.eq(res_occ + fifo.w_en - (fifo.r_en & fifo.r_rdy))

        m.d.comb += ctl.credit_next.eq(credit_n)   # registered in the controller, with the pool walk's copy

        # the Writer takes its word from a register (input port, fire or pool words: see 'the Writer's word')
        in_input, win_v, spike_sel = ctl.inputting, Signal(), Signal()
        win_codes, win_ns = Signal(data.ArrayLayout(SY, P)), Signal(P)
        # the input port's word is registered (with its non-silent lanes) before the Writer's mux, so the
        # port's compare is not in front of it; w_input marks the Writer's input words (two cycles on)

        in_v, in_w = reg(m, in_input & self.inp.valid, "in_v"), reg(m, self.inp.payload, "in_w")
        # T fans out to every lane's silent test in four places: the input's and the pool's compares use
        # copies a cycle and two behind it (T is static while a network runs; different inputs, so Yosys
        # does not merge them back); the input's compare against T itself was a late path
        T_in = reg(m, T, "T_in")
        T_pool = reg(m, T_in, "T_pool")
        in_ns = reg(m, nonsilent(self.inp.payload, Mux(ms, 0, T_in), P), "in_ns")
        w_input = reg(m, reg(m, in_input, "in_input1"), "w_input")
        m.submodules.writer = writer = Writer(cfg)
        m.d.comb += writer.ent.eq(nxt)
        m.d.sync += [writer.valid.eq(win_v), writer.codes.eq(win_codes), writer.ns.eq(win_ns)]
        m.submodules.scatter = scatter = Scatter(cfg)
        m.submodules.pool = pool = PoolWalk(cfg)
        m.d.comb += [scatter.ent.eq(cur), pool.ent.eq(cur), scatter.n_rec.eq(ctl.n_rec), scatter.start.eq(ctl.scatter_start),
                     pool.start.eq(ctl.pool_start), pool.step.eq(ctl.pool_step), writer.restart.eq(ctl.writer_restart),
                     ctl.inp_valid.eq(self.inp.valid), self.inp.ready.eq(ctl.inputting), ctl.writer_count.eq(writer.count)]
        cycles, count_clear = ctl.cycles, ctl.count_clear   # count_clear: a new inference, sops and events back to 0

        # ---- writer: buffer writes one cycle after the word (registered)
        wbank = Mux(w_input, 0, ~rbank)
        m.d.sync += [
            c_wr.addr.eq(Cat(writer.addr[:len(c_wr.addr) - 1], wbank)), c_wr.data.eq(writer.codes), c_wr.en.eq(writer.valid),
        ]
        # event records reach emem two cycles after the word, the record's mask in two hops (in one it was a
        # routing-only late path); the lane count on the way: each 4 lanes' count (one LUT level) at the
        # first register, their sum at the second (the whole 16-lane adder tree between the two would be
        # 4 LUT levels and a carry chain)
        e1_a, e1_e = reg(m, Cat(writer.count[:len(e_wr.addr) - 1], wbank), "e1_addr"), reg(m, writer.valid & writer.nonsilent, "e1_en")
        e1_r = reg(m, writer.rec, "e1_rec")
        e1_q = [reg(m, popcount(writer.rec.mask[i:i + 4]), f"e1_q{i // 4}") for i in range(0, P, 4)]
        e1_rn = Signal(rec_l)
        m.d.comb += [e1_rn.eq(e1_r), e1_rn.nlanes.eq(tree_sum(e1_q))]
        m.d.sync += [e_wr.addr.eq(e1_a), e_wr.data.eq(e1_rn), e_wr.en.eq(e1_e)]
        m.d.comb += [e_rd.addr.eq(Cat(scatter.raddr[:len(e_rd.addr) - 1], ctl.event_bank)), scatter.rdata.eq(e_rd.data)]
        spike_beat = reg(m, spike_sel, "spike_beat")
        with m.If(spike_beat & ~ms):
            m.d.comb += [fw.tag.eq(Tag.SPIKE), fw.layer.eq(cur.index), fw.addr.eq(writer.addr),
                         fw.data.eq(writer.codes), fw_en.eq(1)]

        pipe = partial(reg, m)   # (sig, name): sig one clock later

        # ---- scatter -> PE array (hw/pe.py) -> potential memory
        m.submodules.pe = pe = PEArray(cfg, banked)
        if ext:   # the Scatter's ops wait in the prefetch for their words (hw/fetch.py)
            m.submodules.xmem = xw = ExternalWeights(cfg)
            wiring.connect(m, wiring.flipped(self.m_axi), xw.axi)
            m.d.comb += [xw.op.eq(scatter.op), xw.waddr.eq(scatter.waddr), xw.paddr.eq(scatter.paddr), xw.t.eq(scatter.t),
                         scatter.room.eq(xw.room), pe.op.eq(xw.pe_op), pe.paddr.eq(xw.pe_paddr), pe.t.eq(xw.pe_t),
                         pe.weight.eq(xw.pe_weight),
                         xw.xbase.eq(dec.regs.xbase), xw.xbias.eq(dec.regs.xbias), xw.xwstart.eq(dec.regs.xwstart)]
        else:
            m.d.comb += [(w_rd.addr if not banked else wbanks.rd_addr).eq(scatter.waddr),
                         pe.op.eq(scatter.op), pe.paddr.eq(scatter.paddr), pe.t.eq(scatter.t),
                         pe.weight.eq(w_data if not banked else wbanks.rd_q)]
        m.d.comb += [pe.pmem_data.eq(p_data),
                     pe.exp_offset.eq(cur.E), pe.taulog.eq(taulog), pe.T.eq(T), pe.graded.eq(graded),
                     pe.lut.eq(dec.lut)]
        p_q, x2_pa, a_v, a_pa, h1_s, pe_busy = pe.pmem_q, pe.pmem_raddr, pe.wr_valid, pe.wr_addr, pe.wr_data, pe.busy
        sops = split_counter(m, pe.sop, count_clear, "sops")
        events = split_counter(m, pipe(scatter.event, "sc_event_r"), count_clear, "events")
        m.d.comb += [self.cycles.eq(cycles), self.sops.eq(sops), self.events.eq(events)]

        # ---- fire / emit pass (hw/passes.py)
        m.submodules.fire_pass = fp = FirePass(cfg)
        k_q = ram_q(m, k_data, "kmem_q")   # fire (F2) and pool (stage 5) read kmem at the same distance
        fa_inc, fa_zero, f_issue, bias_step_n, layer_start = (ctl.fire_addr_inc, ctl.fire_addr_zero, ctl.fire_issue,
                                                              ctl.bias_advance, ctl.layer_start)
        in_fire, is_out = ctl.firing, cur.last
        m.d.comb += [fp.ent.eq(cur), fp.layer_start.eq(layer_start), fp.addr_zero.eq(fa_zero), fp.addr_inc.eq(fa_inc),
                     fp.issue.eq(f_issue), fp.bias_advance.eq(bias_step_n), fp.firing.eq(in_fire), fp.mode_ms.eq(ms),
                     fp.first.eq(first), fp.step1.eq(step1), fp.silent.eq(T), fp.thr.eq(dec.thr),
                     fp.pmem_q.eq(p_q), fp.bias.eq(b_data), fp.vmem_data.eq(v_data), fp.imem_data.eq(i_data),
                     fp.count_q.eq(k_q),
                     i_wr.addr.eq(fp.imem_waddr), i_wr.data.eq(fp.imem_wdata), i_wr.en.eq(fp.imem_we),
                     ex.v.eq(fp.exit_v), ex.mask.eq(fp.exit_mask), ex.addr.eq(fp.exit_addr), ex.valid.eq(fp.exit_valid)]
        fa, f_more, baddr = fp.addr, fp.more, fp.bias_addr
        f1_valid, f1_addr, f2_valid, f2_addr, f5_valid, f5_addr = fp.f1_valid, fp.f1_addr, fp.f2_valid, fp.f2_addr, fp.f5_valid, fp.f5_addr
        v2, k2, vst, cnt_new, vsum5, logit_beat = fp.vmem_q, k_q, fp.state_v, fp.state_count, fp.logits, fp.logit_beat
        fw_v, fw_codes, fw_ns, f_busy = fp.word_valid, fp.word, fp.word_ns, fp.busy
        m.d.comb += [ctl.fire_busy.eq(f_busy), ctl.f1_valid.eq(f1_valid), ctl.f2_valid.eq(f2_valid), ctl.fire_more.eq(f_more)]

        # ---- pool pass (hw/passes.py): the walk's reads -> lane-wise min -> Writer, spike counts -> kmem
        po = ctl.pooled  # pooled words so far (multistep counter address)
        m.d.comb += c_rd.addr.eq(Cat(pool.rd[:len(c_rd.addr) - 1], ctl.code_bank))
        kaddr3 = Signal(ubits(cfg.max_count_words) + 1)
        m.d.comb += kaddr3.eq(cur.cbase + po)
        m.submodules.pool_min = pmin_u = PoolMin(cfg)
        m.d.comb += [pmin_u.walk_valid.eq(pool.valid), pmin_u.walk_first.eq(pool.first), pmin_u.walk_last.eq(pool.last),
                     pmin_u.codes.eq(c_data), pmin_u.silent.eq(T_pool), pmin_u.count_q.eq(k_q),
                     pmin_u.count_addr_in.eq(kaddr3), pmin_u.step1.eq(step1)]
        pwv6, pw6, pns6, kaddr6, pool_cnt = pmin_u.word_valid, pmin_u.word, pmin_u.word_ns, pmin_u.count_addr, pmin_u.count
        pool_busy = pool.busy | pool.inflight | pmin_u.busy
        m.d.comb += [ctl.pool_busy.eq(pool_busy), ctl.window_done.eq(pmin_u.window_done)]

        # ---- the Writer's word: a fire or a pool word when its pipeline delivers one (only in S_FIRE / S_POOL:
        # each state waits for its pipeline to drain, so no state decode selects), else the input port in
        # S_INPUT. Each source's non-silent lanes come from its own registers (a state-selected mux in front
        # of the compares would be a long path at 16 lanes). Silent: T, or 0 for graded input bytes.
        with m.If(fw_v):
            m.d.comb += [win_v.eq(1), win_codes.eq(fw_codes), win_ns.eq(fw_ns)]
        with m.Elif(pwv6):
            m.d.comb += [win_v.eq(1), win_codes.eq(pw6), win_ns.eq(pns6)]
        with m.Else():
            m.d.comb += [win_v.eq(in_v), win_codes.eq(in_w), win_ns.eq(in_ns)]
        m.d.comb += spike_sel.eq(fw_v | (pwv6 & ~ctl.sc_walk))   # a shortcut's re-emitted words are no layer's output

        # ---- config writes (hw/decoder.py), taken only in S_IDLE
        m.d.comb += [t_wr.addr.eq(dec.wr_addr), t_wr.data.eq(dec.wr_data), t_wr.en.eq(dec.table_we),
                     dec.accept.eq(ctl.idle), ctl.cfg_busy.eq(dec.busy), ctl.in_words.eq(in_words)]
        if ext:   # the biases come in at each inference's start; weight and bias beats write nothing
            m.d.comb += [b_wr.addr.eq(xw.bias_wr_addr), b_wr.data.eq(xw.bias_wr_data.replicate(cfg.bias_beats)),
                         b_wr.en.eq(xw.bias_wr_en),
                         xw.start.eq(ctl.count_clear), ctl.weights_ready.eq(xw.bias_ready)]
        else:
            w_wa, w_wd, w_we = (w_wr.addr, w_wr.data, w_wr.en) if not banked else (wbanks.wr_addr, wbanks.wr_data, wbanks.wr_en)
            m.d.comb += [w_wa.eq(dec.wr_addr), w_wd.eq(dec.wr_data), w_we.eq(dec.weight_we),
                         b_wr.addr.eq(dec.wr_addr), b_wr.data.eq(dec.wr_data), b_wr.en.eq(dec.bias_we)]

        # ---- address muxes of the shared ports
        in_pool = ctl.pooling
        m.d.comb += [b_rd.addr.eq(baddr), v_rd.addr.eq(cur.vbase + fa), i_rd.addr.eq(fa),
                     k_rd.addr.eq(Mux(in_pool, kaddr3, cur.cbase + fa)),
                     p_rd.addr.eq(Mux(in_fire, fa, x2_pa))]
        clr = ctl.clear_addr
        # the write data is always the accumulate stage's sum; clearing holds that stage at zero
        # (synchronous resets of its registers, free in FPGA flip-flops) instead of muxing in a 0.
        # The port is registered (a cycle after the sum, from h1_s): the forwarding mux and adder end in
        # a flip-flop, not at the RAM's inputs (where the longest paths ended)
        pw_a, pw_e = Signal.like(p_wr.addr), Signal()
        m.d.comb += [p_wr.data.eq(h1_s), p_wr.addr.eq(pw_a), p_wr.en.eq(pw_e)]
        with m.If(ctl.clearing):  # after reset: potentials back to zero
            m.d.sync += [pw_a.eq(clr), pw_e.eq(1)]
        with m.Elif(in_fire):         # read at F0, cleared at F2 (one address in one cycle would collide)
            m.d.sync += [pw_a.eq(f1_addr), pw_e.eq(f1_valid)]
        with m.Else():
            m.d.sync += [pw_a.eq(a_pa), pw_e.eq(a_v)]
        m.d.comb += [v_wr.addr.eq(cur.vbase + f5_addr), v_wr.data.eq(vst), v_wr.en.eq(in_fire & f5_valid & ms)]
        with m.If(in_pool):
            m.d.comb += [k_wr.addr.eq(kaddr6), k_wr.data.eq(pool_cnt), k_wr.en.eq(pwv6 & ms)]
        with m.Else():
            m.d.comb += [k_wr.addr.eq(cur.cbase + f5_addr), k_wr.data.eq(cnt_new), k_wr.en.eq(in_fire & f5_valid & ms & ~is_out)]

        m.d.comb += [ctl.scatter_busy.eq(scatter.busy | (xw.busy if ext else 0)), ctl.pe_busy.eq(pe_busy),
                     self.busy.eq(ctl.busy)]

        # ---- result beats, later ones taking precedence (no two are ever selected in one cycle)
        with m.If(logit_beat):
            m.d.comb += [fw.tag.eq(Tag.LOGIT), fw.layer.eq(cur.index), fw.addr.eq(f5_addr), fw.data.eq(vsum5), fw_en.eq(1)]
        if cfg.multistep:   # the read-out after the exit step: O, then every counted layer's spike counts
            for beat, tag, payload in ((ctl.emit_logit_beat, Tag.LOGIT, v2), (ctl.emit_count_beat, Tag.COUNT, k2)):
                with m.If(beat):
                    m.d.comb += [fw.tag.eq(tag), fw.layer.eq(cur.index), fw.addr.eq(f2_addr), fw.data.eq(payload),
                                 fw_en.eq(1)]
        end_word = Signal(end_layout(cfg))   # the END beat's data (hw/protocol.py)
        m.d.comb += [end_word.pred.eq(ex.pred), end_word.cycles.eq(cycles), end_word.sops.eq(sops),
                     end_word.events.eq(events), end_word.exit_step.eq(ex.step)]
        if ext:
            m.d.comb += [end_word.error.eq(xw.error), end_word.error_addr.eq(xw.error_addr)]
        with m.If(ctl.end_beat):  # selected by a state flip-flop alone (no credit, no adder)
            m.d.comb += [fw.tag.eq(Tag.END), fw_en.eq(1), fw.data.eq(end_word)]
        return m
