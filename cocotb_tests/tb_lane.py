"""cocotb module: drive the standalone PE lane over the job's operand list (combinational)."""
import cocotb
from cocotb.triggers import Timer

from logspike.hw import cosim


@cocotb.test()
async def lane(dut):
    j = cosim.job()
    for i, v in enumerate(j["lut"]):
        getattr(dut, f"lut{i}").value = v
    dut.T.value = j["T"]
    dut.taulog.value = j["taulog"]
    out = []
    dut.graded.value = j.get("graded", 0)
    for t, sign, mag, E in j["ops"]:
        dut.t.value, dut.sign.value, dut.mag.value, dut.E.value = t, sign, mag, E
        await Timer(1, unit="ns")
        out.append(dut.contrib.value.to_signed())
    cosim.answer({"out": out})
