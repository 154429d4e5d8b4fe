"""cocotb module: the AXI4-Stream build (hw/axis.py) driven by cocotbext-axi's AxiStreamSource and
AxiStreamSink, with random pauses on the sources and random backpressure on the sink, and
AxiStreamMonitors on the input and result ports checking what crossed each port.

Job: {"seed", "pause", "stall", "bytes": {port: TDATA bytes},
      "steps": [{"cfg": [beat, ...], "pad_bit": bit or None} | {"infer": [[beat, ...] per image],
                "keep_low": [image, byte] or None} | {"reset": true}]}
  pad_bit sets a padding bit above the first config beat's payload; keep_low sends that byte of that
  image's packet as a null byte (TKEEP low).
Answer: {"results": [[result beat, ...] per inference], "protocol_error": [flag after each step],
         "inputs_seen_as_sent", "monitored_results"}.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamMonitor, AxiStreamSink, AxiStreamSource

from logspike.hw import cosim


def pauses(rnd, p):
    """An endless pause pattern: each cycle paused with probability p."""
    while True:
        yield rnd.random() < p


def to_bytes(beats, nbytes):
    return b"".join(int(b).to_bytes(nbytes, "little") for b in beats)


def to_beats(data, nbytes):
    assert len(data) % nbytes == 0, f"a packet of {len(data)} bytes is not whole beats of {nbytes}"
    return [int.from_bytes(data[i:i + nbytes], "little") for i in range(0, len(data), nbytes)]


@cocotb.test()
async def axis(dut):
    j = cosim.job()
    rnd = random.Random(j["seed"])
    nb = j["bytes"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    bus = {p: AxiStreamBus.from_prefix(dut, p + "_") for p in ("s_axis_cfg", "s_axis_inp", "m_axis_res")}
    cfg_src = AxiStreamSource(bus["s_axis_cfg"], dut.clk, dut.rst)
    inp_src = AxiStreamSource(bus["s_axis_inp"], dut.clk, dut.rst)
    sink = AxiStreamSink(bus["m_axis_res"], dut.clk, dut.rst)
    inp_mon = AxiStreamMonitor(bus["s_axis_inp"], dut.clk, dut.rst)
    res_mon = AxiStreamMonitor(bus["m_axis_res"], dut.clk, dut.rst)
    for src in (cfg_src, inp_src):
        src.set_pause_generator(pauses(rnd, j["pause"]))
    sink.set_pause_generator(pauses(rnd, j["stall"]))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    results, sent_inputs, errors = [], [], []
    for step in j["steps"]:
        if "cfg" in step:   # one packet of config beats; wait until the core has taken every beat
            beats = list(step["cfg"])
            if step.get("pad_bit") is not None:   # a one in the padding above the payload of the first beat
                beats[0] |= 1 << step["pad_bit"]
            await cfg_src.send(AxiStreamFrame(to_bytes(beats, nb["s_axis_cfg"])))
            await cfg_src.wait()
        elif "infer" in step:   # every image queued at once: the next loads while results drain
            for i, x in enumerate(step["infer"]):
                data = to_bytes(x, nb["s_axis_inp"])
                tkeep = [1] * len(data)
                if step.get("keep_low") is not None and step["keep_low"][0] == i:   # a null byte
                    tkeep[step["keep_low"][1]] = 0
                sent_inputs.append((data, tkeep))
                await inp_src.send(AxiStreamFrame(data, tkeep=tkeep))
            for _ in step["infer"]:
                frame = await sink.recv(compact=False)
                assert set(frame.tkeep) == {1}, "m_axis_res: a TKEEP bit low"
                results.append(to_beats(frame.tdata, nb["m_axis_res"]))
        else:   # the host's reset: the flag holds until it
            dut.rst.value = 1
            await ClockCycles(dut.clk, 2)
            dut.rst.value = 0
            await RisingEdge(dut.clk)
        errors.append(int(dut.protocol_error.value))
    await ClockCycles(dut.clk, 4)
    mon_in, mon_res = [], []
    while not inp_mon.empty():
        f = inp_mon.recv_nowait(compact=False)
        mon_in.append((bytes(f.tdata), list(f.tkeep)))
    while not res_mon.empty():
        mon_res.append(to_beats(res_mon.recv_nowait(compact=False).tdata, nb["m_axis_res"]))
    cosim.answer({"results": results, "protocol_error": errors,
                  "inputs_seen_as_sent": mon_in == sent_inputs,
                  "monitored_results": mon_res})
