"""Move the register behind each ECP5 block-RAM read port into the RAM (DP16KD `REGMODE = OUTREG`).

Yosys' `synth_ecp5` maps a memory to DP16KD without its output register, so
every read costs the RAM's full clock-to-out (5.61 ns in nextpnr's model at
the default speed grade; 0.97 ns from the output register) and no path that
starts at a block RAM can meet 150 MHz. Stock Yosys does not fold a register
into the RAM, so this pass does it on the netlist JSON between Yosys and
nextpnr.

A read port's data is moved into the RAM only when the result is the same
circuit: every used output bit of the port drives exactly one cell, the DI
input of a TRELLIS_FF clocked by the port's clock, on the rising edge, with no
set/reset (LSR tied low) and no clock enable (the RAM's output register is
then enabled with OCE = 1). Such a flip-flop is removed and its Q net is
driven by the RAM output instead, with the output register turned on. The RTL
makes this the rule (hw/sequencer.py `ram_q`), and the memories carry
`no_rw_check`, so Yosys puts no collision-bypass LUT between RAM and register.

A 36-bit pseudo-dual-port RAM (DATA_WIDTH_A = 36: A writes, B reads all 36
bits on DOA and DOB) has one output register for both halves: nextpnr sets
REGMODE_A and REGMODE_B alike for it (its PDPW16KD conversion), and so does
this pass, with both OCE high. A true dual-port RAM has one per port.
"""
from __future__ import annotations

import json
from pathlib import Path


def param_int(v) -> int:
    """An integer cell parameter of a Yosys JSON netlist (written as a binary string, or a plain number)."""
    return int(v, 2) if isinstance(v, str) and v and set(v) <= {"0", "1"} else int(v)


def _sinks(mod: dict) -> dict:
    """net bit -> [(cell name or None for a module port, port name)] of every reader."""
    out: dict = {}
    for cname, c in mod["cells"].items():
        dirs = c.get("port_directions", {})
        for p, bits in c["connections"].items():
            if dirs.get(p) == "input":
                for b in bits:
                    out.setdefault(b, []).append((cname, p))
    for pname, pv in mod.get("ports", {}).items():
        if pv["direction"] != "input":
            for b in pv["bits"]:
                out.setdefault(b, []).append((None, pname))
    return out


def _groups(cell: dict) -> list:
    """(output-register name(s), data-out pin prefix(es), clock pin) of each read side of a DP16KD."""
    if param_int(cell["parameters"].get("DATA_WIDTH_A", "0")) == 36:
        return [(("A", "B"), ("DOA", "DOB"), "CLKB")]
    return [(("A",), ("DOA",), "CLKA"), (("B",), ("DOB",), "CLKB")]


def _why_not(cells: dict, sinks: dict, con: dict, pins: list, clk: str) -> tuple[str | None, dict]:
    """(None, {pin: flip-flop}) when every used pin feeds one plain flip-flop on clk, else (reason, {})."""
    ffs = {}
    for p in pins:
        s = sinks.get(con[p][0], [])
        if not s:
            continue
        if len(s) != 1:
            return f"{p} has {len(s)} loads", {}
        cname, port = s[0]
        if cname is None:
            return f"{p} drives the module port {port}", {}
        f = cells[cname]
        if f["type"] != "TRELLIS_FF" or port != "DI":
            return f"{p} drives {f['type']}.{port}, not a flip-flop's DI", {}
        fp, fc = f["parameters"], f["connections"]
        if fc.get("CLK") != con.get(clk) or fp.get("CLKMUX", "CLK") != "CLK":
            return f"{p}: flip-flop {cname} is not on {clk}'s rising edge", {}
        if fc.get("LSR", ["0"]) != ["0"]:
            return f"{p}: flip-flop {cname} has a set/reset", {}
        if str(fp.get("CEMUX", "CE")).strip() != "1" and fc.get("CE", ["1"]) != ["1"]:
            return f"{p}: flip-flop {cname} has a clock enable", {}
        ffs[p] = cname
    if not ffs:
        return "no output used", {}
    if con.get("RSTB" if clk == "CLKB" else "RSTA", ["0"]) != ["0"]:
        return "the RAM's reset is used", {}
    return None, ffs


def absorb(netlist: dict) -> dict:
    """Rewrite the Yosys JSON netlist in place; returns what was done:
    {"ports": read sides with a used output, "absorbed": [...], "kept": [{"ram", "side", "why"}], "flip_flops_removed": n}."""
    done, kept, removed, seen = [], [], 0, 0
    for mod in netlist["modules"].values():
        cells = mod.get("cells", {})
        sinks = _sinks(mod)
        for cname in sorted(n for n, c in cells.items() if c["type"] == "DP16KD"):
            c = cells[cname]
            con = c["connections"]
            for regs, prefixes, clk in _groups(c):
                pins = sorted(p for p in con if p.startswith(prefixes))
                side = "+".join(regs)
                seen += 1
                why, ffs = _why_not(cells, sinks, con, pins, clk)
                if why == "no output used":   # a write-only side of a true dual-port RAM
                    seen -= 1
                    continue
                if why:
                    kept.append({"ram": cname, "side": side, "why": why})
                    continue
                for p, ff in ffs.items():
                    con[p] = cells[ff]["connections"]["Q"]
                    del cells[ff]
                for r in regs:
                    c["parameters"][f"REGMODE_{r}"] = "OUTREG"
                    con[f"OCE{r}"] = ["1"]
                    c.setdefault("port_directions", {})[f"OCE{r}"] = "input"
                done.append({"ram": cname, "side": side, "bits": len(ffs)})
                removed += len(ffs)
    return {"ports": seen, "absorbed": done, "kept": kept, "flip_flops_removed": removed}


def absorb_file(src, dst) -> dict:
    """absorb() on a netlist file, written to dst (may be src)."""
    j = json.loads(Path(src).read_text())
    rep = absorb(j)
    Path(dst).write_text(json.dumps(j))
    return rep
