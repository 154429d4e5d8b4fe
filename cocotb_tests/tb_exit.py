"""cocotb module: drive the exit controller through the job's samples, one output pass per step."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from logspike.hw import cosim


async def pulse(dut, name):
    getattr(dut, name).value = 1
    await RisingEdge(dut.clk)
    getattr(dut, name).value = 0


@cocotb.test()
async def exit_ctl(dut):
    j = cosim.job()
    A, P = j["A"], j["P"]
    mask = (1 << A) - 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for n in ("start", "advance", "clear", "valid"):
        getattr(dut, n).value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    out = []
    for smp in j["samples"]:
        dut.margin.value, dut.margin_null.value = smp["margin"], smp["null"]
        dut.min_steps.value, dut.t_max.value = smp["min_steps"], smp["t_max"]
        await pulse(dut, "start")
        got = []
        for s, o in enumerate(smp["steps"]):
            if s:
                await pulse(dut, "advance")
            await pulse(dut, "clear")
            K = len(o)
            for w in range(-(-K // P)):
                lanes = o[w * P:(w + 1) * P]
                dut.v.value = sum((v & mask) << (A * l) for l, v in enumerate(lanes))
                dut.mask.value = (1 << len(lanes)) - 1
                dut.addr.value = w
                dut.valid.value = 1
                await RisingEdge(dut.clk)
                dut.valid.value = 0
                await ReadOnly()
                while not int(dut.ready.value):  # lane-serial: P cycles a word
                    await RisingEdge(dut.clk)
                    await ReadOnly()
                await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
            await ReadOnly()
            while int(dut.busy.value):  # the tree and the exit test are pipelined
                await RisingEdge(dut.clk)
                await ReadOnly()
            got.append([int(dut.exit.value), int(dut.step.value), int(dut.pred.value),
                        dut.top1.value.to_signed(), dut.top2.value.to_signed()])
            await RisingEdge(dut.clk)
        out.append(got)
    cosim.answer({"out": out})
