"""The LogSpike processor: a programmable, event-driven, multiplier-free ttfs SNN core.

Phases of one inference (one layer-table entry per non-flatten layer):

  INPUT   input words (P codes each, natural layout) -> Writer -> code buffer +
          event list (non-silent words only)
  SCATTER (weighted layers) Scatter emits one (event, output group) op per
          cycle; 2-stage PE pipeline: cycle 1 reads the weight word and the
          potential word (read port transparent to the write port, so
          back-to-back hits on one word need no extra forwarding), cycle 2
          computes P shift-add contributions and writes the sums back.
  FIRE    one potential word per cycle: V + bias -> parallel comparator bank
          -> P codes -> Writer (next event list) and a SPIKE result beat; the
          potential word is cleared in the same pass (bias is folded in here,
          so no bias-init pass is needed).
  EMIT    output layer: V + bias -> LOGIT beats and a running argmax, then an
          END beat.
  POOL    k*k reads per pooled word, lane-wise min -> Writer + SPIKE beat.

Memories: potential (words of P x A, one layer at a time), code and event
buffers (two banks, ping-pong by layer parity), weights (P x W per word),
biases (P x A), layer table. Config registers and memories are not reset:
a reset aborts the inference (and clears the potentials) but keeps the
loaded network.

Config stream beat: {sel, addr, data}. sel 0 globals (addr 0 T, 1 log2 tau,
2 input words), 1 lut[addr], 2 thresholds[addr], 3 layer table[addr],
4 weight word[addr], 5 bias word[addr]. Accepted only while idle.

Result stream beat {tag, layer, addr, data}: tag 0 SPIKE (layer index, word
address, data = P codes), tag 1 LOGIT (word address, data = P potentials),
tag 2 END (data = pred[16] | cycles[32] | sops[32] | events[32]).
`hw/image.py` writes and parses both formats.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import Config, ubits
from .firing import FiringUnit
from .sequencer import PoolWalk, Scatter, Writer, entry_layout, record_layout, widths
from .shiftadd import lane_contrib

TAG_SPIKE, TAG_LOGIT, TAG_END = 0, 1, 2
SEL_GLOBAL, SEL_LUT, SEL_THR, SEL_TABLE, SEL_WEIGHT, SEL_BIAS = range(6)
RES_FIFO_DEPTH = 8


def weight_lane_layout(cfg):
    return data.StructLayout({"mag": cfg.weight_bits - 1, "sign": 1})


def cfg_data_bits(cfg: Config) -> int:
    P = cfg.lanes
    return max(entry_layout(cfg).size, P * cfg.weight_bits, P * cfg.acc_bits, cfg.acc_bits, cfg.frac_bits + 1, 32)


def cfg_layout(cfg: Config):
    return data.StructLayout({"data": cfg_data_bits(cfg), "addr": 16, "sel": 3})


def res_data_bits(cfg: Config) -> int:
    return max(cfg.lanes * cfg.code_bits, cfg.lanes * cfg.acc_bits, 112)


def res_layout(cfg: Config):
    return data.StructLayout({"data": res_data_bits(cfg), "addr": widths(cfg)[0], "layer": 8, "tag": 2})


class Processor(wiring.Component):
    def __init__(self, cfg: Config, image: dict | None = None):
        """image: optional baked network (from hw.image.bake), the reset/init contents."""
        self.conf, self.image = cfg, image
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(cfg))),
            "inp": In(stream.Signature(data.ArrayLayout(cfg.code_bits, cfg.lanes))),
            "res": Out(stream.Signature(res_layout(cfg))),
            "cycles": Out(32), "sops": Out(32), "events": Out(32), "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg, img = self.conf, self.image or {}
        P, A, F, CB = cfg.lanes, cfg.acc_bits, cfg.frac_bits, cfg.code_bits
        XA, WA = widths(cfg)
        NW = cfg.words
        m = Module()
        glob = img.get("globals", {})

        # ---- config registers (reset_less: a reset keeps the loaded network)
        T = Signal(CB, init=glob.get("T", 0), reset_less=True)
        taulog = Signal(cfg.tau_log_bits, init=glob.get("taulog", 0), reset_less=True)
        in_words = Signal(XA, init=glob.get("in_words", 0), reset_less=True)
        lut_init = img.get("lut", [0] * cfg.max_tau)
        thr_init = img.get("thr", [-(1 << (A - 1))] * cfg.max_t)
        luts = Array([Signal(F + 1, init=lut_init[i], reset_less=True, name=f"lut{i}") for i in range(cfg.max_tau)])
        thrs = Array([Signal(signed(A), init=thr_init[i], reset_less=True, name=f"thr{i}") for i in range(cfg.max_t)])

        # ---- memories
        ent_l, rec_l = entry_layout(cfg), record_layout(cfg)
        wl = data.ArrayLayout(weight_lane_layout(cfg), P)
        vl = data.ArrayLayout(signed(A), P)
        cl = data.ArrayLayout(CB, P)
        m.submodules.table = table = Memory(shape=ent_l.size, depth=cfg.max_layers, init=img.get("table", []))
        m.submodules.wmem = wmem = Memory(shape=wl.size, depth=cfg.max_weight_words, init=img.get("weights", []))
        m.submodules.bmem = bmem = Memory(shape=vl.size, depth=cfg.max_bias_words, init=img.get("bias", []))
        m.submodules.pmem = pmem = Memory(shape=vl.size, depth=NW, init=[])
        m.submodules.cmem = cmem = Memory(shape=cl.size, depth=2 * NW, init=[])
        m.submodules.emem = emem = Memory(shape=rec_l.size, depth=2 * NW, init=[])
        t_rd, t_wr = table.read_port(), table.write_port()
        w_rd, w_wr = wmem.read_port(), wmem.write_port()
        b_rd, b_wr = bmem.read_port(), bmem.write_port()
        p_wr = pmem.write_port()
        p_rd = pmem.read_port(transparent_for=(p_wr,))
        c_rd, c_wr = cmem.read_port(), cmem.write_port()
        e_rd, e_wr = emem.read_port(), emem.write_port()
        t_data = data.View(ent_l, t_rd.data)
        w_data = data.View(wl, w_rd.data)
        b_data = data.View(vl, b_rd.data)
        p_data = data.View(vl, p_rd.data)
        c_data = data.View(cl, c_rd.data)

        cur = Signal(ent_l)   # the layer being computed
        nxt = Signal(ent_l)   # the layer that consumes what the Writer produces
        li = Signal(range(cfg.max_layers + 2))
        rbank = li[0]

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=res_layout(cfg).size, depth=RES_FIFO_DEPTH)
        fw = data.View(res_layout(cfg), fifo.w_data)
        m.d.comb += [self.res.payload.eq(fifo.r_data), self.res.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.res.ready)]
        credit = fifo.level <= RES_FIFO_DEPTH - 3

        writer = Writer(m, cfg, T, nxt)
        scatter = Scatter(m, cfg, T, cur)
        pool = PoolWalk(m, cfg, cur)
        m.submodules.fire = fire = FiringUnit(cfg)
        for t in range(cfg.max_t):
            m.d.comb += fire.thr[t].eq(thrs[t])

        cycles, sops, events = Signal(32), Signal(32), Signal(32)
        m.d.comb += [self.cycles.eq(cycles), self.sops.eq(sops), self.events.eq(events)]
        n_rec = Signal(XA)
        m.d.comb += scatter.n_rec.eq(n_rec)

        # ---- writer buffer writes
        in_input = Signal()
        wbank = Mux(in_input, 0, ~rbank)
        m.d.comb += [
            c_wr.addr.eq(Cat(writer.addr[:len(c_wr.addr) - 1], wbank)), c_wr.data.eq(writer.codes), c_wr.en.eq(writer.valid),
            e_wr.addr.eq(Cat(writer.count[:len(e_wr.addr) - 1], wbank)), e_wr.data.eq(writer.rec),
            e_wr.en.eq(writer.valid & writer.nonsilent),
            e_rd.addr.eq(Cat(scatter.raddr[:len(e_rd.addr) - 1], rbank)), scatter.rdata.eq(e_rd.data),
        ]
        spike_beat = Signal()
        with m.If(spike_beat):
            m.d.comb += [fw.tag.eq(TAG_SPIKE), fw.layer.eq(cur.index), fw.addr.eq(writer.addr),
                         fw.data.eq(writer.codes), fifo.w_en.eq(1)]

        # ---- scatter -> PE pipeline (stage 1 = data arrives, compute, write back)
        s1_valid, s1_paddr, s1_t = Signal(), Signal(XA), Signal(CB)
        m.d.sync += [s1_valid.eq(scatter.op), s1_paddr.eq(scatter.paddr), s1_t.eq(scatter.t)]
        sums = Signal(vl)
        for l in range(P):
            c = lane_contrib(m, cfg, s1_t, s1_t >= T, w_data[l].sign, w_data[l].mag, cur.E, taulog, luts, name=f"pe{l}")
            m.d.comb += sums[l].eq(p_data[l] + c)
        m.d.sync += [sops.eq(sops + scatter.op), events.eq(events + scatter.event)]

        # ---- fire / emit pass
        fa, fgo = Signal(XA), Signal(XA)
        f_issue = Signal()
        f1_valid, f1_addr = Signal(), Signal(XA)
        m.d.sync += [f1_valid.eq(f_issue), f1_addr.eq(fa)]
        vsum = Signal(vl)
        for l in range(P):
            m.d.comb += [vsum[l].eq(p_data[l] + b_data[l]), fire.v[l].eq(vsum[l])]
        m.d.comb += b_rd.addr.eq(cur.bbase + fgo)
        best_v, best_i, have = Signal(signed(A)), Signal(16), Signal()
        # argmax chain over the lanes of one word, lowest index wins ties
        bv, bi, bh = best_v, best_i, have
        for l in range(P):
            ok = (f1_addr + 1 != cur.out_words) | cur.last_mask[l]
            take = ok & (~bh | (vsum[l] > bv))
            nv, ni, nh = Signal(signed(A), name=f"am_v{l}"), Signal(16, name=f"am_i{l}"), Signal(name=f"am_h{l}")
            m.d.comb += [nv.eq(Mux(take, vsum[l], bv)), nh.eq(bh | ok),
                         ni.eq(Mux(take, Cat(Const(l, cfg.lane_bits), f1_addr)[:16] if cfg.lane_bits else f1_addr[:16], bi))]
            bv, bi, bh = nv, ni, nh

        # ---- pool pass
        p1_valid, p1_first, p1_last = Signal(), Signal(), Signal()
        pacc = Signal(cl)
        pmin = Signal(cl)
        for l in range(P):
            m.d.comb += pmin[l].eq(Mux(p1_first | (c_data[l] < pacc[l]), c_data[l], pacc[l]))
        m.d.comb += c_rd.addr.eq(Cat(pool.rd[:len(c_rd.addr) - 1], rbank))
        m.d.sync += [p1_valid.eq(pool.step & pool.busy), p1_first.eq(pool.first), p1_last.eq(pool.last)]
        with m.If(p1_valid):
            m.d.sync += pacc.eq(pmin)

        # ---- config stream
        cp = self.cfg.payload
        m.d.comb += [t_wr.addr.eq(cp.addr), t_wr.data.eq(cp.data), w_wr.addr.eq(cp.addr), w_wr.data.eq(cp.data),
                     b_wr.addr.eq(cp.addr), b_wr.data.eq(cp.data)]
        with m.If(self.cfg.valid & self.cfg.ready):
            with m.Switch(cp.sel):
                with m.Case(SEL_GLOBAL):
                    with m.Switch(cp.addr):
                        with m.Case(0):
                            m.d.sync += T.eq(cp.data)
                        with m.Case(1):
                            m.d.sync += taulog.eq(cp.data)
                        with m.Case(2):
                            m.d.sync += in_words.eq(cp.data)
                with m.Case(SEL_LUT):
                    m.d.sync += luts[cp.addr].eq(cp.data)
                with m.Case(SEL_THR):
                    m.d.sync += thrs[cp.addr].eq(cp.data)
                with m.Case(SEL_TABLE):
                    m.d.comb += t_wr.en.eq(1)
                with m.Case(SEL_WEIGHT):
                    m.d.comb += w_wr.en.eq(1)
                with m.Case(SEL_BIAS):
                    m.d.comb += b_wr.en.eq(1)

        # ---- address muxes of the shared potential / weight ports
        m.d.comb += [w_rd.addr.eq(scatter.waddr), p_rd.addr.eq(scatter.paddr)]
        with m.If(s1_valid):
            m.d.comb += [p_wr.addr.eq(s1_paddr), p_wr.data.eq(sums), p_wr.en.eq(1)]
        with m.If(f1_valid):  # read-and-clear
            m.d.comb += [p_wr.addr.eq(f1_addr), p_wr.data.eq(0), p_wr.en.eq(1)]

        running = Signal()
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += self.busy.eq(running)
        clr = Signal(XA)

        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):  # after reset: potentials back to zero
                m.d.comb += [p_wr.addr.eq(clr), p_wr.data.eq(0), p_wr.en.eq(1)]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == NW - 1):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += self.cfg.ready.eq(1)
                with m.If(self.inp.valid):
                    m.d.sync += [cycles.eq(0), sops.eq(0), events.eq(0), running.eq(1), li.eq(0)]
                    m.next = "PREP"
            with m.State("PREP"):
                m.d.comb += t_rd.addr.eq(0)
                m.next = "PREP2"
            with m.State("PREP2"):
                m.d.sync += nxt.eq(t_data)
                m.next = "PREP3"
            with m.State("PREP3"):
                m.d.comb += writer.restart.eq(1)
                m.d.sync += clr.eq(0)
                m.next = "INPUT"
            with m.State("INPUT"):
                m.d.comb += [in_input.eq(1), self.inp.ready.eq(1), writer.codes.eq(self.inp.payload),
                             writer.valid.eq(self.inp.valid)]
                with m.If(self.inp.valid):
                    m.d.sync += clr.eq(clr + 1)
                    with m.If(clr + 1 == in_words):
                        m.next = "LAYER"
            with m.State("LAYER"):
                m.d.comb += t_rd.addr.eq(li)
                m.d.sync += n_rec.eq(writer.count)
                m.next = "LAYER2"
            with m.State("LAYER2"):
                m.d.comb += t_rd.addr.eq(li + 1)
                m.d.sync += cur.eq(t_data)
                m.next = "LAYER3"
            with m.State("LAYER3"):
                m.d.sync += nxt.eq(t_data)
                m.next = "LAYER4"
            with m.State("LAYER4"):
                m.d.comb += writer.restart.eq(1)
                m.d.sync += [fa.eq(0), fgo.eq(0), best_v.eq(0), best_i.eq(0), have.eq(0)]
                with m.If(cur.kind == 1):
                    m.d.comb += pool.start.eq(1)
                    m.next = "POOL"
                with m.Else():
                    m.d.comb += scatter.start.eq(1)
                    m.next = "SCATTER"
            with m.State("SCATTER"):
                with m.If(~scatter.busy):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.next = "FIRE"
            with m.State("FIRE"):
                m.d.comb += p_rd.addr.eq(fa)
                with m.If(f1_valid):
                    with m.If(cur.last):
                        m.d.comb += [fw.tag.eq(TAG_LOGIT), fw.layer.eq(cur.index), fw.addr.eq(f1_addr),
                                     fw.data.eq(vsum), fifo.w_en.eq(1)]
                        m.d.sync += [best_v.eq(bv), best_i.eq(bi), have.eq(bh)]
                    with m.Else():
                        m.d.comb += [writer.valid.eq(1), writer.codes.eq(fire.codes), spike_beat.eq(1)]
                with m.If(fa != cur.out_words):
                    with m.If(credit):
                        m.d.comb += f_issue.eq(1)
                        m.d.sync += [fa.eq(fa + 1), fgo.eq(Mux(fgo + 1 == cur.gout, 0, fgo + 1))]
                with m.Elif(~f1_valid):
                    with m.If(cur.last):
                        m.next = "END"
                    with m.Else():
                        m.d.sync += li.eq(li + 1)
                        m.next = "LAYER"
            with m.State("POOL"):
                m.d.comb += pool.step.eq(credit)
                with m.If(p1_valid & p1_last):
                    m.d.comb += [writer.valid.eq(1), writer.codes.eq(pmin), spike_beat.eq(1)]
                with m.If(~pool.busy & ~p1_valid):
                    m.d.sync += li.eq(li + 1)
                    m.next = "LAYER"
            with m.State("END"):
                with m.If(fifo.w_rdy):
                    m.d.comb += [fw.tag.eq(TAG_END), fw.data.eq(Cat(best_i, (cycles + 1)[:32], sops, events)), fifo.w_en.eq(1)]
                    m.d.sync += running.eq(0)
                    m.next = "IDLE"
        return m
