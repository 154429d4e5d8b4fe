"""`logspike synth`: synthesise (and place and route) a processor build; JSON + Markdown report.

    logspike synth --target ecp5|ice40|generic [--lanes N] [--package DIR] --json OUT.json [--md OUT.md] [--freq MHz]
                  [--no-outreg] [--seeds N [--all-seeds]]

Without --package the build is sized for the digits CNN (see synth.builds).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path


def run(target: str, lanes: int = 4, package=None, freq: float = 150.0, workdir=None, log=print,
        outreg: bool = True, seeds: int = 1, all_seeds: bool = False) -> dict:
    from model.package import read

    from . import builds
    from .flow import Progress, synthesize

    prog = Progress(log)
    if package:
        pkg, desc = read(package), str(package)
    else:
        pkg, desc = builds.digits_cnn_package()
    cfg = builds.config_for(pkg, lanes)
    wd = Path(workdir) if workdir else Path("out") / "synth" / f"{target}_p{lanes}"
    prog(f"generating Verilog for {lanes} lanes ({desc}) ...")
    v = builds.write_verilog(cfg, wd)
    prog(f"Verilog -> {v}")
    res = synthesize(v, "logspike", target, freq_mhz=freq, workdir=wd, log=log, outreg=outreg, seeds=seeds,
                     all_seeds=all_seeds)
    res["config"] = asdict(cfg)
    res["package"] = desc
    res["times_s"]["verilog"] = round(prog.elapsed - res["times_s"]["total"], 1)
    return res


def cmd_synth(a):
    """Every argument is checked, and the tools found, before the minutes of Verilog generation and synthesis."""
    import math

    from hw.config import check_lanes
    from model.cli import CliError, _out_dir, _out_file

    from .flow import markdown, require_tools

    check_lanes(a.lanes)
    if a.no_outreg and a.target != "ecp5":
        raise CliError(f"--no-outreg: only for --target ecp5 (the output-register pass is ECP5's), not {a.target}")
    if a.seeds < 1 or (a.seeds > 1 and a.target != "ecp5"):
        raise CliError(f"--seeds {a.seeds}: must be >= 1, and more than 1 only for --target ecp5")
    if a.all_seeds and a.seeds < 2:
        raise CliError(f"--all-seeds: needs --seeds N with N >= 2 (got --seeds {a.seeds})")
    if not (math.isfinite(a.freq) and a.freq > 0):
        raise CliError(f"--freq {a.freq}: must be a positive clock in MHz")
    out_json = _out_file(a.json, "--json")
    out_md = _out_file(a.md, "--md") if a.md else None
    if a.workdir:
        _out_dir(a.workdir, "--workdir")
    require_tools(a.target)
    res = run(a.target, a.lanes, a.package, a.freq, a.workdir, outreg=not a.no_outreg, seeds=a.seeds,
              all_seeds=a.all_seeds)
    out_json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"results -> {out_json}")
    if out_md:
        out_md.write_text(markdown(res))
        print(f"report -> {out_md}")


def register(sub):
    p = sub.add_parser("synth", help="synthesise / place and route a processor build (yowasp Yosys + nextpnr)")
    p.add_argument("--target", choices=("ecp5", "ice40", "generic"), default="ecp5")
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.add_argument("--package", default=None, help="size the build for this package (default: the digits CNN)")
    p.add_argument("--json", required=True, help="results JSON")
    p.add_argument("--md", default=None, help="Markdown report")
    p.add_argument("--freq", type=float, default=150.0, help="requested clock in MHz (nextpnr reports the achieved Fmax)")
    p.add_argument("--workdir", default=None, help="where netlists and logs go (default out/synth/TARGET_pLANES)")
    p.add_argument("--no-outreg", action="store_true",
                   help="ecp5: place Yosys' netlist as it is, without moving registers into the block RAMs")
    p.add_argument("--seeds", type=int, default=1,
                   help="ecp5 timing closure: place and route with seeds 1..N in turn until one meets --freq; the "
                        "figures are that placement's (or the fastest's if none meets it), every seed's Fmax is reported")
    p.add_argument("--all-seeds", action="store_true",
                   help="with --seeds N: place with every seed even after one meets --freq (the Fmax spread)")
    p.set_defaults(fn=cmd_synth)


def main(argv=None):
    """`python -m synth.cli ...` is `logspike synth ...`: same checks, same one-line errors."""
    import sys

    from model.cli import main as cli_main

    return cli_main(["synth"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
