"""HDL-side testbench around the Processor, so co-simulation runs at simulator speed.

Two ring buffers: a beat memory (config and input beats, in stream order)
that Python fills, and a result memory that the controller fills with every
result beat. The controller streams the beats in at one beat per cycle, with
pseudo-random valid gaps on the input streams and ready backpressure on the
result stream drawn from an xorshift32 generator, and takes the result beats.
Python (hw/tb_fast.py) only acts when `attn` rises: the beat ring is below
half full, the result ring is half full, or the batch is done. It then reads
the new results and writes more beats through VPI in zero simulated time and
acknowledges both counts (`ack`), while the controller keeps streaming; so
neither ring ever stalls the processor and a batch of any size runs with one
`start`. Only the Processor's ports are used (cfg, inp, res streams).

Beat word: {data, is_cfg}: is_cfg 1 = a config-stream payload, 0 = an
input-stream payload (both as the integers hw/image.py makes). Beats go out
strictly in ring order, each held valid until taken, so none is dropped or
reordered, and an input beat is never offered while a config beat waits.

Handshake (`start` and `ack` act on their rising edge):
  start: pointers and counts to 0, `fill` beats (at ring index 0..) available.
  ack:   `fill` more beats available, `drain` result beats read (oldest first).
  eof:   Python has no more beats to give (level); `done` = eof, every beat
         taken and `n_ends` END beats arrived.

External weights (Config.weights = "external"): the processor's AXI4 read port goes to the memory model of
hw/axi_mem.py, which answers from `xmem` (a plain Verilog array loaded from a hex file at time 0, hw/sim.py
write_hex) with the latency, bandwidth, stalls and error ranges of the `mem_*` inputs, and counts bursts,
beats and protocol violations (`mem_*` outputs).

Simulation only, for speed: the processor and the controller run on a pulse
at every transition of `clk` (rising and falling), so one processor cycle
costs one time step instead of two, and `clk` itself toggles inside the
model (hw.sim.clocked_wrapper, Verilator --timing), so a time step costs no
VPI callback. A clock driven by cocotb cost a timer callback and a VPI write
per edge: more than the model at P = 4, a third of the time at P = 16
(351k -> 518k cycles/s when it moved inside). Inputs are sampled at the next
pulse; the handshake above is the only timing Python relies on.
"""
from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi_mem import AxiMemory
from .config import XADDR_BITS, Config
from .protocol import Tag, cfg_layout, res_layout
from .top import Processor

# Amaranth writes every memory word's init into the Verilog (about 1 ms of conversion per word),
# so the rings stay small; Python refills and drains them as often as needed.
BEAT_DEPTH = 1 << 10
RES_DEPTH = 1 << 10
XORSHIFT_DEFAULT_SEED = 0x2545F491


# The external memory's array, in Verilog: an Amaranth memory writes its init word by word into the Verilog
# (about 0.6 ms a word, ten minutes for a million), this one is loaded from a hex file at time 0
# (`+XMEM=path`, $readmemh), a word per line, lowest address first.
XMEM_MODULE = "logspike_xmem"
XMEM_VERILOG = f"""module {XMEM_MODULE} #(parameter WIDTH = 128, parameter DEPTH = 16, parameter ABITS = 4) (
  input clk, input [ABITS-1:0] addr, output reg [WIDTH-1:0] data);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  reg [1023:0] path;
  initial if ($value$plusargs("XMEM=%s", path)) $readmemh(path, mem);
  always @(posedge clk) data <= mem[addr];
endmodule
"""


def beat_layout(cfg: Config):
    w = max(cfg_layout(cfg).size, cfg.lanes * cfg.sym_bits)
    return data.StructLayout({"data": w, "is_cfg": 1})


def xorshift32(x):
    """One step of Marsaglia's xorshift32 (13, 17, 5) on a 32-bit value."""
    x = (x ^ (x << 13))[:32]
    x = x ^ (x >> 17)
    return (x ^ (x << 5))[:32]


class Harness(wiring.Component):
    """gap: an input valid is held low on a cycle with probability gap / 2^16 (0 = never).
    stall: result ready is low on a cycle with probability stall / 2^16 (0 = never).
    seed: the generator's state at start (0 = a fixed non-zero default).
    avail: beats in the beat ring not yet taken; n_res: result beats not yet drained.
    cycles: processor cycles from start to done."""

    def __init__(self, cfg: Config, image: dict | None = None, beat_depth: int = BEAT_DEPTH,
                 res_depth: int = RES_DEPTH, mem_words: int = 0):
        """mem_words: external weights, the depth of the memory behind the processor's AXI4 port (hw/axi_mem.py),
        in beats, a power of two; the testbench writes the image into it (`xmem`)."""
        for d in (beat_depth, res_depth):
            if d < 4 or d & (d - 1):
                raise ValueError(f"ring depth {d}: must be a power of two >= 4")
        if cfg.external and (mem_words < 16 or mem_words & (mem_words - 1)):
            raise ValueError(f"mem_words = {mem_words}: an external-weight build needs a power of two >= 16")
        self.conf, self.image = cfg, image
        self.beat_depth, self.res_depth, self.mem_words = beat_depth, res_depth, mem_words
        mem = {} if not cfg.external else {
            "mem_latency": In(16), "mem_bw16": In(16), "mem_ar_stall": In(16), "mem_r_stall": In(16),
            "mem_size": In(XADDR_BITS + 1), "mem_err_lo": In(XADDR_BITS), "mem_err_hi": In(XADDR_BITS),
            "mem_violations": Out(32), "mem_first_violation": Out(8), "mem_bursts": Out(32),
            "mem_beats_requested": Out(32), "mem_beats_sent": Out(32)}
        super().__init__({
            "start": In(1), "ack": In(1), "eof": In(1),
            "fill": In(range(beat_depth + 1)), "drain": In(range(res_depth + 1)), "n_ends": In(32),
            "gap": In(16), "stall": In(16), "seed": In(32),
            "attn": Out(1), "done": Out(1),
            "avail": Out(range(beat_depth + 1)), "n_res": Out(range(res_depth + 1)), "cycles": Out(64),
            **mem,
        })

    def elaborate(self, platform):
        cfg = self.conf
        BD, RD = self.beat_depth, self.res_depth
        m = Module()

        # ---- the "edge" clock: clk ^ a ^ b, a toggled at clk's rising and b at its falling edge;
        # it rises with each transition of clk and falls in the same time step once a or b toggles
        m.domains.neg = neg = ClockDomain("neg", clk_edge="neg", local=True)
        m.domains.edge = edge = ClockDomain("edge", local=True)
        a, b = Signal(reset_less=True), Signal(reset_less=True)
        m.d.sync += a.eq(~a)
        m.d.neg += b.eq(~b)
        # the reset is registered too: Amaranth folds a synchronous reset into every register's
        # next-state logic, which would otherwise all hang off a toplevel input (see below)
        rst = Signal(reset_less=True)
        m.d.sync += rst.eq(ResetSignal("sync"))
        m.d.comb += [neg.clk.eq(ClockSignal("sync")), edge.clk.eq(ClockSignal("sync") ^ a ^ b), edge.rst.eq(rst)]

        m.submodules.proc = proc = DomainRenamer("edge")(Processor(cfg, image=self.image))
        bl, rl = beat_layout(cfg), res_layout(cfg)
        m.submodules.beats = beats = Memory(shape=bl.size, depth=BD, init=[])
        m.submodules.results = results = Memory(shape=rl.size, depth=RD, init=[])
        # a synchronous read, addressed with the next rptr: the beat at rptr is in the read register
        # (an asynchronous read of a memory cocotb writes would pull the processor's logic into
        # Verilator's per-input-change evaluation, like a toplevel input)
        b_rd = beats.read_port(domain="edge")
        r_wr = results.write_port(domain="edge")

        # every control input is registered first: Verilator re-evaluates all logic that depends
        # combinationally on a toplevel input whenever an input changes, i.e. at every clk edge
        q = {n: Signal.like(getattr(self, n), name=f"{n}_q")
             for n in ("start", "ack", "eof", "fill", "drain", "n_ends", "gap", "stall", "seed")}
        m.d.edge += [q[n].eq(getattr(self, n)) for n in q]
        start_d, ack_d = Signal(), Signal()
        m.d.edge += [start_d.eq(q["start"]), ack_d.eq(q["ack"])]
        start, ack = q["start"] & ~start_d, q["ack"] & ~ack_d

        if cfg.external:   # the memory behind the AXI4 port: the model answers from the image in xmem
            m.submodules.axi_mem = am = DomainRenamer("edge")(AxiMemory(cfg.axi_data_bits, self.mem_words))
            m.submodules.xmem = Instance(XMEM_MODULE, p_WIDTH=cfg.axi_data_bits, p_DEPTH=self.mem_words,
                                         p_ABITS=len(am.rd_addr), i_clk=ClockSignal("edge"), i_addr=am.rd_addr,
                                         o_data=am.rd_data)
            wiring.connect(m, proc.m_axi, am.axi)
            m.d.comb += [am.start.eq(start), am.seed.eq(q["seed"])]
            for n in ("latency", "bw16", "ar_stall", "r_stall", "size", "err_lo", "err_hi"):
                m.d.comb += getattr(am, n).eq(getattr(self, f"mem_{n}"))
            for n in ("violations", "first_violation", "bursts", "beats_requested", "beats_sent"):
                m.d.comb += getattr(self, f"mem_{n}").eq(getattr(am, n))

        run = Signal()
        rptr, wptr = Signal(range(BD)), Signal(range(RD))  # wrap at the (power of two) depth
        avail, count = Signal(range(BD + 1)), Signal(range(RD + 1))
        ends = Signal(32)
        rng = Signal(32, init=XORSHIFT_DEFAULT_SEED)
        m.d.edge += rng.eq(xorshift32(rng))

        # ---- input side: one beat offered at a time, held until taken
        beat = data.View(bl, b_rd.data)
        valid = Signal()
        take = valid & Mux(beat.is_cfg, proc.cfg.ready, proc.inp.ready)
        left = avail - take + Mux(ack, q["fill"], 0)  # beats available after this cycle
        m.d.comb += [
            b_rd.addr.eq(Mux(start, 0, rptr + take)),
            proc.cfg.payload.eq(beat.data), proc.inp.payload.eq(beat.data),
            proc.cfg.valid.eq(valid & beat.is_cfg), proc.inp.valid.eq(valid & ~beat.is_cfg),
        ]
        m.d.edge += [rptr.eq(rptr + take), avail.eq(left)]
        with m.If(~valid | take):  # free to offer the next beat, or to hold it back for a gap
            m.d.edge += valid.eq(run & (left != 0) & (rng[:16] >= q["gap"]))

        # ---- result side: every beat taken goes to the result ring
        m.d.comb += proc.res.ready.eq(run & (count != RD) & (rng[16:] >= q["stall"]))
        got = proc.res.valid & proc.res.ready
        m.d.comb += [r_wr.addr.eq(wptr), r_wr.data.eq(proc.res.payload), r_wr.en.eq(got)]
        m.d.edge += [wptr.eq(wptr + got), count.eq(count + got - Mux(ack, q["drain"], 0))]
        with m.If(got & (data.View(rl, proc.res.payload).tag == Tag.END)):
            m.d.edge += ends.eq(ends + 1)

        # ---- control
        done = run & q["eof"] & (avail == 0) & (ends == q["n_ends"])
        m.d.comb += [self.done.eq(done), self.avail.eq(avail), self.n_res.eq(count),
                     self.attn.eq(done | (run & ~q["eof"] & (avail < BD // 2)) | (count >= RD // 2))]
        with m.If(run & ~done):
            m.d.edge += self.cycles.eq(self.cycles + 1)
        with m.If(start):
            m.d.edge += [run.eq(1), rptr.eq(0), wptr.eq(0), avail.eq(q["fill"]), count.eq(0), ends.eq(0),
                         valid.eq(0), self.cycles.eq(0), rng.eq(Mux(q["seed"] == 0, XORSHIFT_DEFAULT_SEED, q["seed"]))]
        return m
