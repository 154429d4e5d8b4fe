"""The LogSpike processor: a programmable, event-driven, multiplier-free SNN core
running ttfs and multistep packages on one build (the mode is a config global).

Phases of one inference (one layer-table entry per non-flatten layer):

  INPUT   input words (P lanes each, natural layout: ttfs codes or multistep
          bytes) -> Writer -> code buffer + event list (non-silent words only)
  SCATTER (weighted layers) Scatter (hw/sequencer.py) issues one (event,
          output group) op per cycle from registers; the PE pipeline is
          R (weight word arrives), X1..X4 (hw/shiftadd.py lane stages),
          A (accumulate and write back). The potential word is read in X2 by a
          non-transparent port, so the four sums not yet written by then are forwarded
          (hit flags compared one stage ahead): back-to-back ops on one word
          cost no stall. DRAIN waits for the pipeline to empty.
  FIRE    one potential word per cycle, read, and cleared two cycles later (bias
          folded in here, so no bias-init pass): F1 data, F2 registered,
          F3 V + bias, F4 comparator bank (ttfs) / leak and drive (multistep),
          F5 codes / V_new (codes at F7 with a split comparator bank), then
          codes to the Writer and SPIKE beats.
          multistep: V = leak(V) + I, spike and soft reset; V and the spike
          counter go back to their persistent memories.
          Output layer: ttfs LOGIT beats; both modes feed the exit controller
          (lane-serial top-1 / top-2 / argmax, hw/exit.py).
  POOL    k*k reads per pooled word (address sums pipelined), lane-wise min
          (ttfs: earliest code; multistep: spike code 0 < silent 1, so min is
          OR) -> Writer.

Every stage boundary is a register and every block-RAM read lands in a
register before any arithmetic, so no path holds more than one carry chain
of A bits and a few LUT levels (the clock target is 150 MHz on ECP5). That
register (`ram_q`) has no reset, no enable and no other load, so the ECP5
flow moves it into the RAM (output register, synth/outreg.py); and no read
whose data is used ever meets a write to the same address in the same
cycle, so the memories are marked `no_rw_check` and Yosys puts no collision
bypass mux between the RAM and that register. The
result FIFO is written at most PIPE_SLACK cycles after an issue; issues
stop while it lacks that room (credit).

multistep repeats LAYER..FIRE for s = 1..T_max. The first layer's input
current (bias + graded contributions) is scattered once, at step 1, and kept
in `imem`; later steps skip its scatter. Every weighted layer's potentials
live at once in `vmem` (region vbase of its table entry), the spike counters
of every spiking and pooling layer in `kmem` (region cbase). Nothing is
cleared between inferences: at step 1 the old V and counts read as 0.
After the output pass, DECIDE asks the exit controller (hw/exit.py); on exit
OUTE re-reads O from vmem as LOGIT beats, CNT walks the table and sends
every counter word as COUNT beats, then END.

Memories: potential accumulator (words of P x A, one layer at a time), code and event buffers (two banks,
ping-pong by layer parity), weights (P x W per word; banks of block-RAM rows where one memory would be a
cascade, hw/banks.py, a read a cycle longer), biases (P x A), layer table, multistep state (vmem, kmem, imem).
Config registers and memories are not reset: a reset aborts the inference
(and clears the accumulator) but keeps the loaded network.

Config stream beat: {sel, addr, data}. sel 0 globals (addr 0 T (multistep:
1, the silent spike code), 1 log2 tau (multistep: 0), 2 input words, 3 mode
(0 ttfs, 1 multistep), 4 leak_shift, 5 margin (clamped to 2^A), 6 margin is
null, 7 min_steps (clamped to T_max), 8 T_max), 1 lut[addr] (multistep:
lut[0] = 2^F), 2 thresholds[addr], 3 layer table[addr], 4 weight word[addr],
5 bias word[addr]. Accepted only while idle; a write lands one (memories) or two (registers, banked
weights) cycles after its beat, and an input waiting with config beats starts after them.

Result stream beat {tag, layer, addr, data}: tag 0 SPIKE (ttfs: layer index,
word address, data = P codes), tag 1 LOGIT (word address, data = P
potentials), tag 3 COUNT (multistep: layer index, word address, data = P
spike counts up to the exit step), tag 2 END (data = pred[16] | cycles[32] |
sops[32] | events[32] | exit_step[16]; ttfs exit_step = 1).
`hw/image.py` writes and parses both formats.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import CFG_ADDR_BITS, LAYER_INDEX_BITS, Config, clog2, ubits
from .exit import LANE_CYCLES, ExitController
from .banks import WeightBanks
from .firing import FiringUnit
from .counter import split_counter
from .sequencer import PoolWalk, Scatter, Writer, copies, entry_layout, popcount, ram_q, record_layout, reg, tree_sum, widths
from .shiftadd import lane_base, lane_stages, shift_limits, tau_e

TAG_SPIKE, TAG_LOGIT, TAG_END, TAG_COUNT = 0, 1, 2, 3
SEL_GLOBAL, SEL_LUT, SEL_THR, SEL_TABLE, SEL_WEIGHT, SEL_BIAS = range(6)
G_T, G_TAULOG, G_IN_WORDS, G_MODE, G_LEAK, G_MARGIN, G_MARGIN_NULL, G_MIN_STEPS, G_T_MAX = range(9)
RES_FIFO_DEPTH = 16
PIPE_SLACK = 13  # cycles from a fire / pool / emit issue to its result beat, and one more
(S_CLEAR, S_IDLE, S_PREP, S_PREP2, S_PREP3, S_INPUT, S_LAYER, S_LAYER2, S_LAYER3, S_LAYER4, S_SCATTER,
 S_DRAIN, S_FIRE, S_POOL, S_DECIDE, S_OUTE, S_CNTL, S_CNTL2, S_CNTL3, S_CNTE, S_END, S_END2) = range(22)
END_BITS = 128


def weight_lane_layout(cfg):
    return data.StructLayout({"mag": cfg.weight_bits - 1, "sign": 1})


def cfg_data_bits(cfg: Config) -> int:
    P = cfg.lanes
    return max(entry_layout(cfg).size, P * cfg.weight_bits, P * cfg.acc_bits, cfg.acc_bits + 1, cfg.frac_bits + 1, 32)


def cfg_layout(cfg: Config):
    return data.StructLayout({"data": cfg_data_bits(cfg), "addr": CFG_ADDR_BITS, "sel": 3})


def res_data_bits(cfg: Config) -> int:
    return max(cfg.lanes * cfg.sym_bits, cfg.lanes * cfg.acc_bits, cfg.lanes * cfg.count_bits, END_BITS)


def res_layout(cfg: Config):
    return data.StructLayout({"data": res_data_bits(cfg), "addr": widths(cfg)[0], "layer": LAYER_INDEX_BITS, "tag": 2})


class Processor(wiring.Component):
    def __init__(self, cfg: Config, image: dict | None = None):
        """image: optional baked network (from hw.image.bake), the reset/init contents."""
        self.conf, self.image = cfg, image
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(cfg))),
            "inp": In(stream.Signature(data.ArrayLayout(cfg.sym_bits, cfg.lanes))),
            "res": Out(stream.Signature(res_layout(cfg))),
            "cycles": Out(32), "sops": Out(32), "events": Out(32), "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg, img = self.conf, self.image or {}
        P, A, F, CB, SY = cfg.lanes, cfg.acc_bits, cfg.frac_bits, cfg.code_bits, cfg.sym_bits
        SB, KB = cfg.step_bits, cfg.count_bits
        XA, WA = widths(cfg)
        NW = cfg.words
        m = Module()
        glob = img.get("globals", {})

        # ---- config registers (reset_less: a reset keeps the loaded network)
        def greg(name, shape, key):
            return Signal(shape, init=glob.get(key, 0), reset_less=True, name=name)

        T = greg("T", CB, "T")
        taulog = greg("taulog", cfg.tau_log_bits, "taulog")
        in_words = greg("in_words", XA, "in_words")
        # a build without the multistep datapath (Config.multistep False) has mode ttfs wired in
        ms = greg("mode_ms", 1, "mode") if cfg.multistep else Const(0, 1)
        leak = greg("leak_shift", 5, "leak_shift")
        margin = greg("margin", A + 1, "margin")
        mnull = greg("margin_null", 1, "margin_null")
        min_steps = greg("min_steps", SB, "min_steps")
        t_max = greg("t_max", SB, "t_max")
        lut_init = img.get("lut", [0] * cfg.max_tau)
        thr_init = img.get("thr", [0] * cfg.max_t)
        luts = Array([Signal(F + 1, init=lut_init[i], reset_less=True, name=f"lut{i}") for i in range(cfg.max_tau)])
        thrs = Array([Signal(cfg.thr_width, init=thr_init[i], reset_less=True, name=f"thr{i}") for i in range(cfg.max_t)])

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
        banked = cfg.weight_bank_depth < cfg.max_weight_words
        if not banked:
            m.submodules.wmem = wmem = Memory(shape=wl.size, depth=cfg.max_weight_words, init=img.get("weights", []), **ram)
        else:   # one RAM row per bank, the bank mux after the RAMs' output registers (hw/banks.py)
            m.submodules.wmem = wbanks = WeightBanks(wl, cfg.max_weight_words, cfg.weight_bank_depth,
                                                     clog2(cfg.max_weight_words), CFG_ADDR_BITS,
                                                     img.get("weights", []), ram["attrs"])
        m.submodules.bmem = bmem = Memory(shape=vl.size, depth=cfg.max_bias_words, init=img.get("bias", []), **ram)
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
        if not banked:
            w_rd, w_wr = wmem.read_port(), wmem.write_port()
        b_rd, b_wr = bmem.read_port(), bmem.write_port()
        p_wr = pmem.write_port()
        p_rd = pmem.read_port()  # not transparent: the PE forwards in-flight sums
        c_rd, c_wr = cmem.read_port(), cmem.write_port()
        e_rd, e_wr = emem.read_port(), emem.write_port()
        v_rd, v_wr = vmem.read_port(), vmem.write_port()
        k_rd, k_wr = kmem.read_port(), kmem.write_port()
        i_rd, i_wr = imem.read_port(), imem.write_port()
        t_data = data.View(ent_l, t_rd.data)
        w_data = data.View(wl, w_rd.data) if not banked else None
        b_data = data.View(vl, b_rd.data)
        p_data = data.View(vl, p_rd.data)
        c_data = data.View(cl, c_rd.data)
        v_data = data.View(vl, v_rd.data)
        k_data = data.View(kl, k_rd.data)
        i_data = data.View(vl, i_rd.data)

        cur = Signal(ent_l)   # the layer being computed
        nxt = Signal(ent_l)   # the layer that consumes what the Writer produces
        li = Signal(range(cfg.max_layers + 2))
        # li's next value (the states below assign li_n); the layer table's read address is a register of its
        # own loaded from it (li + 1 in S_LAYER, for S_LAYER2's read of the next entry): a state-selected
        # address in front of the table's LUT RAM (259 bits, ~65 RAM cells on its address) was the worst path
        li_n, t_a = Signal.like(li), Signal.like(t_rd.addr)
        m.d.comb += [li_n.eq(li), t_rd.addr.eq(t_a)]
        m.d.sync += li.eq(li_n)
        rbank = li[0]
        first = li == 0       # table entry 0 is the first weighted layer (only flatten precedes it)

        m.submodules.exit = ex = ExitController(cfg)
        m.d.comb += [ex.margin.eq(margin), ex.margin_null.eq(mnull), ex.min_steps.eq(min_steps), ex.t_max.eq(t_max)]
        step1 = ex.step == 1
        graded = ms & first   # the first layer of a multistep network reads graded bytes

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=res_layout(cfg).size, depth=RES_FIFO_DEPTH)
        # the beat is chosen by state (spike, pool, logit, END words) into a register, written a cycle later:
        # the state-selected mux and the FIFO's write port are apart (a routing-bound path at 107 MHz)
        fw, fw_en = Signal(res_layout(cfg)), Signal()
        m.d.sync += [fifo.w_data.eq(fw), fifo.w_en.eq(fw_en)]
        m.d.comb += [self.res.payload.eq(fifo.r_data), self.res.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.res.ready)]
        # a word issued now reaches the FIFO at most PIPE_SLACK cycles later
        credit = Signal()
        # the FIFO's occupancy as a counter of its own (its level is a sum of two registers: the sum and the
        # compare after it were a late path)
        res_occ = Signal(range(RES_FIFO_DEPTH + 1))
        # (a write is counted without the FIFO's w_rdy: credit keeps it from filling, and an overcount would
        # only withhold credit; w_rdy is a compare of the FIFO's level, a late path in front of this adder)
        credit_n = res_occ < RES_FIFO_DEPTH - PIPE_SLACK
        m.d.sync += [res_occ.eq(res_occ + fifo.w_en - (fifo.r_en & fifo.r_rdy)), credit.eq(credit_n)]
        credit_pw = copies(m, credit_n, "pw_credit", 1)[0]   # the pool walk's copy (see pool_st)

        # one-hot state: every decode is one flip-flop (the state register fans out to most of the datapath)
        state = Signal(S_END2 + 1, init=1 << S_CLEAR)

        # the pool walk's copies of the S_POOL bit (kept by go below) and of `credit` (above), its step's only
        # inputs: kept apart by the flow's `_dup` rule, they sit by the walk (from the FSM's and the FIFO
        # counter's flip-flops across the die, its load enables were late paths on most placements, 6.5-7.1 ns)
        pool_st = Signal(name="pw_state_dup0", attrs={"keep": 1})

        def go(frm, to):
            """A transition clears its own bit and sets the target's: each state bit's next value then depends
            on the few transitions that touch it (whole-vector assignments made every bit a priority chain
            over all states: the FSM was the worst path after the scatter's were removed)"""
            m.d.sync += [state[frm].eq(0), state[to].eq(1)]
            if S_POOL in (frm, to):
                m.d.sync += pool_st.eq(to == S_POOL)
        # the Writer takes its word from a register (input port, fire or pool words: see 'the Writer's word')
        in_input, win_v, spike_sel = Signal(), Signal(), Signal()
        win_codes, win_ns = Signal(data.ArrayLayout(SY, P)), Signal(P)
        # the input port's word is registered (with its non-silent lanes) before the Writer's mux, so the
        # port's compare is not in front of it; w_input marks the Writer's input words (two cycles on)
        def nonsilent(codes, silent):
            return Cat(*[codes[l] != silent for l in range(P)])

        in_v, in_w = reg(m, in_input & self.inp.valid, "in_v"), reg(m, self.inp.payload, "in_w")
        # T fans out to every lane's silent test in four places: the input's and the pool's compares use
        # copies a cycle and two behind it (T is static while a network runs; different inputs, so Yosys
        # does not merge them back); the input's compare against T itself was a late path
        T_in = reg(m, T, "T_in")
        T_pool = reg(m, T_in, "T_pool")
        in_ns = reg(m, nonsilent(self.inp.payload, Mux(ms, 0, T_in)), "in_ns")
        w_input = reg(m, reg(m, in_input, "in_input1"), "w_input")
        writer = Writer(m, cfg, nxt)
        m.d.sync += [writer.valid.eq(win_v), writer.codes.eq(win_codes), writer.ns.eq(win_ns)]
        scatter = Scatter(m, cfg, cur)
        pool = PoolWalk(m, cfg, cur)
        NG = max(1, P // 4)   # register copies (hw/sequencer.py copies): one per group of four lanes
        grp = [l * NG // P for l in range(P)]   # each lane's copy
        m.submodules.fire = fire = FiringUnit(cfg, latency=2 * cfg.fire_split, split=cfg.fire_split,
                                              valid_copies=NG if cfg.fire_split == 2 else 1)
        for t in range(cfg.max_t):
            m.d.comb += fire.thr[t].eq(thrs[t])

        cycles = Signal(32)
        count_clear = Signal()   # a new inference: sops and events back to 0

        n_rec = Signal(XA)
        m.d.comb += scatter.n_rec.eq(n_rec)

        # ---- writer: buffer writes one cycle after the word (registered)
        wbank = Mux(w_input, 0, ~rbank)
        m.d.sync += [
            c_wr.addr.eq(Cat(writer.addr[:len(c_wr.addr) - 1], wbank)), c_wr.data.eq(writer.codes), c_wr.en.eq(writer.valid),
        ]
        # event records reach emem two cycles after the word, the record's mask in two hops (in one it was a
        # routing-only late path); the lane count on the way: each 4 lanes' count (one LUT level) at the
        # first register, their sum at the second (the whole 16-lane adder tree between the two was
        # 4 LUT levels and a carry chain, 6.9 ns)
        e1_a, e1_e = reg(m, Cat(writer.count[:len(e_wr.addr) - 1], wbank), "e1_addr"), reg(m, writer.valid & writer.nonsilent, "e1_en")
        e1_r = reg(m, writer.rec, "e1_rec")
        e1_q = [reg(m, popcount(writer.rec.mask[i:i + 4]), f"e1_q{i // 4}") for i in range(0, P, 4)]
        e1_rn = Signal(rec_l)
        m.d.comb += [e1_rn.eq(e1_r), e1_rn.nlanes.eq(tree_sum(e1_q))]
        m.d.sync += [e_wr.addr.eq(e1_a), e_wr.data.eq(e1_rn), e_wr.en.eq(e1_e)]
        m.d.comb += [e_rd.addr.eq(Cat(scatter.raddr[:len(e_rd.addr) - 1], rbank)), scatter.rdata.eq(e_rd.data)]
        spike_beat = reg(m, spike_sel, "spike_beat")
        with m.If(spike_beat & ~ms):
            m.d.comb += [fw.tag.eq(TAG_SPIKE), fw.layer.eq(cur.index), fw.addr.eq(writer.addr),
                         fw.data.eq(writer.codes), fw_en.eq(1)]

        # ---- scatter -> PE pipeline: issue (scatter registers, weight read), R (weight word arrives),
        # X1..X4 (lane stages, hw/shiftadd.py), A (accumulate, write back). The potential word is read
        # in X2 and lands in pmem_q in X4 (the RAM's output register); pmem's write port is a cycle behind
        # A, so the four sums the read did not see are forwarded: the three oldest into pe_a_old (in X4), the
        # newest in A.
        def pipe(sig, name):
            return reg(m, sig, name)

        m.d.comb += (w_rd.addr if not banked else wbanks.rd_addr).eq(scatter.waddr)
        r_v, r_pa, r_t = pipe(scatter.op, "pe_r_v"), pipe(scatter.paddr, "pe_r_pa"), pipe(scatter.t, "pe_r_t")
        m_v = r_v   # an op waiting for a banked weight word, in the stage before R (none in a one-memory build)
        if banked:  # the bank mux has a register of its own (hw/banks.py): the op waits a cycle for its word
            assert WeightBanks.LATENCY == 3
            m_v, (r_v, r_pa, r_t) = r_v, (pipe(r_v, "pe_r2_v"), pipe(r_pa, "pe_r2_pa"), pipe(r_t, "pe_r2_t"))
        x1_v, x1_pa, x1_t = pipe(r_v, "pe_x1_v"), pipe(r_pa, "pe_x1_pa"), pipe(r_t, "pe_x1_t")
        x1_w = ram_q(m, w_data, "pe_x1_w") if not banked else wbanks.rd_q   # the banks' register is their own
        x1_silent = pipe(Mux(graded, r_t == 0, r_t >= T), "pe_x1_silent")   # tested in R: X1 ANDs it with mag != 0
        # the event's share of every lane's exponent sum, from R; tau * (A - 1 - E) is constant over a layer
        x1_base = pipe(lane_base(r_t, graded, pipe(tau_e(cur.E, taulog, A), "pe_tau_e")), "pe_x1_base")
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
        h2_v, h2_pa, h2_s = pipe(h1_v, "pe_h2_v"), pipe(h1_pa, "pe_h2_pa"), pipe(h1_s, "pe_h2_s")  # two cycles ago
        h3_s = pipe(h2_s, "pe_h3_s")                                                              # three
        p_q = ram_q(m, p_data, "pmem_q")   # the word read in X2 (also the fire pass's F2 register)
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
        sops = split_counter(m, r_v, count_clear, "sops")
        events = split_counter(m, pipe(scatter.event, "sc_event_r"), count_clear, "events")
        m.d.comb += [self.cycles.eq(cycles), self.sops.eq(sops), self.events.eq(events)]

        # ---- fire / emit pipeline: F0 issue (read; cleared in F2), F1 data arrives, F2 registered,
        # F3 V + bias, F4 compare bank / leak + drive, F5 codes / V_new (split bank: codes in F7), then
        # codes to the Writer
        fa = Signal(XA)
        # the bias word of the group being issued: baddr = cur.bbase + (its output group), kept as a register
        # (the add before the bias LUT RAM's read was late); fgo_end: this is the last group (baddr + 1 ==
        # bbase + gout), registered with baddr, so no compare precedes its mux
        baddr = Signal(len(b_rd.addr))
        fgo_end = Signal()
        # per-layer constants for it (cur is loaded two states before the fire pass): gout == 1, bbase + gout - 2
        g_one, b_m2 = reg(m, cur.gout == 1, "f_g_one"), reg(m, cur.bbase + cur.gout - 2, "f_b_m2")
        # f_more = (fa != cur.out_words) is registered, so the issue decision (fanning out to the pipeline)
        # waits on no compare; the FSM only says which next fa (fa_inc: fa + 1, fa_zero: 0, else fa) and the
        # three candidates' compares run beside it (a compare after the FSM's mux was a 7.3 ns path)
        fa_n, f_more, fa_inc, fa_zero = Signal(XA), Signal(), Signal(), Signal()
        m.d.comb += fa_n.eq(Mux(fa_zero, 0, Mux(fa_inc, fa + 1, fa)))
        # fa + 1 != out_words as fa != out_words - 1 (ow_m1, a per-layer register: cur is loaded at least two
        # cycles before the first fa_inc of a pass), so no carry chain precedes the compare
        ow_m1 = reg(m, cur.out_words - 1, "f_ow_m1")
        m.d.sync += [fa.eq(fa_n), f_more.eq(Mux(fa_zero, cur.out_words != 0,
                                                Mux(fa_inc, fa != ow_m1, fa != cur.out_words)))]
        f_issue = Signal()
        in_fire = state[S_FIRE]
        # baddr and fgo_end step to the next group after a fire issue. Where issues are two cycles apart or
        # more (a split bank), they step a cycle after it, from a flip-flop (f_adv) set by the issue: from the
        # issue decision itself (four flags, fanning out to the pipeline) to these registers at the bias LUT
        # RAM was a late path at 16 lanes. An unsplit bank can issue back to back, so it steps at the issue.
        f_adv_n = Signal()
        f_adv = reg(m, f_adv_n, "f_adv") if cfg.fire_split > 1 else f_adv_n
        with m.If(f_adv):
            m.d.sync += [fgo_end.eq(Mux(fgo_end, g_one, baddr == b_m2)),
                         baddr.eq(Mux(fgo_end, cur.bbase, baddr + 1))]
        fv1, fa1 = pipe(f_issue, "f_v1"), pipe(fa, "f_a1")
        fv2, fa2 = pipe(fv1, "f_v2"), pipe(fa1, "f_a2")
        k_q = ram_q(m, k_data, "kmem_q")   # fire (F2) and pool (stage 5) read kmem at the same distance
        p2, k2 = p_q, k_q
        b2, v2, i2 = (ram_q(m, x, f"f_{n}2") for x, n in ((b_data, "b"), (v_data, "v"), (i_data, "i")))
        is_out = cur.last
        vsum = Signal(vl)
        vold = Signal(vl)
        for l in range(P):
            m.d.comb += [vsum[l].eq(p2[l] + b2[l]), vold[l].eq(Mux(step1, 0, v2[l]))]
        fv3, fa3, vsum3, vold3, i3, k3 = (pipe(x, f"f_{n}3") for x, n in (
            (fv2, "v"), (fa2, "a"), (vsum, "vsum"), (vold, "vold"), (i2, "i"), (k2, "k")))
        # a split bank takes valid as one copy of fv3 per lane group; an unsplit bank does not use it
        fire_valid = Cat(*copies(m, fv2, "f_v3", len(fire.valid))) if cfg.fire_split == 2 else fv3
        m.d.comb += [fire.v.eq(vsum3), fire.valid.eq(fire_valid)]
        vleak, drive = Signal(vl), Signal(vl)
        for l in range(P):
            m.d.comb += [vleak[l].eq(Mux((leak != 0) & ~is_out, vold3[l] - (vold3[l] >> leak), vold3[l])),
                         drive[l].eq(Mux(first & ~step1, i3[l], vsum3[l]))]
        m.d.comb += [i_wr.addr.eq(fa3), i_wr.data.eq(vsum3), i_wr.en.eq(in_fire & fv3 & ms & first & step1)]
        fv4, fa4, vsum4, vleak4, drive4, k4 = (pipe(x, f"f_{n}4") for x, n in (
            (fv3, "v"), (fa3, "a"), (vsum3, "vsum"), (vleak, "vleak"), (drive, "drive"), (k3, "k")))
        vnew = Signal(vl)
        for l in range(P):
            m.d.comb += vnew[l].eq(vleak4[l] + drive4[l])
        fv5, fa5, vsum5, vnew5, k5 = (pipe(x, f"f_{n}5") for x, n in (
            (fv4, "v"), (fa4, "a"), (vsum4, "vsum"), (vnew, "vnew"), (k4, "k")))
        # a ttfs output word's logits beat, as a flag of its own from F4 (the FSM stays in S_FIRE while a
        # word is in flight): one flip-flop selects the 368-bit word into the result FIFO's register
        logit_beat = pipe(in_fire & fv4 & is_out & ~ms, "f_logit5")
        spk = Signal(P)
        vst = Signal(vl)
        cnt_new = Signal(kl)
        for l in range(P):
            m.d.comb += [
                spk[l].eq(~is_out & (vnew5[l] >= (1 << F))),
                vst[l].eq(Mux(spk[l], vnew5[l] - (1 << F), vnew5[l])),
                cnt_new[l].eq(Mux(step1, 0, k5[l]) + spk[l]),
            ]
        # exit controller / argmax input: the output layer's words
        # its valid bit and the last word's test are registered from F4 (the word's load enable fans out to
        # P x A flip-flops)
        ex_v5, ex_last5 = pipe(in_fire & fv4 & is_out, "ex_v5"), pipe(fa4 == ow_m1, "ex_last5")
        for l in range(P):
            m.d.comb += [ex.v[l].eq(Mux(ms, vnew5[l], vsum5[l])), ex.mask[l].eq(~ex_last5 | cur.last_mask[l])]
        m.d.comb += [ex.addr.eq(fa5), ex.valid.eq(ex_v5)]
        # the codes of a word come out of the firing unit at F(3 + latency): F5, or F7 with a split bank
        fc_v, ms_codes, late = fv5, ~spk, []
        for k in range(6, 4 + fire.latency):
            fc_v, ms_codes = pipe(fc_v, f"f_v{k}"), pipe(ms_codes, f"f_spk{k}")
            late.append(fc_v)
        fire_codes = Signal(cl)  # ttfs codes or multistep spikes (code 0 = spike, 1 = silent)
        for l in range(P):
            m.d.comb += fire_codes[l].eq(Mux(ms, ms_codes[l], fire.codes[l]))
        fw_v, fw_codes = pipe(fc_v & ~is_out, "f_wv"), pipe(fire_codes, "f_wcodes")   # to the Writer
        fw_ns = pipe(nonsilent(fire_codes, T), "f_wns")   # its non-silent lanes, compared a stage early
        f_busy = fv1 | fv2 | fv3 | fv4 | fv5 | Cat(*late).any() | fw_v
        f_gap = Signal(range(LANE_CYCLES * P))  # cycles until the next fire issue
        f_gap_z = Signal(init=1)                # f_gap == 0, registered with it (no compare before f_issue)

        # ---- pool pipeline: walk (2 stages of address sum) -> read -> registered -> lane-wise min
        # (ttfs: earliest code; multistep: spike code 0 < silent 1, so min is OR) -> Writer
        po = Signal(XA)  # pooled words so far (multistep counter address)
        m.d.comb += c_rd.addr.eq(Cat(pool.rd[:len(c_rd.addr) - 1], rbank))
        pv3, pf3, pl3 = pipe(pool.valid, "pl_v3"), pipe(pool.first, "pl_f3"), pipe(pool.last, "pl_l3")
        pv4, pf4, pl4, cd4 = pipe(pv3, "pl_v4"), pipe(pf3, "pl_f4"), pipe(pl3, "pl_l4"), ram_q(m, c_data, "pl_cd4")
        # the codes once more registered (stage 5) before the lane-wise min: from the block RAM's output
        # register straight into 16 lanes' compares and muxes was 6.8 ns, nearly all routing
        pv5, pf5, pl5, cd5 = pipe(pv4, "pl_v5"), pipe(pf4, "pl_f5"), pipe(pl4, "pl_l5"), pipe(cd4, "pl_cd5")
        pacc, pmin = Signal(cl), Signal(cl)
        for l in range(P):
            m.d.comb += pmin[l].eq(Mux(pf5 | (cd5[l] < pacc[l]), cd5[l], pacc[l]))
        # the pooled word's non-silent lanes, kept beside the min: min < T exactly when some code of the
        # window is not T (codes are at most T; multistep: T = 1, the silent spike), so it is an OR of
        # per-read compares and no compare follows the min (that compare into the Writer was a late path)
        pns, pns_n = Signal(P), Signal(P)
        m.d.comb += pns_n.eq(Mux(pf5, 0, pns) | nonsilent(cd5, T_pool))
        with m.If(pv5):
            m.d.sync += [pacc.eq(pmin), pns.eq(pns_n)]
        kaddr3 = Signal(ubits(cfg.max_count_words) + 1)
        m.d.comb += kaddr3.eq(cur.cbase + po)
        pwv6, pw6, pns6 = pipe(pv5 & pl5, "pl_v6"), pipe(pmin, "pl_w6"), pipe(pns_n, "pl_ns6")
        kaddr6 = pipe(pipe(pipe(kaddr3, "pl_ka4"), "pl_ka5"), "pl_ka6")
        pk6 = pipe(k_q, "pl_k6")   # kmem read at stage 3 (the fire pass's distance), its data at 5
        pool_busy = pool.busy | pool.inflight | pv3 | pv4 | pv5 | pwv6

        # ---- the Writer's word: a fire or a pool word when its pipeline delivers one (only in S_FIRE / S_POOL:
        # each state waits for its pipeline to drain, so no state decode selects), else the input port in
        # S_INPUT. Each source's non-silent lanes come from its own registers (a state-selected mux in front
        # of the compares was the worst P16 path at 105.6 MHz). Silent: T, or 0 for graded input bytes.
        with m.If(fw_v):
            m.d.comb += [win_v.eq(1), win_codes.eq(fw_codes), win_ns.eq(fw_ns)]
        with m.Elif(pwv6):
            m.d.comb += [win_v.eq(1), win_codes.eq(pw6), win_ns.eq(pns6)]
        with m.Else():
            m.d.comb += [win_v.eq(in_v), win_codes.eq(in_w), win_ns.eq(in_ns)]
        m.d.comb += spike_sel.eq(fw_v | pwv6)
        pool_cnt = Signal(kl)
        for l in range(P):
            m.d.comb += pool_cnt[l].eq(Mux(step1, 0, pk6[l]) + (pw6[l] == 0))

        # ---- config stream
        # A beat is registered as it is taken (its sel decoded one-hot, its address's upper bits tested for
        # zero); the memories write from those registers a cycle after the beat (banked weights a cycle later),
        # the registers a cycle later still, from a flag per register decoded from the registered beat. Decoding the stream
        # directly (from the FSM's idle bit) into ~450 register enables and the LUT-RAM write enables took
        # 5 LUT levels: a late path. An inference starts only when no beat is taken this cycle or either
        # of the last two (the IDLE state below), so it always sees every write.
        cp = self.cfg.payload
        take = Signal()
        m.d.comb += take.eq(self.cfg.valid & self.cfg.ready)
        cb_d = Signal.like(cp.data, name="cfg_d", reset_less=True)
        cb_a = Signal.like(cp.addr, name="cfg_a", reset_less=True)
        m.d.sync += [cb_d.eq(cp.data), cb_a.eq(cp.addr)]
        cb_sel = {k: reg(m, take & (cp.sel == k), f"cfg_sel{k}") for k in
                  (SEL_GLOBAL, SEL_LUT, SEL_THR, SEL_TABLE, SEL_WEIGHT, SEL_BIAS)}
        SMALL = 4   # the registers' addresses are below 2^SMALL (9 globals, max_tau and max_t up to 16)
        assert max(cfg.max_tau, cfg.max_t, 9) <= 1 << SMALL
        cb_small = reg(m, cp.addr[SMALL:] == 0, "cfg_small")
        cb_any = reg(m, take, "cfg_any")
        cfg_busy = Signal()
        m.d.comb += cfg_busy.eq(take | cb_any | reg(m, cb_any, "cfg_any2"))
        w_wa, w_wd, w_we = (w_wr.addr, w_wr.data, w_wr.en) if not banked else (wbanks.wr_addr, wbanks.wr_data, wbanks.wr_en)
        m.d.comb += [t_wr.addr.eq(cb_a), t_wr.data.eq(cb_d), w_wa.eq(cb_a), w_wd.eq(cb_d),
                     b_wr.addr.eq(cb_a), b_wr.data.eq(cb_d),
                     t_wr.en.eq(cb_sel[SEL_TABLE]), w_we.eq(cb_sel[SEL_WEIGHT]), b_wr.en.eq(cb_sel[SEL_BIAS])]
        cw_d = Signal(max(A + 1, F + 1, SB, XA, CB, cfg.tau_log_bits, 5), name="cfg_d2", reset_less=True)
        m.d.sync += cw_d.eq(cb_d)

        def cw_en(sel, addr, name):
            return reg(m, cb_sel[sel] & cb_small & (cb_a[:SMALL] == addr), f"cfg_{name}")

        # one plain If per register (no case statements: Verilator lint sees no incomplete cases)
        gregs = ((G_T, T), (G_TAULOG, taulog), (G_IN_WORDS, in_words), (G_MODE, ms), (G_LEAK, leak),
                 (G_MARGIN, margin), (G_MARGIN_NULL, mnull), (G_MIN_STEPS, min_steps), (G_T_MAX, t_max))
        for k, r in gregs if cfg.multistep else gregs[:3]:
            with m.If(cw_en(SEL_GLOBAL, k, f"g{k}")):
                m.d.sync += r.eq(cw_d)
        for i in range(cfg.max_tau):
            with m.If(cw_en(SEL_LUT, i, f"lut{i}")):
                m.d.sync += luts[i].eq(cw_d)
        for i in range(cfg.max_t):
            with m.If(cw_en(SEL_THR, i, f"thr{i}")):
                m.d.sync += thrs[i].eq(cw_d)

        # ---- address muxes of the shared ports
        in_pool = state[S_POOL]
        m.d.comb += [b_rd.addr.eq(baddr), v_rd.addr.eq(cur.vbase + fa), i_rd.addr.eq(fa),
                     k_rd.addr.eq(Mux(in_pool, kaddr3, cur.cbase + fa)),
                     p_rd.addr.eq(Mux(in_fire, fa, x2_pa))]
        clr = Signal(XA)
        # the write data is always the accumulate stage's sum; clearing holds that stage at zero
        # (synchronous resets of its registers, free in FPGA flip-flops) instead of muxing in a 0.
        # The port is registered (a cycle after the sum, from h1_s): the forwarding mux and adder end in
        # a flip-flop, not at the RAM's inputs (the worst paths' endpoints at 124 MHz)
        pw_a, pw_e = Signal.like(p_wr.addr), Signal()
        m.d.comb += [p_wr.data.eq(h1_s), p_wr.addr.eq(pw_a), p_wr.en.eq(pw_e)]
        with m.If(state[S_CLEAR]):  # after reset: potentials back to zero
            m.d.sync += [pw_a.eq(clr), pw_e.eq(1)]
        with m.Elif(in_fire):         # read at F0, cleared at F2 (one address in one cycle would collide)
            m.d.sync += [pw_a.eq(fa1), pw_e.eq(fv1)]
        with m.Else():
            m.d.sync += [pw_a.eq(a_pa), pw_e.eq(a_v)]
        m.d.comb += [v_wr.addr.eq(cur.vbase + fa5), v_wr.data.eq(vst), v_wr.en.eq(in_fire & fv5 & ms)]
        with m.If(in_pool):
            m.d.comb += [k_wr.addr.eq(kaddr6), k_wr.data.eq(pool_cnt), k_wr.en.eq(pwv6 & ms)]
        with m.Else():
            m.d.comb += [k_wr.addr.eq(cur.cbase + fa5), k_wr.data.eq(cnt_new), k_wr.en.eq(in_fire & fv5 & ms & ~is_out)]

        # The FSM waits on registered busy flags: each is the OR of a pipeline's valid bits and of
        # what starts it this cycle, so one cycle late is never too early, and the wide ORs stay out
        # of the next-state logic.
        sc_busy_r = pipe(scatter.busy | scatter.start, "sc_busy_r")
        pe_busy_r = pipe(pe_busy, "pe_busy_r")
        fire_busy_r = pipe(f_busy | f_issue | ex.busy, "fire_busy_r")
        emit_busy_r = pipe(fv1 | f_issue, "emit_busy_r")
        pool_busy_r = pipe(pool_busy | pool.start, "pool_busy_r")

        # FSM: one plain If per state (exclusive), so the Verilog has no incomplete case statements for lint
        running = Signal()
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += self.busy.eq(running)

        def emit_pass(tag, payload, done):
            """One word per cycle from fa = 0 to cur.out_words (payload registered in F2), as result beats."""
            with m.If(fv2):
                m.d.comb += [fw.tag.eq(tag), fw.layer.eq(cur.index), fw.addr.eq(fa2), fw.data.eq(payload),
                             fw_en.eq(1)]
            with m.If(f_more):
                with m.If(credit):
                    m.d.comb += [f_issue.eq(1), fa_inc.eq(1)]
            with m.Elif(~emit_busy_r):  # later stages act only in the fire pass
                done()

        with m.If(state[S_CLEAR]):
            m.d.sync += clr.eq(clr + 1)
            with m.If(clr == NW - 1):
                go(S_CLEAR, S_IDLE)
        with m.If(state[S_IDLE]):
            m.d.comb += self.cfg.ready.eq(1)
            with m.If(self.inp.valid & ~cfg_busy):  # config beats first, and their writes landed
                # cycles counts from this cycle on, so the END beat (S_END2) reports every cycle up to its own
                m.d.sync += [cycles.eq(1), running.eq(1)]
                m.d.comb += li_n.eq(0)
                m.d.comb += count_clear.eq(1)
                m.d.comb += ex.start.eq(1)
                go(S_IDLE, S_PREP)
        with m.If(state[S_PREP]):   # t_a = li = 0
            go(S_PREP, S_PREP2)
        with m.If(state[S_PREP2]):
            m.d.sync += nxt.eq(t_data)
            go(S_PREP2, S_PREP3)
        in_last = Signal()  # the next input word is the last (clr + 1 == in_words, registered)
        in_words2 = reg(m, in_words - 2, "in_words2")   # in_words is static: clr + 2 == in_words without an add
        # the Writer restarts in S_PREP3 and S_LAYER4, entered unconditionally from S_PREP2 and S_LAYER3:
        # a flip-flop of its own (the OR of two state bits in front of its counters' muxes was a late path)
        m.d.sync += writer.restart.eq(state[S_PREP2] | state[S_LAYER3])
        with m.If(state[S_PREP3]):
            m.d.sync += [clr.eq(0), in_last.eq(in_words == 1)]
            go(S_PREP3, S_INPUT)
        with m.If(state[S_INPUT]):
            m.d.comb += [in_input.eq(1), self.inp.ready.eq(1)]
            with m.If(self.inp.valid):
                m.d.sync += [clr.eq(clr + 1), in_last.eq(clr == in_words2)]
                with m.If(in_last):
                    go(S_INPUT, S_LAYER)
        m.d.sync += t_a.eq(Mux(state[S_LAYER], li + 1, li_n))
        with m.If(state[S_LAYER]):  # t_a = li
            go(S_LAYER, S_LAYER2)
        with m.If(state[S_LAYER2]):  # t_a = li + 1
            m.d.sync += cur.eq(t_data)
            go(S_LAYER2, S_LAYER3)
        with m.If(state[S_LAYER3]):
            m.d.sync += n_rec.eq(writer.count)   # the last input word reaches the Writer in S_LAYER2
            m.d.sync += nxt.eq(t_data)
            go(S_LAYER3, S_LAYER4)
        with m.If(state[S_LAYER4]):
            m.d.comb += ex.clear.eq(cur.last)
            m.d.comb += fa_zero.eq(1)
            m.d.sync += [fgo_end.eq(g_one), baddr.eq(cur.bbase), po.eq(0)]
            with m.If(cur.kind == 1):
                m.d.comb += pool.start.eq(1)
                go(S_LAYER4, S_POOL)
            with m.Elif(graded & ~step1):  # input current kept in imem since step 1
                go(S_LAYER4, S_FIRE)
            with m.Else():
                m.d.comb += scatter.start.eq(1)
                go(S_LAYER4, S_SCATTER)
        with m.If(state[S_SCATTER]):
            with m.If(~sc_busy_r):
                go(S_SCATTER, S_DRAIN)
        with m.If(state[S_DRAIN]):     # the last sums written before the fire pass reads them
            with m.If(~pe_busy_r):
                go(S_DRAIN, S_FIRE)
        with m.If(logit_beat):
            m.d.comb += [fw.tag.eq(TAG_LOGIT), fw.layer.eq(cur.index), fw.addr.eq(fa5), fw.data.eq(vsum5), fw_en.eq(1)]
        with m.If(in_fire):
            with m.If(~f_gap_z):
                m.d.sync += [f_gap.eq(f_gap - 1), f_gap_z.eq(f_gap == 1)]
            with m.If(f_more):
                with m.If(credit & f_gap_z):
                    m.d.comb += [f_issue.eq(1), fa_inc.eq(1), f_adv_n.eq(1)]
                    # the exit controller walks an output word in LANE_CYCLES * P cycles; a split bank
                    # takes 2 a word
                    gap = Mux(is_out, LANE_CYCLES * P - 1, cfg.fire_split - 1)
                    m.d.sync += [f_gap.eq(gap), f_gap_z.eq(gap == 0)]
            with m.Elif(~fire_busy_r):
                with m.If(cur.last):
                    go(S_FIRE, S_DECIDE)
                with m.Else():
                    m.d.comb += li_n.eq(li + 1)
                    go(S_FIRE, S_LAYER)
        m.d.comb += pool.step.eq(pool_st & credit_pw)   # = in_pool & credit
        with m.If(in_pool):
            with m.If(pv3 & pl3):
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
                with m.Elif(ex.exit):
                    m.d.comb += fa_zero.eq(1)
                    go(S_DECIDE, S_OUTE)
                with m.Else():
                    m.d.comb += [ex.advance.eq(1), li_n.eq(0)]
                    go(S_DECIDE, S_LAYER)
        # the multistep read-out passes exist only in a build with the multistep datapath: in a ttfs-only
        # build their states were never entered, but Yosys kept them, and their beat selects reached the
        # result FIFO's write register (69 of the late endpoints at 134.7 MHz)
        if cfg.multistep:
            self._readout(m, state, go, li, li_n, cur, t_data, fa_zero, emit_pass, v2, k2)
        with m.If(state[S_END]):
            with m.If(credit):  # not w_rdy: the write lands a cycle later, behind any write now in flight
                go(S_END, S_END2)
        with m.If(state[S_END2]):  # the END beat, selected by a state flip-flop alone (no credit, no adder)
            m.d.comb += [fw.tag.eq(TAG_END), fw_en.eq(1), fw.data.eq(Cat(ex.pred, cycles, sops, events, ex.step[:16]))]
            m.d.sync += running.eq(0)
            go(S_END2, S_IDLE)
        return m

    @staticmethod
    def _readout(m, state, go, li, li_n, cur, t_data, fa_zero, emit_pass, v2, k2):
        """Multistep read-out after the exit step: the output layer's O (from vmem), then every spiking or
        pooling layer's spike counters (from kmem), as result beats."""
        with m.If(state[S_OUTE]):  # O at the exit step, from vmem
            def to_counts():
                m.d.comb += li_n.eq(0)
                go(S_OUTE, S_CNTL)
            emit_pass(TAG_LOGIT, v2, to_counts)
        with m.If(state[S_CNTL]):  # t_a = li
            go(S_CNTL, S_CNTL2)
        with m.If(state[S_CNTL2]):
            m.d.sync += cur.eq(t_data)
            m.d.comb += fa_zero.eq(1)
            go(S_CNTL2, S_CNTL3)
        with m.If(state[S_CNTL3]):
            with m.If(cur.last):
                go(S_CNTL3, S_END)
            with m.Else():
                go(S_CNTL3, S_CNTE)
        with m.If(state[S_CNTE]):  # spike counters of one spiking or pooling layer
            def next_layer():
                m.d.comb += li_n.eq(li + 1)
                go(S_CNTE, S_CNTL)
            emit_pass(TAG_COUNT, k2, next_layer)
