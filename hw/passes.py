"""The fire and pool passes: the pipelines that turn a layer's potentials (fire) or its input codes (pool)
into the words the Writer takes, and the multistep state they write back.

PoolMin: the PoolWalk's reads (stage 3 on) -> the code word from the buffer's output register (stage 4)
-> registered once more (5) -> lane-wise min over the window (ttfs: the earliest code; multistep: spike
code 0 < silent 1, so the min is an OR) -> the pooled word and its non-silent lanes (6). Multistep: the
pooled word's spike counts, read from the count memory at stage 3 and incremented where it spikes.
"""
from __future__ import annotations

from functools import partial

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Config, ubits, widths
from .firing import FiringUnit
from .protocol import entry_layout
from .sequencer import copies, ram_q, reg


def nonsilent(codes, silent, lanes: int):
    """The lanes of a word of codes that differ from the silent code."""
    return Cat(*[codes[l] != silent for l in range(lanes)])


class PoolMin(wiring.Component):
    """walk_*: the PoolWalk's read marks (the code buffer is read at that address the same cycle, so
    `codes` is its read data a cycle later). count_q: the count memory's output register for the word
    read at `count_addr_in` two cycles before. Out: word / word_ns / word_valid for the Writer, count /
    count_addr for the count memory's write (multistep), window_done when a window's last read enters the
    pipeline, busy while any stage holds a read."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        P = cfg.lanes
        cl = data.ArrayLayout(cfg.sym_bits, P)
        kl = data.ArrayLayout(cfg.count_bits, P)
        CA = ubits(cfg.max_count_words) + 1
        super().__init__({
            "walk_valid": In(1), "walk_first": In(1), "walk_last": In(1),
            "codes": In(cl), "silent": In(cfg.code_bits), "count_q": In(kl), "count_addr_in": In(CA),
            "step1": In(1),
            "word_valid": Out(1), "word": Out(cl), "word_ns": Out(P), "count": Out(kl), "count_addr": Out(CA),
            "window_done": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.conf
        P = cfg.lanes
        cl = data.ArrayLayout(cfg.sym_bits, P)
        kl = data.ArrayLayout(cfg.count_bits, P)
        m = Module()

        pipe = partial(reg, m)   # (sig, name): sig one clock later

        pv3, pf3, pl3 = pipe(self.walk_valid, "pl_v3"), pipe(self.walk_first, "pl_f3"), pipe(self.walk_last, "pl_l3")
        pv4, pf4, pl4, cd4 = pipe(pv3, "pl_v4"), pipe(pf3, "pl_f4"), pipe(pl3, "pl_l4"), ram_q(m, self.codes, "pl_cd4")
        # the codes once more registered (stage 5) before the lane-wise min: from the block RAM's output
        # register straight into 16 lanes' compares and muxes is a long route
        pv5, pf5, pl5, cd5 = pipe(pv4, "pl_v5"), pipe(pf4, "pl_f5"), pipe(pl4, "pl_l5"), pipe(cd4, "pl_cd5")
        pacc, pmin = Signal(cl), Signal(cl)
        for l in range(P):
            m.d.comb += pmin[l].eq(Mux(pf5 | (cd5[l] < pacc[l]), cd5[l], pacc[l]))
        # the pooled word's non-silent lanes, kept beside the min: min < T exactly when some code of the
        # window is not T (codes are at most T; multistep: T = 1, the silent spike), so it is an OR of
        # per-read compares and no compare follows the min (that compare into the Writer was a late path)
        pns, pns_n = Signal(P), Signal(P)
        m.d.comb += pns_n.eq(Mux(pf5, 0, pns) | nonsilent(cd5, self.silent, P))
        with m.If(pv5):
            m.d.sync += [pacc.eq(pmin), pns.eq(pns_n)]
        pwv6, pw6, pns6 = pipe(pv5 & pl5, "pl_v6"), pipe(pmin, "pl_w6"), pipe(pns_n, "pl_ns6")
        kaddr6 = pipe(pipe(pipe(self.count_addr_in, "pl_ka4"), "pl_ka5"), "pl_ka6")
        pk6 = pipe(self.count_q, "pl_k6")   # the count word read at stage 3 (the fire pass's distance), its data at 5
        pool_cnt = Signal(kl)
        for l in range(P):
            m.d.comb += pool_cnt[l].eq(Mux(self.step1, 0, pk6[l]) + (pw6[l] == 0))
        m.d.comb += [self.word_valid.eq(pwv6), self.word.eq(pw6), self.word_ns.eq(pns6), self.count.eq(pool_cnt),
                     self.count_addr.eq(kaddr6), self.window_done.eq(pv3 & pl3), self.busy.eq(pv3 | pv4 | pv5 | pwv6)]
        return m


class FirePass(wiring.Component):
    """The fire (and emit) pass over one layer's output words, F0 to F5 (to F7 with a split bank):

    F0 issue: `issue` reads word `addr` (the potential memory at addr, the bias word at `bias_addr`,
       multistep state); F1 the data arrives (and the potential word is cleared behind it, from f1_*);
    F2 registered (the RAMs' output registers; the potential word is the PE's pmem_q);
    F3 V + bias; F4 the comparator bank (ttfs) or leak and drive (multistep); F5 the codes or V_new;
    then the codes to the Writer (word*), the output layer's words to the exit controller (exit_*) and,
    in ttfs, as logits (logit_beat, logits). emit passes (the multistep read-out) use the same issue and
    address with their payload at F2 (f2_*, vmem_q, count_q).

    The controller says which next address (addr_zero, addr_inc, else hold) and `more` is registered
    beside it (addr != out_words), so the issue decision waits on no compare. bias_advance steps the bias
    word to the next group; layer_start loads the first group's."""

    def __init__(self, cfg: Config):
        self.conf = cfg
        P, A, XA = cfg.lanes, cfg.acc_bits, widths(cfg)[0]
        vl = data.ArrayLayout(signed(A), P)
        cl = data.ArrayLayout(cfg.sym_bits, P)
        kl = data.ArrayLayout(cfg.count_bits, P)
        super().__init__({
            "ent": In(entry_layout(cfg)),
            "layer_start": In(1), "addr_zero": In(1), "addr_inc": In(1), "issue": In(1), "bias_advance": In(1),
            "firing": In(1),        # the fire pass (not an emit pass): the state writes and exit words
            "mode_ms": In(1), "first": In(1), "step1": In(1), "silent": In(cfg.code_bits),
            "thr": In(data.ArrayLayout(cfg.thr_width, cfg.max_t)),
            "pmem_q": In(vl), "bias": In(vl), "vmem_data": In(vl), "imem_data": In(vl), "count_q": In(kl),
            "addr": Out(XA), "more": Out(1), "bias_addr": Out(ubits(cfg.max_bias_words)),
            "f1_valid": Out(1), "f1_addr": Out(XA), "f2_valid": Out(1), "f2_addr": Out(XA),
            "f5_valid": Out(1), "f5_addr": Out(XA), "vmem_q": Out(vl),
            "state_v": Out(vl), "state_count": Out(kl),
            "imem_waddr": Out(XA), "imem_wdata": Out(vl), "imem_we": Out(1),
            "exit_v": Out(vl), "exit_mask": Out(P), "exit_addr": Out(XA), "exit_valid": Out(1),
            "logits": Out(vl), "logit_beat": Out(1),
            "word_valid": Out(1), "word": Out(cl), "word_ns": Out(P), "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.conf
        P, F, XA = cfg.lanes, cfg.frac_bits, widths(cfg)[0]
        vl = data.ArrayLayout(signed(cfg.acc_bits), P)
        cl = data.ArrayLayout(cfg.sym_bits, P)
        kl = data.ArrayLayout(cfg.count_bits, P)
        m = Module()
        ent, ms, first, step1 = self.ent, self.mode_ms, self.first, self.step1
        # a spiking layer's neurons (multistep builds): leak shift, reset to v_reset or subtract 2^F
        leak, to_value, v_reset = (ent.leak, ent.reset_to_value, ent.v_reset) if cfg.multistep else (0, 0, 0)

        pipe = partial(reg, m)   # (sig, name): sig one clock later

        NG = max(1, P // 4)   # register copies: one per group of four lanes
        m.submodules.fire = fire = FiringUnit(cfg, latency=2 * cfg.fire_split, split=cfg.fire_split,
                                              valid_copies=NG if cfg.fire_split == 2 else 1)
        m.d.comb += [fire.thr[t].eq(self.thr[t]) for t in range(cfg.max_t)]
        fa = self.addr
        # the bias word of the group being issued: baddr = cur.bbase + (its output group), kept as a register
        # (the add before the bias LUT RAM's read was late); bias_last_group: this is the last group (baddr + 1 ==
        # bbase + gout), registered with baddr, so no compare precedes its mux
        baddr = self.bias_addr
        bias_last_group = Signal()
        # per-layer constants for it (cur is loaded two states before the fire pass): gout == 1, bbase + gout - 2
        gout_is1, bias_before_last = reg(m, ent.gout == 1, "f_gout_is1"), reg(m, ent.bbase + ent.gout - 2, "f_bias_before_last")
        # f_more = (fa != cur.out_words) is registered, so the issue decision (fanning out to the pipeline)
        # waits on no compare; the FSM only says which next fa (fa_inc: fa + 1, fa_zero: 0, else fa) and the
        # three candidates' compares run beside it (a compare after the FSM's mux would be a long path)
        fa_n, f_more, fa_inc, fa_zero = Signal(XA), self.more, self.addr_inc, self.addr_zero
        m.d.comb += fa_n.eq(Mux(fa_zero, 0, Mux(fa_inc, fa + 1, fa)))
        # fa + 1 != out_words as fa != out_words - 1 (out_words_minus1, a per-layer register: cur is loaded at least two
        # cycles before the first fa_inc of a pass), so no carry chain precedes the compare
        out_words_minus1 = reg(m, ent.out_words - 1, "f_out_words_minus1")
        m.d.sync += [fa.eq(fa_n), f_more.eq(Mux(fa_zero, ent.out_words != 0,
                                                Mux(fa_inc, fa != out_words_minus1, fa != ent.out_words)))]
        f_issue, in_fire = self.issue, self.firing
        # baddr and bias_last_group step to the next group after a fire issue. Where issues are two cycles apart or
        # more (a split bank), they step a cycle after it, from a flip-flop (bias_step) set by the issue: from the
        # issue decision itself (four flags, fanning out to the pipeline) to these registers at the bias LUT
        # RAM was a late path at 16 lanes. An unsplit bank can issue back to back, so it steps at the issue.
        bias_step_n = self.bias_advance
        bias_step = reg(m, bias_step_n, "f_bias_step") if cfg.fire_split > 1 else bias_step_n
        with m.If(bias_step):
            m.d.sync += [bias_last_group.eq(Mux(bias_last_group, gout_is1, baddr == bias_before_last)),
                         baddr.eq(Mux(bias_last_group, ent.bbase, baddr + 1))]
        with m.If(self.layer_start):   # the first group's bias word
            m.d.sync += [bias_last_group.eq(gout_is1), baddr.eq(ent.bbase)]
        f1_valid, f1_addr = pipe(f_issue, "f_v1"), pipe(fa, "f_a1")
        f2_valid, f2_addr = pipe(f1_valid, "f_v2"), pipe(f1_addr, "f_a2")
        p2, k2 = self.pmem_q, self.count_q
        b2, v2, i2 = (ram_q(m, x, f"f_{n}2") for x, n in ((self.bias, "b"), (self.vmem_data, "v"), (self.imem_data, "i")))
        is_out = ent.last
        vsum = Signal(vl)
        vold = Signal(vl)
        for l in range(P):
            m.d.comb += [vsum[l].eq(p2[l] + b2[l]), vold[l].eq(Mux(step1, 0, v2[l]))]
        f3_valid, f3_addr, vsum3, vold3, i3, k3 = (pipe(x, f"f_{n}3") for x, n in (
            (f2_valid, "v"), (f2_addr, "a"), (vsum, "vsum"), (vold, "vold"), (i2, "i"), (k2, "k")))
        # a split bank takes valid as one copy of f3_valid per lane group; an unsplit bank does not use it
        fire_valid = Cat(*copies(m, f2_valid, "f_v3", len(fire.valid))) if cfg.fire_split == 2 else f3_valid
        m.d.comb += [fire.v.eq(vsum3), fire.valid.eq(fire_valid)]
        vleak, drive = Signal(vl), Signal(vl)
        for l in range(P):
            m.d.comb += [vleak[l].eq(Mux((leak != 0) & ~is_out, vold3[l] - (vold3[l] >> leak), vold3[l])),
                         drive[l].eq(Mux(first & ~step1, i3[l], vsum3[l]))]
        m.d.comb += [self.imem_waddr.eq(f3_addr), self.imem_wdata.eq(vsum3), self.imem_we.eq(in_fire & f3_valid & ms & first & step1)]
        f4_valid, f4_addr, vsum4, vleak4, drive4, k4 = (pipe(x, f"f_{n}4") for x, n in (
            (f3_valid, "v"), (f3_addr, "a"), (vsum3, "vsum"), (vleak, "vleak"), (drive, "drive"), (k3, "k")))
        vnew = Signal(vl)
        for l in range(P):
            m.d.comb += vnew[l].eq(vleak4[l] + drive4[l])
        f5_valid, f5_addr, vsum5, vnew5, k5 = (pipe(x, f"f_{n}5") for x, n in (
            (f4_valid, "v"), (f4_addr, "a"), (vsum4, "vsum"), (vnew, "vnew"), (k4, "k")))
        # a ttfs output word's logits beat, as a flag of its own from F4 (the FSM stays in S_FIRE while a
        # word is in flight): one flip-flop selects the 368-bit word into the result FIFO's register
        logit_beat = pipe(in_fire & f4_valid & is_out & ~ms, "f_logit5")
        spk = Signal(P)
        vst = Signal(vl)
        cnt_new = Signal(kl)
        for l in range(P):
            m.d.comb += [
                spk[l].eq(~is_out & (vnew5[l] >= (1 << F))),
                vst[l].eq(Mux(spk[l], Mux(to_value, v_reset, vnew5[l] - (1 << F)), vnew5[l])),
                cnt_new[l].eq(Mux(step1, 0, k5[l]) + spk[l]),
            ]
        # exit controller / argmax input: the output layer's words
        # its valid bit and the last word's test are registered from F4 (the word's load enable fans out to
        # P x A flip-flops)
        ex_v5, ex_last5 = pipe(in_fire & f4_valid & is_out, "ex_v5"), pipe(f4_addr == out_words_minus1, "ex_last5")
        for l in range(P):
            m.d.comb += [self.exit_v[l].eq(Mux(ms, vnew5[l], vsum5[l])), self.exit_mask[l].eq(~ex_last5 | ent.last_mask[l])]
        m.d.comb += [self.exit_addr.eq(f5_addr), self.exit_valid.eq(ex_v5)]
        # the codes of a word come out of the firing unit at F(3 + latency): F5, or F7 with a split bank
        fc_v, ms_codes, late = f5_valid, ~spk, []
        for k in range(6, 4 + fire.latency):
            fc_v, ms_codes = pipe(fc_v, f"f_v{k}"), pipe(ms_codes, f"f_spk{k}")
            late.append(fc_v)
        fire_codes = Signal(cl)  # ttfs codes or multistep spikes (code 0 = spike, 1 = silent)
        for l in range(P):
            m.d.comb += fire_codes[l].eq(Mux(ms, ms_codes[l], fire.codes[l]))
        fw_v, fw_codes = pipe(fc_v & ~is_out, "f_wv"), pipe(fire_codes, "f_wcodes")   # to the Writer
        fw_ns = pipe(nonsilent(fire_codes, self.silent, P), "f_wns")   # its non-silent lanes, compared a stage early
        f_busy = f1_valid | f2_valid | f3_valid | f4_valid | f5_valid | Cat(*late).any() | fw_v
        m.d.comb += [self.f1_valid.eq(f1_valid), self.f1_addr.eq(f1_addr), self.f2_valid.eq(f2_valid), self.f2_addr.eq(f2_addr),
                     self.f5_valid.eq(f5_valid), self.f5_addr.eq(f5_addr), self.vmem_q.eq(v2), self.state_v.eq(vst),
                     self.state_count.eq(cnt_new), self.logits.eq(vsum5), self.logit_beat.eq(logit_beat),
                     self.word_valid.eq(fw_v), self.word.eq(fw_codes), self.word_ns.eq(fw_ns), self.busy.eq(f_busy)]
        return m
