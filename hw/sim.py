"""`simulate(cfg, pkg, inputs)`: run a package on the generated RTL (cocotb + Verilator).

Both modes: ttfs codes or multistep bytes in; the result dict has the SPEC
section 5 keys (multistep: exit_step and per-neuron spike counts up to the
exit step), batched like model.golden.run; cycles are the RTL's own count of
each whole inference, so early exit shows up as fewer cycles.

Two drivers: `simulate` runs through the HDL testbench hw.harness (beats
streamed from a memory at simulator speed, hw.tb_fast); `run_steps` keeps the
per-beat Python driver hw.tb_driver, which alone can reset mid-inference.
"""
from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib.wiring import In, Out

from logspike.model.package import Package

from . import cosim, image
from .config import Config, ExternalMemoryError, fits
from .harness import XMEM_VERILOG, Harness, beat_layout
from .protocol import Rresp, Tag, res_layout
from .top import Processor

TOP = "logspike"
TB_TOP = "logspike_tbc"   # the harness with its clock generated inside the model
TB_HARNESS = "logspike_tb"


def build(cfg: Config, baked: Package | None = None) -> Path:
    img = image.bake(cfg, baked) if baked is not None else None
    return cosim.build(cosim.verilog_of(Processor(cfg, image=img), TOP), TOP)


# the external memory of the harness: at least this many beats, else the next power of two that holds the images
MEM_MIN_WORDS = 1 << 12


@dataclass(frozen=True)
class ExternalMemory:
    """The memory model behind an external-weight build's AXI4 port (hw/axi_mem.py): latency in cycles,
    bandwidth in bytes per cycle (None: a beat a cycle), the probabilities that ARREADY is low on a cycle
    and that a beat is held back, SLVERR for byte addresses in err_range, DECERR from `size` bytes on (None:
    the end of what the run put in memory)."""
    latency: int = 20
    bytes_per_cycle: float | None = None
    ar_stall: float = 0.0
    r_stall: float = 0.0
    err_range: tuple[int, int] | None = None
    size: int | None = None


def mem_words_for(cfg: Config, nbytes: int) -> int:
    """The harness memory's depth in beats for nbytes of images."""
    words = -(-nbytes // (cfg.axi_data_bits // 8))
    return max(MEM_MIN_WORDS, 1 << max(0, (words - 1).bit_length()))


def build_harness(cfg: Config, baked: Package | None = None, mem_words: int = MEM_MIN_WORDS) -> Path:
    """The Verilator model of the HDL testbench (hw.harness) around this build (external weights: with a
    memory of mem_words beats)."""
    mw = mem_words if cfg.external else 0
    if baked is None:
        return _harness_dir(cfg, mw)
    return _build_harness(Harness(cfg, image=image.bake(cfg, baked), mem_words=mw))


@functools.lru_cache(maxsize=None)
def _harness_dir(cfg: Config, mem_words: int = 0) -> Path:
    # converting the harness to Verilog takes seconds (its memories' init); once per process per build
    return _build_harness(Harness(cfg, mem_words=mem_words))


def clocked_wrapper(h: Harness) -> str:
    """Verilog toplevel around the harness with its clock toggled inside the model (`always #5`):
    a clock cocotb drives costs a timer callback and a VPI write per edge, about a third of the
    simulator's time at 16 lanes; generated inside, a time step is one evaluation of the model."""
    ports = [(n, Shape.cast(mb.shape).width, mb.flow) for n, mb in h.signature.members.items()]
    decl = ["  input rst;"] + [f"  {'input' if f == In else 'output'} {f'[{w - 1}:0] ' if w > 1 else ''}{n};"
                                for n, w, f in ports]
    conns = ",\n".join([f"    .{n}({n})" for n in ["rst"] + [n for n, _, _ in ports]] + ["    .clk(clk)"])
    return (f"module {TB_TOP}(" + ", ".join(["rst"] + [n for n, _, _ in ports]) + ");\n" + "\n".join(decl) + "\n"
            "  reg clk = 1'b0;\n  always #5 clk = ~clk;\n"
            f"  {TB_HARNESS} h(\n{conns});\nendmodule\n")


def _build_harness(h: Harness) -> Path:
    # cocotb writes the inputs and the beat memory, and reads the outputs, the clock and the result memory
    ins = [n for n, mb in h.signature.members.items() if mb.flow == In] + ["rst"]
    outs = [n for n, mb in h.signature.members.items() if mb.flow == Out] + ["clk"]
    text = "`timescale 1ns/1ps\n" + cosim.verilog_of(h, TB_HARNESS) + "\n" + clocked_wrapper(h)
    if h.conf.external:
        text += "\n" + XMEM_VERILOG
    return cosim.build(text, TB_TOP, public_rw=ins + [f"{TB_HARNESS}:beats"],
                       public_rd=outs + [f"{TB_HARNESS}:results"], timing=True)


def threshold(p: float) -> int:
    """A probability as the harness's 16-bit threshold (probability p -> round(p * 2^16), capped)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} outside [0, 1]")
    return min(0xFFFF, round(p * 0x10000))


def run_fast(cfg: Config, items: list, test_dir=None, gap=0.0, ready_p=1.0, seed=0, baked: Package | None = None,
             timeout_cycles: int = 200_000_000, harness_dir: Path | None = None, memory: bytes = b"",
             mem: ExternalMemory = ExternalMemory()) -> tuple[list, dict]:
    """Run a list of items ({"cfg": beats} / {"inp": beats of one inference}) in order through the HDL
    testbench; returns (the raw result beats of each inference, stats of the simulator side).
    gap: probability an input valid is held low on a cycle; ready_p: probability result ready is high.
    timeout_cycles: the longest the harness may run without needing Python before the run fails.
    harness_dir: the model build_harness(cfg) made, where the caller has it (saves its conversion).
    External weights: `memory` is the external memory's contents from byte address 0, `mem` its model's
    settings; the stats then hold the model's counts (bursts, beats, protocol violations)."""
    mem_words = mem_words_for(cfg, len(memory))
    bdir = (harness_dir if harness_dir is not None and baked is None else
            build_harness(cfg, baked, mem_words))
    shift = beat_layout(cfg)["is_cfg"].offset
    beats = []  # one stream of beat words; is_cfg marks the config beats
    for it in items:
        beats += [(1 << shift) | b for b in it["cfg"]] if "cfg" in it else list(it["inp"])
    n_inf = sum("inp" in it for it in items)
    job = {"beats": beats, "n_ends": n_inf, "tag_shift": res_layout(cfg)["tag"].offset, "tag_end": int(Tag.END),
           "gap": threshold(gap), "stall": threshold(1.0 - ready_p), "seed": seed, "timeout_cycles": timeout_cycles}
    if cfg.external:
        if mem.bytes_per_cycle is not None and not 1 / 16 <= mem.bytes_per_cycle <= 4096:
            raise ValueError(f"bytes_per_cycle = {mem.bytes_per_cycle}: must be 1/16 .. 4096 (or None, a beat a cycle)")
        lo, hi = mem.err_range or (0, 0)
        job["mem"] = {"latency": mem.latency, "bw16": 0 if mem.bytes_per_cycle is None else round(16 * mem.bytes_per_cycle),
                      "ar_stall": threshold(mem.ar_stall), "r_stall": threshold(mem.r_stall),
                      "size": len(memory) if mem.size is None else mem.size, "err_lo": lo, "err_hi": hi}

    def go(d):
        plus = []
        if cfg.external:
            hexfile = Path(d) / "xmem.hex"
            write_hex(hexfile, memory, cfg.axi_data_bits // 8)
            plus = [f"+XMEM={hexfile}"]
        return cosim.run(bdir, TB_TOP, "logspike.hw.tb_fast", Path(d), job, plusargs=plus)

    if test_dir is None:
        with tempfile.TemporaryDirectory(prefix="logspike-sim-") as d:
            ans = go(d)
    else:
        Path(test_dir).mkdir(parents=True, exist_ok=True)
        ans = go(test_dir)
    if len(ans["results"]) != n_inf:
        raise RuntimeError(f"{len(ans['results'])} END beats for {n_inf} inferences")
    return ans["results"], ans["stats"]


def run_steps(cfg: Config, steps: list, test_dir=None, seed: int = 0, baked: Package | None = None,
              max_cycles: int | None = None, memory: bytes = b"", ar_pause: float = 0.0, r_pause: float = 0.0) -> list:
    """Run a list of driver steps through the per-beat driver (hw.tb_driver); returns the raw result beats of
    each completed inference. Steps: {"cfg": beats}; {"infer": [beats per sample]}; {"cfg": beats,
    "with_input": beats} (config and one input offered together); and resets: {"cfg": beats, "abort_after": n}
    (n cycles into a config load), {"inp": beats, "abort_after": n} (n cycles into an inference: input load
    or compute), {"inp": beats, "abort_after_results": k} (after k result beats). Any step may set "gap"
    (valid low) and "ready_p" (result ready) probabilities. External weights: cocotbext-axi's AxiRamRead
    answers the AXI4 port from `memory` (address 0 on), pausing AR and R with the given probabilities; a
    reset of the processor does not reset it (beats of bursts in flight still arrive)."""
    bdir = build(cfg, baked)
    tag_shift = res_layout(cfg)["tag"].offset
    job = {"steps": steps, "seed": seed, "tag_shift": tag_shift, "max_cycles": max_cycles}
    if cfg.external:   # the memory behind the AXI4 port: cocotbext-axi's AxiRamRead holding `memory` from address 0
        job["mem"] = {"image": memory.hex(), "size": max(4096, len(memory)), "ar_pause": ar_pause, "r_pause": r_pause}
    if test_dir is None:
        with tempfile.TemporaryDirectory(prefix="logspike-sim-") as d:
            return cosim.run(bdir, TOP, "logspike.hw.tb_driver", Path(d), job)["results"]
    return cosim.run(bdir, TOP, "logspike.hw.tb_driver", Path(test_dir), job)["results"]


def write_hex(path: Path, memory: bytes, beat_bytes: int):
    """The memory as $readmemh lines: one beat a line, its bytes little-endian (the first byte lowest)."""
    memory = memory + bytes(-len(memory) % beat_bytes)
    a = np.frombuffer(memory, dtype=np.uint8).reshape(-1, beat_bytes)[:, ::-1]
    path.write_text("".join(bytes(r).hex() + "\n" for r in a))


def collate(cfg: Config, pkg: Package, raw: list) -> tuple[dict, list]:
    parsed = [image.parse_results(cfg, pkg, r) for r in raw]
    res = {k: np.stack([np.asarray(p[0][k]) for p in parsed]).astype(np.int64) for k in parsed[0][0]}
    return res, [p[1] for p in parsed]


def simulate(cfg: Config, pkg: Package, inputs, test_dir=None, gap=0.0, ready_p=1.0, seed=0, harness_dir=None,
             mem: ExternalMemory = ExternalMemory()):
    """Load pkg over the config stream, run every input; returns (results, cycles per inference)."""
    res, cycles, _ = simulate_timed(cfg, pkg, inputs, test_dir, gap, ready_p, seed, harness_dir, mem)
    return res, cycles


def simulate_timed(cfg: Config, pkg: Package, inputs, test_dir=None, gap=0.0, ready_p=1.0, seed=0, harness_dir=None,
                   mem: ExternalMemory = ExternalMemory()):
    """simulate, plus the simulator side's stats (hw.tb_fast: simulated cycles, wall and CPU time; "end": each
    inference's END-beat fields). External
    weights: the package's image at byte address 0 of the memory model `mem`; an AXI read error in any
    inference raises ExternalMemoryError naming the inference, the layer and the address."""
    fits(cfg, pkg)
    memory, layout = image.external_image(cfg, pkg) if cfg.external else (b"", None)
    items = [{"cfg": image.config_beats(cfg, pkg)}] + [{"inp": image.input_beats(cfg, pkg, x)} for x in inputs]
    raw, stats = run_fast(cfg, items, test_dir, gap=gap, ready_p=ready_p, seed=seed, harness_dir=harness_dir,
                          memory=memory, mem=mem)
    res, counters = collate(cfg, pkg, raw)
    stats["end"] = counters   # each inference's END-beat fields (cycles, sops, events, ...)
    if cfg.external:
        for i, c in enumerate(counters):
            if c["error"]:
                raise ExternalMemoryError(
                    f"inference {i}: AXI read error {Rresp(c['error']).name} at byte address {c['error_addr']:#x} "
                    f"({image.error_region(layout, c['error_addr'])})")
    return res, [c["cycles"] for c in counters], stats
