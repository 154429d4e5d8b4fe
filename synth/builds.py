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
    from model.package import read

    g = ROOT / "golden" / "digits_cnn" / "package"
    if prefer_golden and (g / "manifest.json").exists():
        return read(g), "golden/digits_cnn (trained, CAT)"
    return shaped_package("cnn", (1, 8, 8)), "digits-CNN-shaped package converted from an untrained normalised net (seed 0)"


def shaped_package(net: str, input_shape, classes: int = 10, seed: int = 0, spec=None):
    """A ttfs package of a given topology from a random float net, normalised on random inputs."""
    import torch

    from model.convert import to_package
    from model.nets import Net, build_spec, normalise
    from model.quant import QuantConfig

    torch.manual_seed(seed)
    n = Net(tuple(input_shape), spec or build_spec(net, tuple(input_shape), classes), batch_norm=False).eval()
    n, _ = normalise(n, torch.rand((64,) + tuple(input_shape)))
    return to_package(n, QuantConfig())


def config_for(pkg, lanes: int):
    from hw.cli import build_for
    from hw.config import fits

    cfg = build_for(pkg, lanes)
    fits(cfg, pkg)
    return cfg


def write_verilog(cfg, out_dir, name: str = "logspike") -> Path:
    """The core's Verilog with source locations kept (so nextpnr's critical path names RTL lines)."""
    from amaranth.back import verilog

    from hw.top import Processor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v = out / f"{name}.v"
    v.write_text(verilog.convert(Processor(cfg), name=name, emit_src=True))
    return v
