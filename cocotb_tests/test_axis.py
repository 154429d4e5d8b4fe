"""The AXI4-Stream build (hw/axis.py) under cocotbext-axi's AxiStreamSource / AxiStreamSink / AxiStreamMonitor:
random ttfs and multistep packages of dense and conv layers, back to back on one build, random source
pauses and sink backpressure, bit-exact against model.golden; and the protocol-error flag."""
import numpy as np
import pytest

from common import CFG, check, make_ms, make_pkg
from logspike.hw import axis, cosim, image
from logspike.hw.protocol import Tag, res_layout
from logspike.model import golden, randnet

TOP = "logspike_axis"
PORTS = ("s_axis_cfg", "s_axis_inp", "m_axis_res")
SIGNALS = ("tdata", "tkeep", "tlast", "tvalid", "tready")


def _build(width=None):
    rw = ["clk", "rst"] + [f"{p}__{s}" for p in PORTS for s in SIGNALS]
    return cosim.build(cosim.verilog_of(axis.AxiStreamProcessor(CFG, width=width), TOP), TOP, public_rw=rw,
                       public_rd=["protocol_error", "busy"])


def _job(steps, seed, pause, stall, width=None):
    """bytes: per port, the bytes of one beat on the wire (its transfers' TDATA, lowest first)."""
    w = axis.port_widths(CFG, width)
    return {"seed": seed, "pause": pause, "stall": stall, "steps": steps,
            "bytes": {p: w[p]["tkeep_bits"] * w[p]["transfers"] for p in PORTS}}


def _cases():
    """Packages whose three images give three different outputs, the multistep ones exiting at
    different steps (asserted), so a beat lost or swapped between images shows."""
    cases = []
    for seed, kind, tau in ((52, "dense", 2), (51, "conv", 1), (53, "conv", 4)):
        pkg, rng = make_pkg(seed, kind, tau)
        cases.append((pkg, randnet.random_inputs(rng, pkg, 3, silent=0.3)))
    for seed, kind in ((63, "dense"), (62, "conv")):
        cases.append(make_ms(seed, kind, batch=3))
    for pkg, x in cases:
        want = golden.run(pkg, x)
        assert len({str(v) for v in want["logits"].tolist()}) == len(x)
        assert pkg.manifest["mode"] == "ttfs" or len(set(want["exit_step"].tolist())) > 1
    return cases


@pytest.mark.parametrize("pause,stall,seed,width", [(0.0, 0.0, 1, None), (0.3, 0.5, 2, None), (0.3, 0.5, 4, 32)])
def test_axi_stream_bit_exact_back_to_back(tmp_path, pause, stall, seed, width):
    """width 32: 32-bit ports, a config beat in 12 transfers, a result beat in 5 (an input word in 1)."""
    cases = _cases()
    assert {p.manifest["mode"] for p, _ in cases} == {"ttfs", "multistep"}
    steps = []
    for pkg, x in cases:
        steps += [{"cfg": image.config_beats(CFG, pkg)}, {"infer": [image.input_beats(CFG, pkg, xi) for xi in x]}]
    if width:
        w = axis.port_widths(CFG, width)
        assert [w[p]["transfers"] for p in PORTS] == [12, 1, 5]
    ans = cosim.run(_build(width), TOP, "tb_axis", tmp_path, _job(steps, seed, pause, stall, width))
    pos = 0
    for pkg, x in cases:
        got = ans["results"][pos:pos + len(x)]
        for beats in got:   # TLAST marks the END beat and only it: one packet per inference
            tags = [b >> TAG_SHIFT for b in beats]
            assert tags[-1] == Tag.END and Tag.END not in tags[:-1]
        check(pkg, x, got)
        pos += len(x)
    assert pos == len(ans["results"])
    assert ans["monitored_results"] == ans["results"]   # the monitor saw exactly the beats the sink took
    assert ans["inputs_seen_as_sent"]
    assert ans["protocol_error"] == [0] * len(steps)


@pytest.mark.parametrize("width", [None, 32])
def test_axi_stream_protocol_error(tmp_path, width):
    """A one in the padding above a config beat's payload, then a null byte in an input packet: each
    raises protocol_error until reset; the padding is dropped (the package loads as sent, so its
    inference is still bit-exact) and the null byte reads as zero."""
    w = axis.port_widths(CFG, width)["s_axis_cfg"]
    assert w["tdata_bits"] * w["transfers"] > w["payload_bits"], "CFG's config beat has no padding to test"
    pkg, rng = make_pkg(61, "conv", 2)
    x = randnet.random_inputs(rng, pkg, 2, silent=0.3)
    beats = [image.input_beats(CFG, pkg, xi) for xi in x]
    # a byte of image 1 whose symbol, read as 0, changes the results (the first such in stream order)
    assert CFG.sym_bits == 8 and axis.port_widths(CFG)["s_axis_inp"]["tkeep_bits"] == CFG.lanes, "a symbol per byte"
    nat, want = image.nat_index(pkg.input_shape, CFG.lanes), golden.run(pkg, x[1:])
    for byte in np.sort(nat):
        x_null = x[1:].reshape(1, -1).copy()
        x_null[0, nat == byte] = 0
        x_null = x_null.reshape(x[1:].shape)
        if any(not np.array_equal(v, golden.run(pkg, x_null)[k]) for k, v in want.items()):
            break
    else:
        raise AssertionError("no null byte of image 1 would change a result")
    zeroed = image.input_beats(CFG, pkg, x_null[0])
    steps = [{"cfg": image.config_beats(CFG, pkg)}, {"infer": beats},
             {"cfg": image.config_beats(CFG, pkg), "pad_bit": w["payload_bits"]}, {"infer": beats[:1]},
             {"reset": True}, {"infer": [beats[0], zeroed]},
             {"infer": beats, "keep_low": [1, int(byte)]}, {"reset": True}]
    ans = cosim.run(_build(width), TOP, "tb_axis", tmp_path, _job(steps, 3, 0.2, 0.2, width))
    assert ans["protocol_error"] == [0, 0, 1, 1, 0, 0, 1, 0]
    r = ans["results"]
    check(pkg, x, r[0:2])
    check(pkg, x[:1], r[2:3])   # the padding bit was dropped, the package loaded as sent
    check(pkg, np.concatenate([x[:1], x_null]), r[3:5])
    check(pkg, np.concatenate([x[:1], x_null]), r[5:7])   # the null byte read as zero

TAG_SHIFT = res_layout(CFG)["tag"].offset
