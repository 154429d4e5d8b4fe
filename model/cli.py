"""`logspike` command line: train, convert, encode, golden, accuracy (and the hardware commands).

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
        return np.load(p, allow_pickle=False)
    except Exception as e:
        raise CliError(f"{what} {str(p)!r}: not a readable .npy array ({e})") from None


def _quant(a):
    from .quant import QuantConfig

    return QuantConfig(time_steps=a.time_steps, tau=a.tau, frac_bits=a.frac_bits, weight_bits=a.weight_bits, rounding=a.rounding)


def cmd_train(a):
    import torch

    from . import data, train
    from .convert import save_checkpoint

    torch.set_num_threads(max(1, torch.get_num_threads()))
    q = _quant(a)
    d = data.load(a.data)
    cfg = train.TrainConfig(net=a.net, epochs=a.epochs, cat_epochs=a.cat_epochs, seed=a.seed)
    fnet, folded, log2s = train.train_float(d, cfg)
    out = Path(a.out)
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
    from .convert import load_checkpoint, to_package
    from .package import write

    net, meta = load_checkpoint(a.checkpoint)
    pkg = to_package(net, net.quant, acc_bits=a.acc_bits)
    write(pkg, a.out)
    print(f"package ({pkg.mode}, {len(pkg.layers)} layers, acc_bits {pkg.acc_bits}) -> {a.out}")


def cmd_encode(a):
    from . import data
    from .package import read

    pkg = read(a.package)
    d = data.load(a.data)
    split = getattr(d, a.split)
    if list(d.shape) != list(pkg.input_shape) and [int(np.prod(d.shape))] != list(pkg.input_shape):
        raise CliError(f"data {a.data!r} images {list(d.shape)} do not match the package input_shape {pkg.input_shape}")
    x = split.x.reshape((len(split.x),) + tuple(pkg.input_shape))
    if pkg.mode == "ttfs":
        from .arith import encode_value

        arr = encode_value(x, pkg.frac_bits, pkg.thresholds)
    else:
        arr = split.bytes.reshape(x.shape)
    if a.limit:
        arr, y = arr[: a.limit], split.y[: a.limit]
    else:
        y = split.y
    np.save(a.out, arr)
    if a.labels:
        np.save(a.labels, y)
    print(f"{len(arr)} inputs {list(arr.shape)} -> {a.out}")


def cmd_golden(a):
    from . import golden
    from .package import read

    pkg = read(a.package)
    x = _load_npy(a.inputs)
    res = golden.run(pkg, x)
    golden.save_results(res, a.out)
    line = f"{len(x)} inferences -> {a.out}"
    if a.labels:
        y = _load_npy(a.labels, "labels")
        line += f"; accuracy {(res['pred'] == y).mean():.4f}"
    print(line)


def cmd_accuracy(a):
    from .accuracy_report import main as report

    report(Path(a.out), quick=a.quick)


def cmd_demo(a):
    from .demo import run

    run(Path(a.out), quick=a.quick, synth=a.synth)


def _add_quant(p):
    p.add_argument("--time-steps", type=int, default=16, help="TTFS codes T (default 16)")
    p.add_argument("--tau", type=int, default=2, help="codes per octave, a power of 2 (default 2)")
    p.add_argument("--frac-bits", type=int, default=16, help="fixed-point fraction bits F (default 16)")
    p.add_argument("--weight-bits", type=int, default=5, help="log weight bits W incl. sign (default 5)")
    p.add_argument("--rounding", choices=["floor", "nearest"], default="nearest", help="threshold placement")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="logspike", description="Train, convert, verify and build TTFS / multistep SNN processors.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("train", help="train a float ANN then fine-tune it conversion-aware (CAT)")
    p.add_argument("--net", default="cnn", help="mlp | cnn | vgg11 | vgg16")
    p.add_argument("--data", default="digits", help="digits | digits28 | mnist:DIR | cifar10:DIR")
    p.add_argument("--epochs", type=int, default=60)
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
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--labels", default=None, help="also write the labels here")
    p.set_defaults(fn=cmd_encode)

    p = sub.add_parser("golden", help="run the bit-exact golden model; writes the SPEC results file")
    p.add_argument("--package", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--labels", default=None, help="labels .npy: also print the accuracy")
    p.set_defaults(fn=cmd_golden)

    p = sub.add_parser("accuracy", help="digits accuracy report: ANN, CAT ANN, TTFS SNN, no-CAT ablation")
    p.add_argument("--out", default="out/accuracy")
    p.add_argument("--quick", action="store_true", help="fewer epochs (for tests)")
    p.set_defaults(fn=cmd_accuracy)

    p = sub.add_parser("demo", help="the main job on digits: train, convert, golden, RTL, report")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--quick", action="store_true", help="few epochs (smoke runs)")
    p.add_argument("--synth", action="store_true", help="also synthesise for ECP5 (minutes)")
    p.set_defaults(fn=cmd_demo)

    import importlib.util

    for mod in ("hw.cli", "synth.cli"):  # the hardware and synthesis commands register themselves
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(sub)
    return ap


def main(argv=None) -> int:
    from .data import DataError
    from .golden import InputError, OverflowError_
    from .package import PackageError

    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except (CliError, PackageError, InputError, OverflowError_, DataError, FileNotFoundError, ValueError, OSError) as e:
        print(f"logspike: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("logspike: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
