"""`logspike synth`: synthesise (and place and route) a processor build; JSON + Markdown report.

    logspike synth --target ecp5|ice40|generic [--lanes N] [--package DIR] --json OUT.json [--md OUT.md] [--freq MHz]

Without --package the build is sized for the digits CNN (see synth.builds).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def run(target: str, lanes: int = 4, package=None, freq: float = 150.0, workdir=None, log=print) -> dict:
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
    res = synthesize(v, "logspike", target, freq_mhz=freq, workdir=wd, log=log)
    res["config"] = asdict(cfg)
    res["package"] = desc
    res["times_s"]["verilog"] = round(prog.elapsed - res["times_s"]["total"], 1)
    return res


def cmd_synth(a):
    from .flow import markdown

    res = run(a.target, a.lanes, a.package, a.freq, a.workdir)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"results -> {a.json}")
    if a.md:
        Path(a.md).parent.mkdir(parents=True, exist_ok=True)
        Path(a.md).write_text(markdown(res))
        print(f"report -> {a.md}")


def register(sub):
    p = sub.add_parser("synth", help="synthesise / place and route a processor build (yowasp Yosys + nextpnr)")
    p.add_argument("--target", choices=("ecp5", "ice40", "generic"), default="ecp5")
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.add_argument("--package", default=None, help="size the build for this package (default: the digits CNN)")
    p.add_argument("--json", required=True, help="results JSON")
    p.add_argument("--md", default=None, help="Markdown report")
    p.add_argument("--freq", type=float, default=150.0, help="requested clock in MHz (nextpnr reports the achieved Fmax)")
    p.add_argument("--workdir", default=None, help="where netlists and logs go (default out/synth/TARGET_pLANES)")
    p.set_defaults(fn=cmd_synth)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="logspike")
    register(ap.add_subparsers(dest="cmd", required=True))
    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
