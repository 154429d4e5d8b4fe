"""`logspike` command line: train, convert, encode, golden, accuracy, nir-import, nir-export, verilog, image, sim,
synth, fuzz, demo.

The application layer: it sits above the model, hardware and synthesis layers and is the only place
that knows all three.

Every expected failure (bad file, malformed package, wrong inputs, bad
parameter) ends with one line `logspike: error: ...` and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


class CliError(Exception):
    """A user-facing error: printed as one line, no traceback."""


def _load_npy(path, what="inputs") -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{what} {str(p)!r}: no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:
        raise CliError(f"{what} {str(p)!r}: not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray):  # np.load opens a .npz archive as a dict of arrays
        arr.close()
        raise CliError(f"{what} {str(p)!r}: a .npz archive, not one .npy array")
    return arr


def load_inputs(pkg, path) -> np.ndarray:
    """Inputs checked against the package (shape, dtype, range) and non-empty, before any run."""
    from logspike.model.golden import check_inputs

    x = check_inputs(pkg, _load_npy(path))
    if len(x) == 0:
        raise CliError(f"inputs {str(path)!r}: shape {list(x.shape)} holds no samples")
    return x


def _load_labels(path, n: int) -> np.ndarray:
    """Labels for n inputs: integers, shape [n] (checked before the inferences run)."""
    y = _load_npy(path, "labels")
    if y.dtype.kind not in "iu":
        raise CliError(f"labels {str(path)!r}: dtype {y.dtype}, must be integer class indices")
    if y.shape != (n,):
        raise CliError(f"labels {str(path)!r}: shape {list(y.shape)}, must be [{n}] (one per input)")
    return y


def _out_file(path, flag="--out") -> Path:
    """A result file's path; its folder is made now, so a bad path fails before any work."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{flag} {str(p)!r}: is a folder, expected a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"{flag} {str(p)!r}: cannot create its folder {str(p.parent)!r} ({e.strerror or e})") from None
    return p


def _out_dir(path, flag="--out") -> Path:
    """An output folder, made now, so a bad path fails before any work."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f"{flag} {str(p)!r}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"{flag} {str(p)!r}: cannot create the folder ({e.strerror or e})") from None
    return p


def _in_range(flag, v, lo, hi=None, why=""):
    if v < lo or (hi is not None and v > hi):
        limit = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise CliError(f"{flag} {v}: must be {'in ' if hi is not None else ''}{limit}{why}")


def _check_quant(a):
    """The quantizer flags against the package format's limits (model/arith.py), before any training."""
    from logspike.model import arith

    _in_range("--time-steps", a.time_steps, *arith.TTFS_T_RANGE)
    _in_range("--tau", a.tau, *arith.TAU_RANGE)
    if a.tau & (a.tau - 1):
        raise CliError(f"--tau {a.tau}: must be a power of 2 (codes per octave)")
    _in_range("--frac-bits", a.frac_bits, *arith.FRAC_BITS_RANGE)
    _in_range("--weight-bits", a.weight_bits, *arith.WEIGHT_BITS_RANGE, " (sign included)")


def _quant(a):
    from logspike.model.quant import QuantConfig

    return QuantConfig(time_steps=a.time_steps, tau=a.tau, frac_bits=a.frac_bits, weight_bits=a.weight_bits, rounding=a.rounding)


def cmd_train(a):
    import torch

    from logspike.model import data, nets, train
    from logspike.model.convert import save_checkpoint
    from logspike.model.package import PackageError

    if a.net not in nets.ARCHS:
        raise CliError(f"--net {a.net!r}: must be one of {', '.join(nets.ARCHS)}")
    _in_range("--epochs", a.epochs, 1)
    _in_range("--cat-epochs", a.cat_epochs, 0, why=" (0 skips CAT)")
    _in_range("--seed", a.seed, 0, (1 << 63) - 1)
    _check_quant(a)
    out = _out_dir(a.out)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    q = _quant(a)
    d = data.load(a.data)
    try:  # the layer geometry against the images, before any epoch
        nets.complete_layers(d.shape, nets.build_spec(a.net, d.shape, d.classes))
    except PackageError as e:
        raise CliError(f"--net {a.net} does not fit --data {a.data} images {list(d.shape)}: {e}") from None
    cfg = train.TrainConfig(net=a.net, epochs=a.epochs, cat_epochs=a.cat_epochs, seed=a.seed)
    fnet, folded, log2s = train.train_float(d, cfg)
    meta = {"data": a.data, "net": a.net, "log2_scales": log2s, "test_acc_float": train.accuracy(fnet, d.test.x, d.test.y)}
    folded.quant = q  # the float net converts with the same quantizers (no-CAT ablation)
    save_checkpoint(out / "float.pt", folded, meta)
    print(f"float {a.net}: test accuracy {meta['test_acc_float']:.4f} -> {out / 'float.pt'}")
    if a.cat_epochs > 0:
        cat = train.train_cat(folded, d, q, cfg)
        meta = dict(meta, test_acc_cat=train.accuracy(cat, d.test.x, d.test.y))
        save_checkpoint(out / "cat.pt", cat, meta)
        print(f"CAT {a.net}: test accuracy {meta['test_acc_cat']:.4f} -> {out / 'cat.pt'}")


def cmd_convert(a):
    from logspike.model import arith
    from logspike.model.convert import load_checkpoint, to_package
    from logspike.model.package import write

    if a.acc_bits is not None:
        _in_range("--acc-bits", a.acc_bits, *arith.ACC_BITS_RANGE)
    net, meta = load_checkpoint(a.checkpoint)
    if net.quant is None:
        raise CliError(f"checkpoint {a.checkpoint!r}: has no quantizer settings (quant), so it cannot be converted; "
                       "use a checkpoint written by logspike train")
    if a.acc_bits is not None and a.acc_bits < net.quant.frac_bits + 2:
        raise CliError(f"--acc-bits {a.acc_bits}: must be >= frac_bits + 2 = {net.quant.frac_bits + 2} to hold 2^F")
    pkg = to_package(net, net.quant, acc_bits=a.acc_bits)
    write(pkg, _out_dir(a.out))  # the folder only once there is a valid package to put in it
    print(f"package ({pkg.mode}, {len(pkg.layers)} layers, acc_bits {pkg.acc_bits}) -> {a.out}")


def cmd_encode(a):
    from logspike.model import data
    from logspike.model.package import read

    _in_range("--limit", a.limit, 0, why=" (0 keeps the whole split)")
    out = _out_file(a.out)
    labels = _out_file(a.labels, "--labels") if a.labels else None
    pkg = read(a.package)
    d = data.load(a.data)
    split = getattr(d, a.split)
    if list(d.shape) != list(pkg.input_shape) and [int(np.prod(d.shape))] != list(pkg.input_shape):
        raise CliError(f"data {a.data!r} images {list(d.shape)} do not match the package input_shape {pkg.input_shape}")
    if len(split) == 0:
        raise CliError(f"--split {a.split}: data {a.data!r} has no {a.split} images")
    x = split.x.reshape((len(split.x),) + tuple(pkg.input_shape))
    if pkg.mode == "ttfs":
        from logspike.model.arith import encode_value

        arr = encode_value(x, pkg.frac_bits, pkg.thresholds)
    else:
        arr = split.bytes.reshape(x.shape)
    if a.limit:
        arr, y = arr[: a.limit], split.y[: a.limit]
    else:
        y = split.y
    np.save(out, arr)
    if labels:
        np.save(labels, y)
    print(f"{len(arr)} inputs {list(arr.shape)} -> {a.out}")


def _add_shards(p):
    p.add_argument("--jobs", type=int, default=1, help="local processes the inputs are split over (default 1)")
    p.add_argument("--shard-size", type=int, default=None, help="inputs per shard (default: one per process, 4 per cluster worker)")
    p.add_argument("--cluster", default=None, help="local:N: run the shards on a new Dask LocalCluster of N workers")
    p.add_argument("--scheduler", default=None, help="ADDRESS of a running Dask scheduler to run the shards on")


def _shard_args(a) -> dict:
    """--jobs / --shard-size / --cluster / --scheduler -> keyword arguments of shards.run."""
    from logspike import shards

    _in_range("--jobs", a.jobs, 1)
    if a.shard_size is not None:
        _in_range("--shard-size", a.shard_size, 1)
    if a.cluster and a.scheduler:
        raise CliError("--cluster and --scheduler: give one (a new local cluster, or the address of a running one)")
    client = None
    if a.cluster:
        client = shards.connect(local_workers=shards.parse_cluster(a.cluster))
    elif a.scheduler:
        client = shards.connect(scheduler=a.scheduler)
    return {"jobs": a.jobs, "shard_size": a.shard_size, "client": client}


def cmd_golden(a):
    from logspike import shards
    from logspike.model import golden
    from logspike.model.package import read

    out = _out_file(a.out)
    pkg = read(a.package)
    x = load_inputs(pkg, a.inputs)
    y = _load_labels(a.labels, len(x)) if a.labels else None
    kw = _shard_args(a)
    try:
        res = shards.run(shards.golden_shard, pkg, x, **kw)
    finally:
        shards.close(kw["client"])
    golden.save_results(res, out)
    line = f"{len(x)} inferences -> {a.out}"
    if y is not None:
        line += f"; accuracy {(res['pred'] == y).mean():.4f}"
    print(line)


def cmd_accuracy(a):
    from logspike.model.accuracy_report import main as report

    from logspike.model.data import load

    from logspike.model import nets
    from logspike.model.accuracy_report import SETTINGS
    from logspike.model.package import PackageError
    from logspike.model.quant import QuantConfig

    d = load(a.data)  # an unknown or missing data set is refused before any training
    settings = SETTINGS
    if a.nets:
        for n in a.nets:
            if n not in nets.ARCHS:
                raise CliError(f"--nets {n!r}: must be among {', '.join(nets.ARCHS)}")
            try:
                nets.build_spec(n, d.shape, d.classes)
            except (ValueError, PackageError) as e:
                raise CliError(f"--nets {n} does not fit --data {a.data} images {list(d.shape)}: {e}") from None
        settings = [(n, QuantConfig()) for n in a.nets]
    report(_out_dir(a.out), quick=a.quick, data_spec=a.data, settings=settings)


def cmd_demo(a):
    from logspike.demo import run

    if a.synth:  # the synthesis comes last: find its tools before the minutes of training
        from logspike.synth.flow import require_tools

        require_tools("ecp5")
    run(_out_dir(a.out), quick=a.quick, synth=a.synth)


def cmd_nir_import(a):
    from logspike.model import golden, nir_io
    from logspike.model.package import write

    if a.time_steps is not None:
        _in_range("--time-steps", a.time_steps, 1)
    graph = nir_io.read_graph(a.file)
    imp = nir_io.from_nir(graph, a.dt, a.time_steps, a.weight_bits, a.frac_bits, a.margin, a.min_steps)
    pkg = imp.package
    write(pkg, _out_dir(a.out))
    for d in imp.deviations:
        print(f"deviation: {d}")
    print(f"package (multistep, version {pkg.version}, {len(pkg.weighted_indices())} weighted layers, "
          f"T_max {pkg.time_steps}) -> {a.out}")
    if a.data:
        from logspike.model import data

        d = data.load(a.data)
        split = d.test
        n = min(len(split), a.limit or len(split))
        if list(d.shape) != list(pkg.input_shape) and [int(np.prod(d.shape))] != list(pkg.input_shape):
            raise CliError(f"data {a.data!r} images {list(d.shape)} do not match the graph's input {pkg.input_shape}")
        shape = (n,) + tuple(pkg.input_shape)
        x = split.x[:n].reshape(shape)
        ref = nir_io.reference(graph, x, a.dt, pkg.time_steps)[:, -1].argmax(axis=1)
        got = golden.run(pkg, split.bytes[:n].reshape(shape))["pred"]
        y = split.y[:n]
        print(f"accuracy on {n} {a.data} test images: NIR float (dt {a.dt:g}, {pkg.time_steps} steps) "
              f"{100 * (ref == y).mean():.2f}%, imported package (golden model) {100 * (got == y).mean():.2f}%, "
              f"same prediction {100 * (ref == got).mean():.2f}%")


def cmd_nir_export(a):
    import nir

    from logspike.model import nir_io
    from logspike.model.package import read

    pkg = read(a.package)
    graph = nir_io.to_nir(pkg, a.dt)
    out = _out_file(a.out)
    nir.write(str(out), graph)
    sub = nir_io.subtracting_layers(pkg)
    if sub:
        print(f"note: layers {sub} reset by subtracting the threshold; NIR's IF/LIF reset to a value, so tools "
              "other than LogSpike read them as resetting to 0 (LogSpike reads them back exactly)")
    print(f"NIR graph ({len(graph.nodes)} nodes, dt {a.dt:g}) -> {out}")


def _add_weights(p):
    p.add_argument("--weights", choices=("onchip", "external"), default="onchip",
                   help="external: weights and biases in a memory the processor reads through an AXI4 port "
                        "(`logspike image` writes its contents); default onchip (block RAM)")
    p.add_argument("--axi-data-bits", type=int, default=128, help="with --weights external: the AXI4 data width (64, 128, 256)")


def _build_args(a) -> dict:
    """--weights / --axi-data-bits -> Config fields (checked here, before any work)."""
    if a.axi_data_bits not in (64, 128, 256):
        raise CliError(f"--axi-data-bits {a.axi_data_bits}: must be 64, 128 or 256")
    return {"weights": a.weights, "axi_data_bits": a.axi_data_bits}


def cmd_verilog(a):
    from logspike.hw.config import Config, build_for, check_lanes, fits
    from logspike.hw.verilog import generate
    from logspike.model.package import read

    check_lanes(a.lanes)
    over = _build_args(a)
    if a.bake and not a.package:
        raise CliError("--bake needs --package: there is no network to bake into the memories")
    out = _out_dir(a.out)
    if a.package:
        pkg = read(a.package)
        cfg = build_for(pkg, a.lanes, **over)
        fits(cfg, pkg)
    else:
        pkg, cfg = None, Config(lanes=a.lanes, **over)
    if a.axi_width is not None and (a.axi_width < 8 or a.axi_width % 8):
        raise CliError(f"--axi-width {a.axi_width}: must be a positive multiple of 8 bits")
    paths = generate(cfg, out, baked=pkg if a.bake else None, axi_stream=a.axi_stream or a.axi_width is not None,
                     axi_width=a.axi_width)
    print(f"Verilog -> {paths['verilog']}\nparameters and capacity -> {paths['json']}\nFuseSoC core -> {paths['core']}")


def cmd_sim(a):
    from logspike import shards
    from logspike.hw.config import build_for, check_lanes, fits
    from logspike.hw.sim import ExternalMemory
    from logspike.model.golden import save_results
    from logspike.model.package import read

    check_lanes(a.lanes)
    over = _build_args(a)
    _in_range("--mem-latency", a.mem_latency, 0, 65535)
    if a.mem_bandwidth is not None and not 1 / 16 <= a.mem_bandwidth <= 4096:
        raise CliError(f"--mem-bandwidth {a.mem_bandwidth}: must be 1/16 .. 4096 bytes per cycle")
    out = _out_file(a.out)
    pkg = read(a.package)
    x = load_inputs(pkg, a.inputs)
    cfg = build_for(pkg, a.lanes, **over)
    fits(cfg, pkg)  # refused here, before any build or simulation
    mem = ExternalMemory(latency=a.mem_latency, bytes_per_cycle=a.mem_bandwidth)
    kw = _shard_args(a)
    try:
        res = shards.run(shards.sim_shard, shards.sim_job(cfg, pkg, mem), x, **kw)  # built once, here
    finally:
        shards.close(kw["client"])
    cycles = res.pop("cycles").tolist()
    save_results(res, out)
    np.save(out.with_suffix(".cycles.npy"), np.asarray(cycles, dtype=np.int64))
    steps = f"; exit step mean {res['exit_step'].mean():.2f} of T_max {pkg.time_steps}" if pkg.mode == "multistep" else ""
    print(f"{len(x)} inferences on the RTL -> {a.out}; cycles per inference: mean {np.mean(cycles):.0f}, max {max(cycles)}{steps}")


def cmd_synth(a):
    """Every argument is checked, and the tools found, before the minutes of Verilog generation and synthesis."""
    import math

    from logspike.hw.config import check_lanes
    from logspike.synth.builds import synthesize_build
    from logspike.synth.flow import markdown, require_tools

    check_lanes(a.lanes)
    if a.no_outreg and a.target != "ecp5":
        raise CliError(f"--no-outreg: only for --target ecp5 (the output-register pass is ECP5's), not {a.target}")
    if a.seeds < 1 or (a.seeds > 1 and a.target != "ecp5"):
        raise CliError(f"--seeds {a.seeds}: must be >= 1, and more than 1 only for --target ecp5")
    _in_range("--jobs", a.jobs, 1)
    if a.all_seeds and a.seeds < 2:
        raise CliError(f"--all-seeds: needs --seeds N with N >= 2 (got --seeds {a.seeds})")
    if a.placer != "default" and a.target != "ecp5":
        raise CliError(f"--placer {a.placer}: only for --target ecp5 (nextpnr-ecp5's placer), not {a.target}")
    if not (math.isfinite(a.freq) and a.freq > 0):
        raise CliError(f"--freq {a.freq}: must be a positive clock in MHz")
    out_json = _out_file(a.json, "--json")
    out_md = _out_file(a.md, "--md") if a.md else None
    if a.workdir:
        _out_dir(a.workdir, "--workdir")
    over = _build_args(a)
    require_tools(a.target)
    res = synthesize_build(a.target, a.lanes, a.package, a.freq, a.workdir, outreg=not a.no_outreg, seeds=a.seeds,
                           all_seeds=a.all_seeds, jobs=a.jobs, placer=a.placer, **over)
    out_json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"results -> {out_json}")
    if out_md:
        out_md.write_text(markdown(res))
        print(f"report -> {out_md}")


def cmd_image(a):
    from logspike.hw.config import build_for, check_lanes, fits
    from logspike.hw.image import write_external
    from logspike.model.package import read

    check_lanes(a.lanes)
    a.weights = "external"
    over = _build_args(a)
    out = _out_dir(a.out)
    pkg = read(a.package)
    cfg = build_for(pkg, a.lanes, **over)
    fits(cfg, pkg)
    paths = write_external(cfg, pkg, out)
    n = paths["weights"].stat().st_size
    print(f"external memory image ({n} bytes) -> {paths['weights']}\nlayout -> {paths['layout']}")


def cmd_fuzz(a):
    from logspike.hw import fuzz
    from logspike.hw.config import check_lanes

    _in_range("--packages", a.packages, 1)
    _in_range("--group-size", a.group_size, 1)
    _in_range("--jobs", a.jobs, 1)
    _in_range("--seed", a.seed, 0, (1 << 63) - 1)
    lanes = []
    for v in a.lanes.split(","):
        try:
            lanes.append(int(v))
        except ValueError:
            raise CliError(f"--lanes {a.lanes!r}: must be a comma-separated list of powers of two") from None
    for v in lanes:
        check_lanes(v)
        if v > 64:
            raise CliError(f"--lanes {v}: must be at most 64")
    if not 0.0 <= a.shortcuts <= 1.0:
        raise CliError(f"--shortcuts {a.shortcuts}: must be a probability in [0, 1]")
    out = _out_dir(a.out)
    rows = fuzz.run(a.seed, a.packages, a.group_size, lanes, a.jobs, shortcuts=a.shortcuts)
    s = fuzz.write(rows, a.seed, out)
    c = s["counts"]
    print(f"{s['packages']} packages: " + ", ".join(f"{c[o]} {o}" for o in fuzz.OUTCOMES) + f" -> {out / 'fuzz.md'}")
    if c["mismatch"] or c["crash"]:
        raise CliError(f"{c['mismatch']} mismatches and {c['crash']} crashes; the rows are in {out / 'fuzz.md'}")


def _add_quant(p):
    p.add_argument("--time-steps", type=int, default=16, help="TTFS codes T (default 16)")
    p.add_argument("--tau", type=int, default=2, help="codes per octave, a power of 2 (default 2)")
    p.add_argument("--frac-bits", type=int, default=16, help="fixed-point fraction bits F (default 16)")
    p.add_argument("--weight-bits", type=int, default=5, help="log weight bits W incl. sign (default 5)")
    p.add_argument("--rounding", choices=["floor", "nearest"], default="nearest", help="threshold placement")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one `logspike: error:` line like every other error (main catches it)."""

    def error(self, message):
        sub = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        raise CliError(f"{sub}{message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="logspike", description="Train, convert, verify and build TTFS / multistep SNN processors.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train a float ANN then fine-tune it conversion-aware (CAT)")
    p.add_argument("--net", default="cnn", help="mlp | cnn | vgg11 | vgg16 | resnet8 | resnet19")
    p.add_argument("--data", default="digits", help="digits | digits28 | mnist5k | mnist5k32 | mnist5k32x3 | mnist:DIR | cifar10:DIR")
    p.add_argument("--epochs", type=int, default=60, help="float ANN epochs (>= 1)")
    p.add_argument("--cat-epochs", type=int, default=40, help="0 skips CAT (ablation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder for float.pt and cat.pt")
    _add_quant(p)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("convert", help="checkpoint -> ttfs network package")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="package folder")
    p.add_argument("--acc-bits", type=int, default=None, help="default: the proven worst case")
    p.set_defaults(fn=cmd_convert)

    p = sub.add_parser("encode", help="dataset split -> input array for a package (codes or bytes)")
    p.add_argument("--package", required=True)
    p.add_argument("--data", default="digits")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=int, default=0, help="at most this many inputs (0: the whole split)")
    p.add_argument("--out", required=True)
    p.add_argument("--labels", default=None, help="also write the labels here")
    p.set_defaults(fn=cmd_encode)

    p = sub.add_parser("golden", help="run the bit-exact golden model; writes the SPEC results file")
    p.add_argument("--package", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--labels", default=None, help="labels .npy: also print the accuracy")
    _add_shards(p)
    p.set_defaults(fn=cmd_golden)

    p = sub.add_parser("accuracy", help="digits accuracy report: ANN, CAT ANN, TTFS SNN, no-CAT ablation")
    p.add_argument("--out", default="out/accuracy")
    p.add_argument("--data", default="digits", help="digits | digits28 | mnist5k | mnist5k32 | mnist5k32x3 | mnist:DIR | cifar10:DIR")
    p.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    p.add_argument("--nets", nargs="+", default=None,
                   help="these nets at T 16, tau 2 instead of the default rows (e.g. resnet8)")
    p.set_defaults(fn=cmd_accuracy)

    p = sub.add_parser("demo", help="the main job on digits: train, convert, golden, RTL, report")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--quick", action="store_true", help="few epochs (smoke runs)")
    p.add_argument("--synth", action="store_true", help="also synthesise for ECP5 (minutes)")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("nir-import", help="a NIR graph (snnTorch, Norse, Sinabs, ... exports) as a multistep package")
    p.add_argument("file", help="the .nir file")
    p.add_argument("--out", required=True, help="package folder to write")
    p.add_argument("--dt", type=float, required=True, help="simulation time step in seconds (snnTorch exports: 1e-4)")
    p.add_argument("--time-steps", type=int, default=None, help="T_max (required unless the file carries it)")
    p.add_argument("--weight-bits", type=int, default=None, help="W (default 5, or the file's)")
    p.add_argument("--frac-bits", type=int, default=None, help="F (default 16, or the file's)")
    p.add_argument("--margin", type=int, default=None, help="early-exit margin (default none: run T_max steps)")
    p.add_argument("--min-steps", type=int, default=None, help="early-exit min_steps (default 1)")
    p.add_argument("--data", default=None, help="also report accuracy before and after on this data set's test split")
    p.add_argument("--limit", type=int, default=0, help="with --data: at most this many test images")
    p.set_defaults(fn=cmd_nir_import)

    p = sub.add_parser("nir-export", help="a multistep package as a NIR graph")
    p.add_argument("--package", required=True, help="package folder")
    p.add_argument("--out", required=True, help=".nir file to write")
    p.add_argument("--dt", type=float, default=1e-4, help="the time step the graph's time constants assume (default 1e-4)")
    p.set_defaults(fn=cmd_nir_export)

    p = sub.add_parser("verilog", help="emit the processor's Verilog and a JSON of its parameters and capacity")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--package", default=None, help="size the build for this package")
    p.add_argument("--bake", action="store_true", help="bake the package into memory init (deployable image)")
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.add_argument("--axi-stream", action="store_true",
                   help="AXI4-Stream ports (s_axis_cfg, s_axis_inp, m_axis_res) instead of the native streams")
    p.add_argument("--axi-width", type=int, default=None,
                   help="AXI4-Stream ports of this TDATA width in bits (wider beats take several transfers)")
    _add_weights(p)
    p.set_defaults(fn=cmd_verilog)

    p = sub.add_parser("image", help="the external memory's contents for an external-weight build (weights.bin, layout.json)")
    p.add_argument("--package", required=True, help="package folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    p.add_argument("--axi-data-bits", type=int, default=128, help="the AXI4 data width of the build (64, 128, 256)")
    p.set_defaults(fn=cmd_image)

    p = sub.add_parser("sim", help="run a package on the RTL (cocotb + Verilator); writes the SPEC results file")
    p.add_argument("--package", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lanes", type=int, default=4, help="P, output neurons per cycle (power of 2)")
    _add_weights(p)
    p.add_argument("--mem-latency", type=int, default=20,
                   help="with --weights external: the memory model's latency in cycles (default 20)")
    p.add_argument("--mem-bandwidth", type=float, default=None,
                   help="with --weights external: the memory model's bytes per cycle (default: a beat a cycle)")
    _add_shards(p)
    p.set_defaults(fn=cmd_sim)

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
    p.add_argument("--jobs", type=int, default=1, help="with --seeds N: placements run at once (default 1)")
    from logspike.synth.flow import PLACERS   # standard library only: cheap at parser time

    p.add_argument("--placer", choices=tuple(PLACERS), default="default",
                   help="ecp5: nextpnr's placer settings; timing weighs timing more (synth.flow.PLACERS): the 16-lane "
                        "builds close 150 MHz with it, but it is not better for every netlist")
    _add_weights(p)
    p.set_defaults(fn=cmd_synth)

    p = sub.add_parser("fuzz", help="random packages over the contract's whole range, golden model against the RTL")
    p.add_argument("--packages", type=int, default=1000, help="packages to draw (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-size", type=int, default=20, help="packages that share one processor build (default 20)")
    p.add_argument("--lanes", default="1,2,4,8,16", help="lane counts the groups draw from (default 1,2,4,8,16)")
    p.add_argument("--jobs", type=int, default=1, help="groups run by this many processes (default 1)")
    p.add_argument("--shortcuts", type=float, default=0.5,
                   help="half the packages get residual shortcuts, each conv layer with this probability "
                        "(default 0.5; 0 draws the campaigns of seeds 0 to 4)")
    p.add_argument("--out", default="out/fuzz", help="folder for fuzz.json and fuzz.md")
    p.set_defaults(fn=cmd_fuzz)
    return ap


def main(argv=None) -> int:
    from logspike.model.data import DataError
    from logspike.model.golden import InputError, OverflowError_
    from logspike.model.package import PackageError
    from logspike.hw.config import ExternalMemoryError
    from logspike.shards import ShardError

    try:
        args = parser().parse_args(argv)
        args.fn(args)
    except (CliError, PackageError, InputError, OverflowError_, DataError, ShardError, ExternalMemoryError,
            FileNotFoundError, ValueError, OSError) as e:
        msg = " ".join(str(e).split())  # one line, even when a library message spans several
        print(f"logspike: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("logspike: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
