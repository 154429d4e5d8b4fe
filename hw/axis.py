"""AXI4-Stream ports around the Processor (`logspike verilog --axi-stream`), so the core drops into
Vivado IP integrator, LiteX or any AXI-Stream DMA without glue.

  s_axis_cfg  slave,  config beats (hw/protocol.py cfg_layout) in TDATA's low bits
  s_axis_inp  slave,  input words (P symbols of sym_bits)
  m_axis_res  master, result beats (res_layout); TLAST on each inference's END beat, so one
              inference's results are one AXI-Stream packet

TDATA is the payload rounded up to whole bytes (AXI4-Stream counts in bytes); TKEEP is all ones on the
master. The processor's beats are whole words, so a slave beat with a TKEEP bit low (null bytes) or a
one in the padding above the payload is a host error: its null bytes read as zero, the padding is
dropped, and `protocol_error` rises and stays up until reset, so a wrong DMA setting is seen rather
than computed on. TLAST on the slave ports carries no meaning (the number of input words per
inference is a config register) and is ignored, so a DMA may frame the beats as it likes.

Clock and reset are the design's `clk` and active-high synchronous `rst` (an AXI ARESETn drives it
inverted). The handshakes pass straight through: the wrapper adds no register and no cycle.
"""
from amaranth.hdl import Cat, Const, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Config
from .protocol import Tag, cfg_layout, res_layout
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


def port_widths(cfg: Config) -> dict:
    """Each port's TDATA width and the payload bits it carries (the JSON's "axi_stream" entry)."""
    pay = {"s_axis_cfg": cfg_layout(cfg).size, "s_axis_inp": cfg.lanes * cfg.sym_bits,
           "m_axis_res": res_layout(cfg).size}
    return {n: {"tdata_bits": tdata_bits(b), "tkeep_bits": tdata_bits(b) // 8, "payload_bits": b}
            for n, b in pay.items()}


class AxiStreamProcessor(wiring.Component):
    def __init__(self, cfg: Config, image: dict | None = None):
        self.conf, self.image = cfg, image
        w = port_widths(cfg)
        super().__init__({
            "s_axis_cfg": In(AxiStreamSignature(w["s_axis_cfg"]["tdata_bits"])),
            "s_axis_inp": In(AxiStreamSignature(w["s_axis_inp"]["tdata_bits"])),
            "m_axis_res": Out(AxiStreamSignature(w["m_axis_res"]["tdata_bits"])),
            "cycles": Out(32), "sops": Out(32), "events": Out(32), "busy": Out(1),
            "protocol_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Processor(self.conf, self.image)
        bad_beats = []
        for port, sink in ((self.s_axis_cfg, core.cfg), (self.s_axis_inp, core.inp)):
            n = len(sink.payload.as_value())
            kept = Cat(*(b.replicate(8) for b in port.tkeep))   # a byte's mask from its TKEEP bit
            m.d.comb += [sink.payload.eq((port.tdata & kept)[:n]), sink.valid.eq(port.tvalid),
                         port.tready.eq(sink.ready)]
            partial = ~port.tkeep.all()
            padded = port.tdata[n:].any() if len(port.tdata) > n else Const(0)
            bad_beats.append(port.tvalid & sink.ready & (partial | padded))
        with m.If(Cat(*bad_beats).any()):
            m.d.sync += self.protocol_error.eq(1)

        res = self.m_axis_res
        m.d.comb += [res.tdata.eq(core.res.payload), res.tkeep.eq(-1), res.tvalid.eq(core.res.valid),
                     res.tlast.eq(core.res.payload.tag == Tag.END), core.res.ready.eq(res.tready)]
        m.d.comb += [self.cycles.eq(core.cycles), self.sops.eq(core.sops), self.events.eq(core.events),
                     self.busy.eq(core.busy)]
        return m
