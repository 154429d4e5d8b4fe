"""Hardware commands of `logspike`: `verilog` and `sim` (registered into model.cli)."""
from __future__ import annotations

import numpy as np


def build_for(pkg, lanes: int, **over):
    """The smallest build of `lanes` lanes that fits this package (capacities from the package).

    A ttfs package gets a build without the multistep datapath; the
    capacities of the mode the package does not use are left at their minimum
    (override them, e.g. multistep / max_steps / max_state_words /
    max_count_words, for a build that must also hold other packages;
    build_for_all does). From 16 lanes on the firing comparator bank is
    time-shared over two cycles (fire_split = 2): at full width it would be
    over a quarter of the logic."""
    from .config import Config, check_lanes, needs

    n = needs(pkg, check_lanes(lanes))
    ttfs = pkg.mode == "ttfs"
    kw = dict(lanes=lanes, weight_bits=pkg.weight_bits, frac_bits=pkg.frac_bits, acc_bits=pkg.acc_bits,
              max_t=pkg.time_steps if ttfs else 1, max_tau=pkg.tau if ttfs else 1, max_layers=n["layers"],
              max_neurons=n["neurons"], max_inputs=n["inputs"], max_weight_words=n["weight_words"],
              max_bias_words=n["bias_words"], max_dim=n["dim"], max_kernel=n["kernel"], max_stride=n["stride"],
              max_steps=max(1, n["steps"]), max_state_words=max(1, n["state_words"]),
              max_count_words=max(1, n["count_words"]), multistep=not ttfs, fire_split=2 if lanes >= 16 else 1,
              # firing compares of frac_bits + 2 bits (thresholds below 4.0), wider if this package needs it
              thr_bits=min(pkg.acc_bits - 1, max([pkg.frac_bits + 2] + [int(v).bit_length() for v in (pkg.thresholds if ttfs else [])])))
    kw.update({k: v for k, v in over.items() if v is not None})
    return Config(**kw)


def build_for_all(pkgs, lanes: int):
    """One build that holds every package: the field-wise largest of their own builds."""
    from .config import Config

    dicts = [build_for(p, lanes).as_dict() for p in pkgs]
    return Config(**{k: max(d[k] for d in dicts) for k in dicts[0]})


def cmd_verilog(a):
    from model.cli import CliError, _out_dir
    from model.package import read

    from .config import Config, check_lanes, fits
    from .verilog import generate

    check_lanes(a.lanes)
    if a.bake and not a.package:
        raise CliError("--bake needs --package: there is no network to bake into the memories")
    out = _out_dir(a.out)
    if a.package:
        pkg = read(a.package)
        cfg = build_for(pkg, a.lanes)
        fits(cfg, pkg)
    else:
        pkg, cfg = None, Config(lanes=a.lanes)
    paths = generate(cfg, out, baked=pkg if a.bake else None)
    print(f"Verilog -> {paths['verilog']}\nparameters and capacity -> {paths['json']}\nFuseSoC core -> {paths['core']}")


def cmd_sim(a):
    from model.cli import _load_inputs, _out_file
    from model.golden import save_results
    from model.package import read

    from .config import check_lanes, fits
    from .sim import simulate

    check_lanes(a.lanes)
    out = _out_file(a.out)
    pkg = read(a.package)
    x = _load_inputs(pkg, a.inputs)
    cfg = build_for(pkg, a.lanes)
    fits(cfg, pkg)  # refused here, before any build or simulation
    res, cycles = simulate(cfg, pkg, x)
    save_results(res, out)
    np.save(out.with_suffix(".cycles.npy"), np.asarray(cycles, dtype=np.int64))
    steps = f"; exit step mean {res['exit_step'].mean():.2f} of T_max {pkg.time_steps}" if pkg.mode == "multistep" else ""
    print(f"{len(x)} inferences on the RTL -> {a.out}; cycles per inference: mean {np.mean(cycles):.0f}, max {max(cycles)}{steps}")


def register(sub):
    p = sub.add_parser("verilog", help="emit the processor's Verilog and a JSON of its parameters and capacity")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--package", default=None, help="size the build for this package")
    p.add_argument("--bake", action="store_true", help="bake the package into memory init (deployable image)")
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.set_defaults(fn=cmd_verilog)

    p = sub.add_parser("sim", help="run a package on the RTL (cocotb + Verilator); writes the SPEC results file")
    p.add_argument("--package", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.set_defaults(fn=cmd_sim)
