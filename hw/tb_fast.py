"""cocotb module running a batch through hw.harness.Harness (see hw.sim.run_fast).

Python touches the simulation only when the harness raises `attn` (beat ring
below half full, result ring half full, or done): it reads the new result
beats and writes more beats straight through VPI handles to the memories (the
harness build makes its ports, its clock and the two memories visible to
VPI), in zero simulated time, then acknowledges both counts. The streaming,
the valid gaps and the ready backpressure run in the HDL.

Job: {"beats": [beat words in stream order], "n_ends": END beats to wait for,
      "gap": 0..65535, "stall": 0..65535, "seed": int, "tag_shift": int, "tag_end": int,
      "timeout_cycles": the longest the harness may run without needing Python}
Answer: {"results": [result beats of each inference], "stats": {...}}.
"""
import time

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout

from logspike.hw import cosim  # and nothing heavier: this module's imports count in every simulate() call


async def pulse(dut, sig):
    """Raise a signal the harness acts on at its rising edge, and return once it has acted: the
    harness registers its inputs (one edge) and acts at the next; ClockCycles(clk, 2) resumes
    before the second rising clk edge is evaluated, by which at least two edges were, and the
    Timer lets that one be evaluated too before Python reads anything."""
    sig.value = 1
    await ClockCycles(dut.clk, 2)
    sig.value = 0
    await Timer(1, "ns")


@cocotb.test()
async def drive(dut):
    j = cosim.job()
    # the clock toggles inside the model (hw.sim.clocked_wrapper): no callback per edge
    for name in ("start", "ack", "eof", "fill", "drain"):
        getattr(dut, name).value = 0
    dut.gap.value, dut.stall.value, dut.seed.value = j["gap"], j["stall"], j["seed"] & 0xFFFFFFFF
    dut.n_ends.value = j["n_ends"]
    for k, v in j.get("mem", {}).items():   # external weights: the memory model's settings
        getattr(dut, f"mem_{k}").value = v
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    words, tag_shift, tag_end = j["beats"], j["tag_shift"], j["tag_end"]
    # one handle per memory word, by index (iterating would follow the declared range, [N-1:0])
    beat_h = [dut.h.beats[i] for i in range(len(dut.h.beats))]
    res_h = [dut.h.results[i] for i in range(len(dut.h.results))]
    BD, RD = len(beat_h), len(res_h)
    timeout_ns = 5 * j["timeout_cycles"]  # the harness runs a processor cycle per clk edge: 5 ns
    raw, cur = [], []
    wr = rd = 0  # beats written, result beats read
    t_io = t_run = 0.0
    services = 0
    cpu0, t0 = time.process_time(), time.perf_counter()

    def refill(space):
        nonlocal wr
        k = min(space, len(words) - wr)
        for i in range(wr, wr + k):
            beat_h[i % BD].value = words[i]
        wr += k
        dut.fill.value = k
        dut.eof.value = int(wr == len(words))

    refill(BD)
    await pulse(dut, dut.start)
    while True:
        t1 = time.perf_counter()
        if not int(dut.attn.value):
            await with_timeout(RisingEdge(dut.attn), timeout_ns, "ns")
        t2 = time.perf_counter()
        services += 1
        n = int(dut.n_res.value)
        for i in range(rd, rd + n):
            b = res_h[i % RD].value.to_unsigned()
            cur.append(b)
            if b >> tag_shift == tag_end:
                raw.append(cur)
                cur = []
        rd += n
        if int(dut.done.value):
            t_run, t_io = t_run + t2 - t1, t_io + time.perf_counter() - t2
            break
        refill(BD - int(dut.avail.value))
        dut.drain.value = n
        t_run, t_io = t_run + t2 - t1, t_io + time.perf_counter() - t2
        await pulse(dut, dut.ack)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if cur:
        raise RuntimeError(f"{len(cur)} result beats after the last END beat")
    stats = {"sim_cycles": int(dut.cycles.value), "wall_s": wall, "cpu_s": cpu, "wait_s": t_run, "io_s": t_io,
             "services": services, "beats": len(words), "result_beats": rd}
    if "mem" in j:
        stats["mem"] = {k: int(getattr(dut, f"mem_{k}").value)
                        for k in ("violations", "first_violation", "bursts", "beats_requested", "beats_sent")}
    cosim.answer({"results": raw, "stats": stats})
    await Timer(10, "ns")
