"""cocotb module: hw/axi_mem.py's AXI4 memory model read by cocotbext-axi's AxiMasterRead, a reference AXI4
manager, with the model's ARREADY and R stalls and a latency.

Job: {"reads": [[byte address, bytes], ...], "size": bytes of the image}.
Answer: {"data": [hex of each read], "violations": the model's protocol-violation count}.
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiMasterRead, AxiReadBus

from logspike.hw import cosim


@cocotb.test()
async def axi_mem(dut):
    j = cosim.job()
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.latency.value, dut.bw16.value = 13, 16 * 6
    dut.ar_stall.value, dut.r_stall.value = 0x4000, 0x5000
    dut.size.value = j["size"]
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    dut.start.value = 1
    await ClockCycles(dut.clk, 2)
    dut.start.value = 0
    master = AxiMasterRead(AxiReadBus.from_prefix(dut, "s_axi_"), dut.clk, dut.rst)
    out = []
    for addr, n in j["reads"]:
        out.append((await master.read(addr, n)).data.hex())
    await ClockCycles(dut.clk, 5)
    cosim.answer({"data": out, "violations": int(dut.violations.value)})
