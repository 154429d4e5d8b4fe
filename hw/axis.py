"""AXI4-Stream ports around the Processor (`logspike verilog --axi-stream`), so the core drops into
Vivado IP integrator, LiteX or any AXI-Stream DMA without glue.

  s_axis_cfg  slave,  config beats (hw/protocol.py cfg_layout) in TDATA's low bits
  s_axis_inp  slave,  input words (P symbols of sym_bits)
  m_axis_res  master, result beats (res_layout); TLAST on each inference's END beat, so one
              inference's results are one AXI-Stream packet

TDATA is the payload rounded up to whole bytes (AXI4-Stream counts in bytes), or, with `width` (`logspike
verilog --axi-width 32`), every port `width` bits wide, a payload of more bits taking several transfers,
lowest bits first, so a 32- or 64-bit DMA connects without a width converter; TKEEP is all ones on the
master. The processor's beats are whole words, so a slave beat with a TKEEP bit low (null bytes) or a
one in the padding above the payload (in a beat's last transfer) is a host error: its null bytes read as zero, the padding is
dropped, and `protocol_error` rises and stays up until reset, so a wrong DMA setting is seen rather
than computed on. TLAST on the slave ports carries no meaning (the number of input words per
inference is a config register) and is ignored, so a DMA may frame the beats as it likes.

Clock and reset are the design's `clk` and active-high synchronous `rst` (an AXI ARESETn drives it
inverted). The handshakes pass straight through: the wrapper adds no register and no cycle.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Config
from .protocol import AxiReadSignature, Tag, cfg_layout, res_layout
from .top import Processor


def tdata_bits(payload_bits: int) -> int:
    """TDATA width for a payload: whole bytes."""
    return 8 * -(-payload_bits // 8)


class AxiStreamSignature(wiring.Signature):
    """An AXI4-Stream interface from the transmitter's side: TDATA, TKEEP, TLAST, TVALID, TREADY."""

    def __init__(self, data_bits: int):
        if data_bits % 8:
            raise ValueError(f"AXI4-Stream TDATA of {data_bits} bits: must be whole bytes")
        super().__init__({"tdata": Out(data_bits), "tkeep": Out(data_bits // 8), "tlast": Out(1),
                          "tvalid": Out(1), "tready": In(1)})


def port_widths(cfg: Config, width: int | None = None) -> dict:
    """Each port's TDATA width, the payload bits it carries and the transfers per payload (the JSON's
    "axi_stream" entry). width None: TDATA is the payload in whole bytes, one transfer per beat; else every
    TDATA is `width` bits and a wider payload takes several transfers, lowest bits first."""
    if width is not None and (width < 8 or width % 8):
        raise ValueError(f"axi width {width}: must be a positive multiple of 8 bits")
    pay = {"s_axis_cfg": cfg_layout(cfg).size, "s_axis_inp": cfg.lanes * cfg.sym_bits,
           "m_axis_res": res_layout(cfg).size}
    out = {}
    for n, b in pay.items():
        w = tdata_bits(b) if width is None else width
        out[n] = {"tdata_bits": w, "tkeep_bits": w // 8, "payload_bits": b, "transfers": -(-b // w)}
    return out


class AxiStreamProcessor(wiring.Component):
    """width: every port's TDATA in bits (a multiple of 8), or None for each payload in whole bytes."""

    def __init__(self, cfg: Config, image: dict | None = None, width: int | None = None):
        self.conf, self.image = cfg, image
        self.widths = w = port_widths(cfg, width)
        super().__init__({
            "s_axis_cfg": In(AxiStreamSignature(w["s_axis_cfg"]["tdata_bits"])),
            "s_axis_inp": In(AxiStreamSignature(w["s_axis_inp"]["tdata_bits"])),
            "m_axis_res": Out(AxiStreamSignature(w["m_axis_res"]["tdata_bits"])),
            "cycles": Out(32), "sops": Out(32), "events": Out(32), "busy": Out(1),
            "protocol_error": Out(1),
            **({"m_axi": Out(AxiReadSignature(cfg.axi_data_bits))} if cfg.external else {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Processor(self.conf, self.image)
        if self.conf.external:   # the AXI4 read port to the weights, straight through
            wiring.connect(m, wiring.flipped(self.m_axi), core.m_axi)
        bad_transfers = []
        for name, port, sink in (("s_axis_cfg", self.s_axis_cfg, core.cfg), ("s_axis_inp", self.s_axis_inp, core.inp)):
            n, W, k = len(sink.payload.as_value()), len(port.tdata), self.widths[name]["transfers"]
            kept = Cat(*(b.replicate(8) for b in port.tkeep))   # a byte's mask from its TKEEP bit
            data = port.tdata & kept
            # a beat of k transfers: the first k - 1 held in `held`, the last one passed straight through with
            # them, so the core sees the beat in the cycle its last transfer arrives (no added latency)
            last = Const(1)
            payload = data
            if k > 1:
                held = Signal((k - 1) * W, name=f"{name}_held")
                idx = Signal(range(k), name=f"{name}_index")
                last = idx == k - 1
                payload = Cat(held, data)
                with m.If(port.tvalid & port.tready):
                    m.d.sync += idx.eq(Mux(last, 0, idx + 1))
                    with m.If(~last):   # shifted in from the top: after k - 1 transfers the first is lowest
                        m.d.sync += held.eq(Cat(held[W:], data))
            m.d.comb += [sink.payload.eq(payload[:n]), sink.valid.eq(port.tvalid & last),
                         port.tready.eq(~last | sink.ready)]
            used = n - (k - 1) * W    # payload bits in a beat's last transfer; the rest is padding
            padded = port.tdata[used:].any() & last if used < W else Const(0)
            bad_transfers.append(port.tvalid & port.tready & (~port.tkeep.all() | padded))
        with m.If(Cat(*bad_transfers).any()):
            m.d.sync += self.protocol_error.eq(1)

        res, k = self.m_axis_res, self.widths["m_axis_res"]["transfers"]
        W = len(res.tdata)
        beat = core.res.payload.as_value()
        is_end = core.res.payload.tag == Tag.END
        if k == 1:
            m.d.comb += [res.tdata.eq(beat), res.tlast.eq(is_end), core.res.ready.eq(res.tready)]
        else:   # each result beat as k transfers, TLAST on the END beat's last one
            idx = Signal(range(k), name="m_axis_res_index")
            last = idx == k - 1
            wide = Signal(k * W)
            m.d.comb += [wide.eq(beat), res.tdata.eq(wide.word_select(idx, W))]
            with m.If(res.tvalid & res.tready):
                m.d.sync += idx.eq(Mux(last, 0, idx + 1))
            m.d.comb += [res.tlast.eq(is_end & last), core.res.ready.eq(res.tready & last)]
        m.d.comb += [res.tkeep.eq(-1), res.tvalid.eq(core.res.valid)]
        m.d.comb += [self.cycles.eq(core.cycles), self.sops.eq(core.sops), self.events.eq(core.events),
                     self.busy.eq(core.busy)]
        return m
