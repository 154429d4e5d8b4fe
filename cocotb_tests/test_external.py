"""External weights (hw/fetch.py) on the processor, bit-exact against model.golden on every key.

Random ttfs and multistep packages of conv and dense layers (and residual ones) back to back on one
external-weight build of 2 and 4 lanes, each image at its own base address in one memory, under random
memory latency (20 to 200 cycles), bandwidth limits, AR and R stalls, input gaps and result backpressure,
with the memory model's AXI protocol check (hw/axi_mem.py) on every burst and every beat requested sent and
taken. The error path: a SLVERR or DECERR ends the inference with the error and its address in the END
beat, `simulate` names the layer, and the next inference runs clean. cocotbext-axi's AXI4 RAM as the
memory (a reference subordinate), with pauses and a reset while bursts are in flight; and the memory model
against cocotbext-axi's AXI4 manager.
"""
from dataclasses import replace

import numpy as np
import pytest

from common import CFG, EXT, check, make_ms, make_pkg, residual
from logspike.hw import cosim, image, sim
from logspike.hw.config import FitError, build_for, build_for_all, fits
from logspike.hw.protocol import Rresp
from logspike.model import golden, randnet


def cases_mixed(seeds):
    """ttfs and multistep packages of conv and dense layers, a residual one of each mode."""
    s = seeds
    cases = []
    for k, (kind, tau) in enumerate((("conv", 1), ("dense", 2), ("conv", 4))):
        pkg, rng = make_pkg(s + k, kind, tau)
        cases.append((pkg, randnet.random_inputs(rng, pkg, 2, silent=0.3)))
    cases += [make_ms(s + 10, "conv", batch=2), make_ms(s + 11, "dense", batch=2)]
    cases += [residual(s + 20, "ttfs", tau=2, batch=2), residual(s + 21, "multistep", batch=2)]
    return cases


def external_build(cases, lanes, dw, **over):
    cfg = build_for_all([p for p, _ in cases], lanes, weights="external", axi_data_bits=dw)
    return replace(cfg, **over)


def back_to_back(cfg, cases, tmp_path, mem, seed=0, gap=0.0, ready_p=1.0, gap_4k=True):
    """Every case's image at its own 4 KB-aligned base in one memory; load, infer, next package. Returns
    (each case's END counters, the memory model's counts)."""
    memory, items, bases = b"", [], []
    for pkg, x in cases:
        if gap_4k:
            memory += bytes(-len(memory) % 4096)
        bases.append(len(memory))
        img, _ = image.external_image(cfg, pkg)
        items += [{"cfg": image.config_beats(cfg, pkg, xbase=len(memory))}]
        items += [{"inp": image.input_beats(cfg, pkg, xi)} for xi in x]
        memory += img
    raw, stats = sim.run_fast(cfg, items, tmp_path, gap=gap, ready_p=ready_p, seed=seed, memory=memory, mem=mem)
    pos, counters = 0, []
    for pkg, x in cases:
        counters.append(check(pkg, x, raw[pos:pos + len(x)], cfg=cfg))
        pos += len(x)
    return counters, stats["mem"]


@pytest.mark.parametrize("lanes,latency,bw,stall,seed", [
    (4, 20, None, 0.0, 1),      # a beat a cycle (the shared 4-lane build, 64-bit AXI)
    (4, 200, 1.5, 0.3, 2),      # under a word a cycle, long latency, stalls
    (2, 77, 2.5, 0.5, 3),       # a 2-lane build of 128-bit beats (12 words a beat), stalls on both channels
])
def test_random_packages_back_to_back_bit_exact(tmp_path, lanes, latency, bw, stall, seed):
    cases = cases_mixed(100 * seed)
    assert {p.mode for p, _ in cases} == {"ttfs", "multistep"}
    cfg = EXT if lanes == 4 else external_build(cases, lanes, 128, fetch_ops=64, fetch_beats=64, axi_max_burst=16,
                                                axi_outstanding=3)
    mem = sim.ExternalMemory(latency=latency, bytes_per_cycle=bw, ar_stall=stall, r_stall=stall)
    counters, st = back_to_back(cfg, cases, tmp_path, mem, seed=seed, gap=0.3 if stall else 0.0,
                                ready_p=0.6 if stall else 1.0)
    assert st["violations"] == 0, Violation_name(st)
    assert st["beats_requested"] == st["beats_sent"] > 0
    assert all(c["error"] == 0 for cs in counters for c in cs)


def Violation_name(st):
    from logspike.hw.axi_mem import Violation
    return f"{st['violations']} violations, the first {Violation(st['first_violation']).name}"


def test_cycles_against_the_on_chip_build(tmp_path):
    """With the memory's latency covered and a beat a cycle, external weights cost the bias load, the first
    fetch of each layer and the pipeline between the Scatter and the PE array, not a cycle per op: under 2x
    the on-chip build's cycles (the shared 4-lane build) on a conv package here, the same operation counts,
    with the default buffers of an external build (EXT's are too small to cover the latency)."""
    pkg, rng = make_pkg(7, "conv", 2)
    x = randnet.random_inputs(rng, pkg, 3, silent=0.2)
    ext = replace(CFG, weights="external")
    r_on, c_on, s_on = sim.simulate_timed(CFG, pkg, x, tmp_path / "on")
    r_ext, c_ext, s_ext = sim.simulate_timed(ext, pkg, x, tmp_path / "ext", mem=sim.ExternalMemory(latency=20))
    want = golden.run(pkg, x)
    for k in want:
        assert np.array_equal(r_ext[k], want[k]) and np.array_equal(r_on[k], want[k])
    assert all(o < e < 2 * o + 200 for o, e in zip(c_on, c_ext)), (c_on, c_ext)
    assert [(a["sops"], a["events"]) for a in s_on["end"]] == [(a["sops"], a["events"]) for a in s_ext["end"]]


def test_error_response_ends_the_inference_with_the_error_and_the_next_runs_clean(tmp_path):
    """A SLVERR inside one layer's weights and a DECERR past the memory's end: each inference that reads them
    ends (END beat) with the first error's response and byte address; `simulate` names the layer; a package
    whose image lies elsewhere then runs bit-exact on the same build."""
    bad, rng = make_pkg(31, "conv", 2)
    good, rng2 = make_pkg(32, "dense", 1)
    xb, xg = randnet.random_inputs(rng, bad, 2, silent=0.1), randnet.random_inputs(rng2, good, 2)
    cfg = EXT
    img, layout = image.external_image(cfg, bad)
    w1 = layout["layers"][1]["weights"]
    lo = w1["address"] + 8
    # the bad image at 0 with a SLVERR range inside its second layer's weights, the good one at 64 KB
    memory = img + bytes(65536 - len(img)) + image.external_image(cfg, good)[0]
    items = [{"cfg": image.config_beats(cfg, bad)}] + [{"inp": image.input_beats(cfg, bad, v)} for v in xb]
    items += [{"cfg": image.config_beats(cfg, good, xbase=65536)}] + [{"inp": image.input_beats(cfg, good, v)} for v in xg]
    raw, stats = sim.run_fast(cfg, items, tmp_path / "a", memory=memory,
                              mem=sim.ExternalMemory(latency=30, err_range=(lo, lo + 8)))
    _, counters = sim.collate(cfg, bad, raw[:2])
    assert [(c["error"], c["error_addr"]) for c in counters] == [(Rresp.SLVERR, lo)] * 2
    assert image.error_region(layout, lo) == f"layer {layout['layers'][1]['layer']} weights"
    check(good, xg, raw[2:], cfg=cfg)   # clean afterwards: the error is the inference's own
    assert stats["mem"]["violations"] == 0

    # simulate() turns the END beat's error into one line naming the inference, the layer and the address
    with pytest.raises(sim.ExternalMemoryError, match=rf"inference 0: AXI read error SLVERR at byte address {lo:#x} "
                                                      rf"\(layer {layout['layers'][1]['layer']} weights\)"):
        sim.simulate(cfg, bad, xb[:1], tmp_path / "b", mem=sim.ExternalMemory(latency=5, err_range=(lo, lo + 8)))
    # the memory ends inside the last layer's weights: DECERR
    last = layout["layers"][-1]["weights"]
    with pytest.raises(sim.ExternalMemoryError, match=rf"DECERR at byte address .* \(layer {layout['layers'][-1]['layer']} weights\)"):
        sim.simulate(cfg, bad, xb[:1], tmp_path / "c", mem=sim.ExternalMemory(latency=5, size=last["address"] + 8))


def test_cocotbext_axi_ram_with_pauses_and_a_reset_while_bursts_are_in_flight(tmp_path):
    """cocotbext-axi's AxiRamRead, a reference AXI4 subordinate, behind the read port (per-beat driver),
    with random AR and R pauses; a reset in the middle of an inference, while bursts are in flight (the RAM
    is not reset, so their beats still arrive and the processor must drop them); then inferences bit-exact."""
    pkg, rng = make_pkg(41, "conv", 2)
    ms, xm = make_ms(42, "conv", batch=2)
    x = randnet.random_inputs(rng, pkg, 2, silent=0.2)
    cfg = build_for_all([pkg, ms], 2, weights="external", axi_data_bits=64)
    cfg = replace(cfg, fetch_ops=64, fetch_beats=64, axi_max_burst=8)
    img_a, _ = image.external_image(cfg, pkg)
    img_b, _ = image.external_image(cfg, ms)
    base_b = len(img_a) + (-len(img_a) % 4096)
    memory = img_a + bytes(base_b - len(img_a)) + img_b
    steps = [{"cfg": image.config_beats(cfg, pkg)},
             {"inp": image.input_beats(cfg, pkg, x[0]), "abort_after": 150},     # mid-scatter
             {"infer": [image.input_beats(cfg, pkg, v) for v in x], "gap": 0.2, "ready_p": 0.7},
             {"cfg": image.config_beats(cfg, ms, xbase=base_b)},
             {"infer": [image.input_beats(cfg, ms, v) for v in xm]}]
    raw = sim.run_steps(cfg, steps, tmp_path, seed=3, memory=memory, ar_pause=0.3, r_pause=0.3, max_cycles=400_000)
    check(pkg, x, raw[:2], cfg=cfg)
    check(ms, xm, raw[2:], cfg=cfg)


def test_memory_model_against_cocotbext_axi_manager(tmp_path):
    """hw/axi_mem.py's model read by cocotbext-axi's AxiMasterRead (random lengths and addresses, across 4 KB
    in the manager's own splitting, ARREADY and R stalls): every byte as written."""
    from logspike.hw.axi_mem import AxiMemory
    from logspike.hw.harness import XMEM_MODULE, XMEM_VERILOG
    from amaranth.hdl import ClockSignal, Instance, Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from logspike.hw.protocol import AxiReadSignature

    DW, DEPTH = 128, 1 << 12

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"s_axi": In(AxiReadSignature(DW)), "latency": In(16), "bw16": In(16), "ar_stall": In(16),
                              "r_stall": In(16), "size": In(33), "start": In(1), "violations": Out(32)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = am = AxiMemory(DW, DEPTH)
            m.submodules.xmem = Instance(XMEM_MODULE, p_WIDTH=DW, p_DEPTH=DEPTH, p_ABITS=len(am.rd_addr),
                                         i_clk=ClockSignal(), i_addr=am.rd_addr, o_data=am.rd_data)
            wiring.connect(m, wiring.flipped(self.s_axi), am.axi)
            for n in ("latency", "bw16", "ar_stall", "r_stall", "size", "start"):
                m.d.comb += getattr(am, n).eq(getattr(self, n))
            m.d.comb += self.violations.eq(am.violations)
            return m

    text = "`timescale 1ns/1ps\n" + cosim.verilog_of(Top(), "axi_mem_top") + "\n" + XMEM_VERILOG
    bdir = cosim.build(text, "axi_mem_top")
    rng = np.random.default_rng(5)
    memory = rng.integers(0, 256, size=DEPTH * DW // 8 // 4, dtype=np.uint8).tobytes()
    hexfile = tmp_path / "xmem.hex"
    sim.write_hex(hexfile, memory, DW // 8)
    # beat-aligned starts (the model counts an unaligned start as a violation of this processor's own rule)
    reads = [(16 * int(rng.integers(0, (len(memory) - 600) // 16)), int(rng.integers(1, 600))) for _ in range(40)]
    ans = cosim.run(bdir, "axi_mem_top", "tb_axi_mem", tmp_path, {"reads": reads, "size": len(memory)},
                    plusargs=[f"+XMEM={hexfile}"])
    for (addr, n), got in zip(reads, ans["data"]):
        assert bytes.fromhex(got) == memory[addr:addr + n]
    assert ans["violations"] == 0


def test_the_papers_vgg_networks_fit_a_16_lane_external_build():
    """VGG-11 and VGG-16 at 32x32x3 and 64x64x3, ttfs and multistep, fit one 16-lane external-weight build each
    (20 table entries for VGG-16: 13 convs, 5 pools, 2 dense); the same networks on chip pass the config
    stream's reach; a build short of one capacity names the field and its limit."""
    import torch

    from logspike.model import atsnn
    from logspike.model.nets import build_spec

    for net in ("vgg11", "vgg16"):
        for hw in (32, 64):
            shape = (3, hw, hw)
            ttfs = randnet.shaped_package(net, shape)
            torch.manual_seed(0)
            ms = atsnn.to_package(atsnn.MultistepNet(shape, build_spec(net, shape, 10), atsnn.SNNConfig(time_steps=8)))
            cfg = build_for_all([ttfs, ms], 16, weights="external")
            for p in (ttfs, ms):
                fits(cfg, p)
                assert image.bake(cfg, p)["globals"]["xbias"] > 0
            assert cfg.max_layers == (20 if net == "vgg16" else 15) and cfg.max_dim == hw
            with pytest.raises(FitError, match="16-bit address loads at most 65536 words"):
                fits(build_for(ttfs, 16), ttfs)
            with pytest.raises(FitError, match=r"layers = .* non-flatten layers: does not fit this build \(build max_layers"):
                fits(replace(cfg, max_layers=cfg.max_layers - 1), ms)
            with pytest.raises(FitError, match="potentials"):
                fits(replace(cfg, max_state_words=cfg.max_state_words - 1), ms)
