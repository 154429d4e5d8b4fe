"""cocotb module driving the processor from a job (see hw.sim): config beats,
input beats, random valid gaps / ready backpressure, optional reset mid-run.

Python only runs while a stream is transferring: an idle stream waits on its
valid/ready edge, so the compute phases run at simulator speed.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from logspike.hw import cosim


async def push(dut, name, beats, gap, rnd):
    """Drive a stream with the given payloads; valid drops at random with probability gap."""
    valid, ready, payload = getattr(dut, f"{name}__valid"), getattr(dut, f"{name}__ready"), getattr(dut, f"{name}__payload")
    i = 0
    while i < len(beats):
        await RisingEdge(dut.clk)
        if gap and rnd.random() < gap:
            valid.value = 0
            continue
        valid.value, payload.value = 1, beats[i]
        await ReadOnly()
        if int(ready.value):
            i += 1
        else:
            await RisingEdge(ready)
            # ready rose after an edge: this beat is taken at the next edge
            i += 1
    await RisingEdge(dut.clk)
    valid.value = 0


async def collect(dut, out, ready_p, rnd, limit=None):
    """Take result beats until an END beat (or until `limit` beats); ready is 1 with probability ready_p each cycle."""
    from logspike.hw.protocol import Tag

    while True:
        dut.res__ready.value = 1 if rnd.random() < ready_p else 0
        await ReadOnly()
        v = int(dut.res__valid.value)
        if v and int(dut.res__ready.value):
            b = int(dut.res__payload.value)
            out.append(b)
            if (b >> dut._tag_shift) == Tag.END or len(out) == limit:
                await RisingEdge(dut.clk)
                return
        if v:
            await RisingEdge(dut.clk)
        else:
            await RisingEdge(dut.res__valid)


async def watchdog(dut, cycles):
    await ClockCycles(dut.clk, cycles)
    cosim.answer({"error": f"the job did not finish within {cycles} cycles"})
    raise RuntimeError(f"the job did not finish within {cycles} cycles")


async def reset(dut):
    """Reset for two cycles with every stream idle (the host's side of a reset)."""
    await RisingEdge(dut.clk)
    dut.inp__valid.value = 0
    dut.cfg__valid.value = 0
    dut.res__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


@cocotb.test()
async def drive(dut):
    j = cosim.job()
    rnd = random.Random(j.get("seed", 0))
    dut._tag_shift = j["tag_shift"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.cfg__valid.value = 0
    dut.inp__valid.value = 0
    dut.res__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    if j.get("max_cycles"):   # a design that never ends its inferences fails instead of hanging
        cocotb.start_soon(watchdog(dut, j["max_cycles"]))
    if "mem" in j:   # external weights: cocotbext-axi's AXI4 RAM behind the read port, not reset with the core
        from cocotbext.axi import AxiRamRead, AxiReadBus

        mj = j["mem"]
        ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_"), dut.clk, None, size=mj["size"])
        ram.write(0, bytes.fromhex(mj["image"]))
        for ch, p in ((ram.ar_channel, mj.get("ar_pause", 0.0)), (ram.r_channel, mj.get("r_pause", 0.0))):
            if p:
                prnd = random.Random(rnd.random())
                ch.set_pause_generator(iter(lambda prnd=prnd, p=p: prnd.random() < p, None))
    answers = []
    for step in j["steps"]:
        if "cfg" in step and "with_input" in step:
            # config beats and one input offered together: the processor takes the config first
            beats = []
            cfg_t = cocotb.start_soon(push(dut, "cfg", step["cfg"], step.get("gap", 0.0), rnd))
            pt = cocotb.start_soon(push(dut, "inp", step["with_input"], step.get("gap", 0.0), rnd))
            await collect(dut, beats, step.get("ready_p", 1.0), rnd)
            await pt
            await cfg_t
            answers.append(beats)
        elif "cfg" in step and "abort_after" in step:   # reset during a config load
            pt = cocotb.start_soon(push(dut, "cfg", step["cfg"], step.get("gap", 0.0), rnd))
            await ClockCycles(dut.clk, step["abort_after"])
            pt.cancel()
            await reset(dut)
        elif "cfg" in step:
            await push(dut, "cfg", step["cfg"], step.get("gap", 0.0), rnd)
        elif "abort_after" in step or "abort_after_results" in step:
            # reset during input load or compute (after n cycles), or while the results drain (after k beats)
            beats = []
            pt = cocotb.start_soon(push(dut, "inp", step["inp"], step.get("gap", 0.0), rnd))
            ct = cocotb.start_soon(collect(dut, beats, step.get("ready_p", 1.0), rnd, step.get("abort_after_results")))
            if "abort_after" in step:
                await ClockCycles(dut.clk, step["abort_after"])
            else:
                await ct
            pt.cancel()
            ct.cancel()
            await reset(dut)
        else:
            for x in step["infer"]:
                beats = []
                pt = cocotb.start_soon(push(dut, "inp", x, step.get("gap", 0.0), rnd))
                await collect(dut, beats, step.get("ready_p", 1.0), rnd)
                await pt
                answers.append(beats)
    cosim.answer({"results": answers})
