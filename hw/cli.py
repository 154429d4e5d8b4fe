"""`logspike sim` (hook: model.cli can dispatch here): run a package on the RTL.

    python -m hw.cli sim PACKAGE_DIR INPUTS.npy OUT.npz [--lanes P --acc-bits A ...]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(prog="logspike")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sim", help="simulate a package on the generated RTL, write SPEC section 5 results")
    s.add_argument("package")
    s.add_argument("inputs")
    s.add_argument("out")
    s.add_argument("--lanes", type=int, default=4)
    s.add_argument("--acc-bits", type=int, default=None, help="default: the package's acc_bits")
    s.add_argument("--max-neurons", type=int, default=4096)
    s.add_argument("--max-weight-words", type=int, default=65536)
    g = sub.add_parser("verilog", help="emit Verilog + parameter JSON for a build")
    g.add_argument("out_dir")
    g.add_argument("--package", default=None, help="size the build for (and optionally bake) this package")
    g.add_argument("--bake", action="store_true")
    g.add_argument("--lanes", type=int, default=4)
    a = ap.parse_args(argv)

    from model.package import read
    from .config import Config

    if a.cmd == "sim":
        from .sim import simulate
        from model.golden import save_results

        pkg = read(a.package)
        cfg = Config(lanes=a.lanes, weight_bits=pkg.weight_bits, frac_bits=pkg.frac_bits,
                     acc_bits=a.acc_bits or pkg.acc_bits, max_t=max(pkg.time_steps, 1), max_tau=pkg.tau,
                     max_neurons=a.max_neurons, max_inputs=a.max_neurons, max_weight_words=a.max_weight_words,
                     max_layers=len(pkg.layers), max_bias_words=max(64, a.max_neurons // a.lanes))
        res, cycles = simulate(cfg, pkg, np.load(a.inputs))
        save_results(res, a.out)
        print(f"{len(cycles)} inferences, cycles per inference: mean {np.mean(cycles):.0f}, max {max(cycles)}")
    else:
        from .verilog import generate

        if a.package:
            pkg = read(a.package)
            cfg = Config(lanes=a.lanes, weight_bits=pkg.weight_bits, frac_bits=pkg.frac_bits, acc_bits=pkg.acc_bits,
                         max_t=pkg.time_steps, max_tau=pkg.tau, max_layers=len(pkg.layers))
        else:
            pkg, cfg = None, Config(lanes=a.lanes)
        print(generate(cfg, a.out_dir, baked=pkg if a.bake else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
