"""LogSpike: multiplier-free, event-driven spiking-neural-network processors from PyTorch, verified bit-exact.

The Python API over a network package (SPEC.md section 1):

    import logspike
    pkg = logspike.load("golden/digits_cnn/package")
    res = logspike.predict(pkg, x)                     # golden model: the SPEC results dict
    res, cycles = logspike.simulate(pkg, x, lanes=4)   # the same on the RTL (Verilator), cycles per input
    files = logspike.verilog(pkg, "out/rtl", lanes=4)  # logspike.v, logspike.json, logspike.core
    report = logspike.synth(pkg, target="ecp5", lanes=4)

The layers under it, each importing only those below: `logspike.model` (arithmetic, package, golden model,
training, conversion), `logspike.golden` (golden vectors), `logspike.hw` (the processor generator),
`logspike.synth` (synthesis and place and route); `logspike.cli` is the command line.
"""
from __future__ import annotations

__all__ = ["load", "predict", "simulate", "verilog", "synth"]


def load(path):
    """The network package in folder `path` (manifest.json + tensors.npz), validated against SPEC.md."""
    from logspike.model.package import read

    return read(path)


def _checked(pkg, x):
    from logspike.model.golden import check_inputs

    return check_inputs(pkg, x)


def predict(pkg, x) -> dict:
    """The golden model on inputs x (one per row): the SPEC section 5 results as arrays."""
    from logspike.model import golden

    return golden.run(pkg, x)   # checks the inputs against the package


def _build(pkg, lanes: int):
    from logspike.hw.config import build_for, fits

    cfg = build_for(pkg, lanes)
    fits(cfg, pkg)
    return cfg


def simulate(pkg, x, lanes: int = 4) -> tuple[dict, list]:
    """The package on the RTL of the smallest build of `lanes` lanes that holds it: (results, cycles)."""
    from logspike.hw.sim import simulate as run_rtl

    return run_rtl(_build(pkg, lanes), pkg, _checked(pkg, x))


def verilog(pkg, out_dir, lanes: int = 4, bake: bool = False) -> dict:
    """The processor's Verilog sized for the package (its network baked into memory init if `bake`)."""
    from pathlib import Path

    from logspike.hw.verilog import generate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return generate(_build(pkg, lanes), out, baked=pkg if bake else None)


def synth(pkg_path, target: str = "ecp5", lanes: int = 4, freq: float = 150.0, seeds: int = 1, workdir=None) -> dict:
    """Synthesis (and place and route) of the build for the package in folder `pkg_path`: the flow's report."""
    from logspike.synth.builds import synthesize_build
    from logspike.synth.flow import require_tools

    require_tools(target)
    return synthesize_build(target, lanes, str(pkg_path), freq=freq, workdir=workdir, seeds=seeds)
