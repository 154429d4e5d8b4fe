"""The config decoder: config-stream beats (hw/protocol.py) into the memories' write ports and the global
registers, LUT and threshold table.

A beat is registered as it is taken (its sel decoded one-hot, its address's upper bits tested for zero);
the memories write from those registers a cycle after the beat (banked weights a cycle later), the
registers a cycle later still, from a flag per register decoded from the registered beat. Decoding the
stream directly into the ~450 register enables and the LUT-RAM write enables would be 5 LUT levels
behind the FSM's idle bit. `busy` covers the beat taken this cycle and the two before it, so an
inference that starts when it is low sees every write.

The registers have no reset (a reset keeps the loaded network); a baked image gives their initial values.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import CFG_ADDR_BITS, XADDR_BITS, Config, clog2, ubits, widths
from .protocol import EXTERNAL_GLOBAL_FIELDS, Global, Sel, cfg_data_bits, cfg_layout, global_fields
from .sequencer import reg


def globals_layout(cfg: Config) -> data.StructLayout:
    """The global registers, one field per Global address."""
    ext = {"xbase": XADDR_BITS, "xbias": ubits(cfg.max_bias_words), "xwstart": XADDR_BITS} if cfg.external else {}
    return data.StructLayout({
        "T": cfg.code_bits, "taulog": cfg.tau_log_bits, "in_words": widths(cfg)[0], "mode": 1,
        "margin": cfg.acc_bits + 1, "margin_null": 1, "min_steps": cfg.step_bits, "t_max": cfg.step_bits, **ext,
    })


def small_addr_bits(cfg: Config) -> int:
    """Address bits of the register selects (globals, LUT entries, thresholds): the rest must be zero."""
    return max(4, clog2(max(cfg.max_tau, cfg.max_t, len(Global))))


class ConfigDecoder(wiring.Component):
    """cfg beats are taken while `accept`; writes come out as one address / data pair with a write enable per
    memory, and the registers as `regs`, `lut` and `thr`. A build without the multistep datapath has mode
    ttfs wired in and only T, taulog and in_words writable."""

    def __init__(self, cfg: Config, image: dict | None = None):
        self.conf, self.image = cfg, image or {}
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(cfg))),
            "accept": In(1),
            "busy": Out(1),
            "wr_addr": Out(CFG_ADDR_BITS), "wr_data": Out(cfg_data_bits(cfg)),
            "table_we": Out(1), "weight_we": Out(1), "bias_we": Out(1),
            "regs": Out(globals_layout(cfg)),
            "lut": Out(data.ArrayLayout(cfg.frac_bits + 1, cfg.max_tau)),
            "thr": Out(data.ArrayLayout(cfg.thr_width, cfg.max_t)),
        })

    def elaborate(self, platform):
        cfg, img = self.conf, self.image
        m = Module()
        glob = img.get("globals", {})
        regs = {f: Signal(self.regs[f].shape(), init=glob.get(f, 0), reset_less=True,
                          name="mode_ms" if f == "mode" else f)
                for f in global_fields(cfg).values()}
        lut_init = img.get("lut", [0] * cfg.max_tau)
        thr_init = img.get("thr", [0] * cfg.max_t)
        luts = [Signal(cfg.frac_bits + 1, init=lut_init[i], reset_less=True, name=f"lut{i}") for i in range(cfg.max_tau)]
        thrs = [Signal(cfg.thr_width, init=thr_init[i], reset_less=True, name=f"thr{i}") for i in range(cfg.max_t)]
        for f, r in regs.items():
            m.d.comb += self.regs[f].eq(r if f != "mode" or cfg.multistep else Const(0, 1))
        m.d.comb += [self.lut[i].eq(r) for i, r in enumerate(luts)] + [self.thr[i].eq(r) for i, r in enumerate(thrs)]

        cp = self.cfg.payload
        take = Signal()
        m.d.comb += [self.cfg.ready.eq(self.accept), take.eq(self.cfg.valid & self.cfg.ready)]
        cb_d = Signal.like(cp.data, name="cfg_d", reset_less=True)
        cb_a = Signal.like(cp.addr, name="cfg_a", reset_less=True)
        m.d.sync += [cb_d.eq(cp.data), cb_a.eq(cp.addr)]
        cb_sel = {k: reg(m, take & (cp.sel == k), f"cfg_sel{int(k)}") for k in Sel}
        SMALL = small_addr_bits(cfg)
        cb_small = reg(m, cp.addr[SMALL:] == 0, "cfg_small")
        cb_any = reg(m, take, "cfg_any")
        m.d.comb += self.busy.eq(take | cb_any | reg(m, cb_any, "cfg_any2"))
        m.d.comb += [self.wr_addr.eq(cb_a), self.wr_data.eq(cb_d), self.table_we.eq(cb_sel[Sel.TABLE]),
                     self.weight_we.eq(cb_sel[Sel.WEIGHT]), self.bias_we.eq(cb_sel[Sel.BIAS])]
        # wide enough for any register, LUT entry and threshold
        cw_d = Signal(max([r.shape().width for r in regs.values()] + [cfg.frac_bits + 1]), name="cfg_d2", reset_less=True)
        m.d.sync += cw_d.eq(cb_d)

        def cw_en(sel, addr, name):
            return reg(m, cb_sel[sel] & cb_small & (cb_a[:SMALL] == addr), f"cfg_{name}")

        # one plain If per register (no case statements: Verilator lint sees no incomplete cases)
        writable = (list(global_fields(cfg)) if cfg.multistep else
                    [Global.T, Global.TAULOG, Global.IN_WORDS] + list(EXTERNAL_GLOBAL_FIELDS if cfg.external else []))
        fields = global_fields(cfg)
        for k in writable:
            with m.If(cw_en(Sel.GLOBAL, k, f"g{int(k)}")):
                m.d.sync += regs[fields[k]].eq(cw_d)
        for i, r in enumerate(luts):
            with m.If(cw_en(Sel.LUT, i, f"lut{i}")):
                m.d.sync += r.eq(cw_d)
        for i, r in enumerate(thrs):
            with m.If(cw_en(Sel.THR, i, f"thr{i}")):
                m.d.sync += r.eq(cw_d)
        return m
