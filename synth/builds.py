"""Which processor build gets synthesised: the default digits-CNN build, or one sized for a package."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def digits_cnn_package(prefer_golden: bool = True):
    """(package, description) of the digits CNN (1x8x8 -> conv16-pool-conv32-pool-dense10).

    The trained golden vector golden/digits_cnn when it exists; otherwise the
    same topology converted from an untrained, normalised float net with the
    default QuantConfig (W=5, F=16, T=16, tau=2): same shape and widths, so
    the same build, only the weights differ.
    """
    from logspike.model.package import read

    g = ROOT / "golden" / "digits_cnn" / "package"
    if prefer_golden and (g / "manifest.json").exists():
        return read(g), "golden/digits_cnn (trained, CAT)"
    from logspike.model.randnet import shaped_package

    return shaped_package("cnn", (1, 8, 8)), "digits-CNN-shaped package converted from an untrained normalised net (seed 0)"


def config_for(pkg, lanes: int, **over):
    from logspike.hw.config import build_for, fits

    cfg = build_for(pkg, lanes, **over)
    fits(cfg, pkg)
    return cfg


def write_verilog(cfg, out_dir, name: str = "logspike") -> Path:
    """The core's Verilog with source locations kept (so nextpnr's critical path names RTL lines)."""
    from amaranth.back import verilog

    from logspike.hw.top import Processor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v = out / f"{name}.v"
    v.write_text(verilog.convert(Processor(cfg), name=name, emit_src=True))
    return v


def synthesize_build(target: str, lanes: int = 4, package=None, freq: float = 150.0, workdir=None, log=print,
                     outreg: bool = True, seeds: int = 1, all_seeds: bool = False, jobs: int = 1,
                     weights: str = "onchip", axi_data_bits: int = 128, placer: str = "default") -> dict:
    """Synthesise (and place and route) the build of `lanes` lanes sized for a package folder (default: the
    digits CNN); the flow's result dict with the build's Config and the package's description added.
    weights="external": the external-weight build (an AXI4 read port of axi_data_bits)."""
    from dataclasses import asdict

    from logspike.model.package import read

    from .flow import Progress, synthesize

    prog = Progress(log)
    if package:
        pkg, desc = read(package), str(package)
    else:
        pkg, desc = digits_cnn_package()
    cfg = config_for(pkg, lanes, weights=weights, axi_data_bits=axi_data_bits)
    wd = Path(workdir) if workdir else Path("out") / "synth" / f"{target}_p{lanes}{'_ext' if cfg.external else ''}"
    prog(f"generating Verilog for {lanes} lanes ({desc}) ...")
    v = write_verilog(cfg, wd)
    prog(f"Verilog -> {v}")
    res = synthesize(v, "logspike", target, freq_mhz=freq, workdir=wd, log=log, outreg=outreg, seeds=seeds,
                     all_seeds=all_seeds, jobs=jobs, placer=placer)
    res["config"] = asdict(cfg)
    res["package"] = desc
    res["times_s"]["verilog"] = round(prog.elapsed - res["times_s"]["total"], 1)
    return res
