"""cocotb module: drive the firing unit with the job's potential words."""
import cocotb
from cocotb.triggers import Timer

from logspike.hw import cosim


@cocotb.test()
async def firing(dut):
    j = cosim.job()
    A, P, CB = j["A"], j["P"], j["CB"]
    mask = (1 << A) - 1
    TW = j["TW"]   # threshold width (unsigned)
    dut.thr.value = sum(v << (TW * t) for t, v in enumerate(j["thr"]))
    out = []
    for word in j["words"]:
        dut.v.value = sum((v & mask) << (A * l) for l, v in enumerate(word))
        await Timer(1, unit="ns")
        c = int(dut.codes.value)
        out.append([(c >> (CB * l)) & ((1 << CB) - 1) for l in range(P)])
    cosim.answer({"out": out})
