"""The logspike CLI: results files equal the golden model's; bad input ends in one line, exit 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from model import golden
from model.cli import main
from model.package import write
from model.randnet import random_inputs, random_package


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
    out = subprocess.run([sys.executable, "-m", "model.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "golden" in out.stdout and "demo" in out.stdout
