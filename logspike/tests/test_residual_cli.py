"""Residual packages (SPEC version 2) from the command line: `logspike golden` runs them (the RTL's
residual tests are cocotb_tests/test_residual.py); a shortcut the processor cannot keep (from three
layers back) is refused by `logspike sim` in one line naming the field."""
import numpy as np

from logspike.cli import main
from logspike.model import golden, randnet
from logspike.model.package import write


def test_golden_runs_a_residual_package(tmp_path, capsys):
    rng = np.random.default_rng(3)
    pkg = randnet.random_residual_package(rng, "multistep")
    write(pkg, tmp_path / "pkg")
    x = randnet.random_inputs(rng, pkg, 3)
    np.save(tmp_path / "x.npy", x)
    args = ["--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy")]
    assert main(["golden", *args, "--out", str(tmp_path / "g.npz")]) == 0
    got = np.load(tmp_path / "g.npz")
    want = golden.run(pkg, x)
    for k in want:
        assert np.array_equal(got[k], want[k]), k


def test_sim_refuses_a_shortcut_from_too_far_back(tmp_path, capsys):
    conv = {"type": "conv2d", "in_shape": [2, 4, 4], "out_channels": 2, "kernel": 3, "stride": 1, "padding": 1}
    layers = [dict(conv) for _ in range(4)] + [{"type": "flatten"}, {"type": "dense", "in": 32, "out": 2}]
    layers[3]["shortcut"] = {"from": 0, "kind": "identity"}
    rng = np.random.default_rng(4)
    pkg = randnet.random_residual_package(rng, "ttfs", layers=layers)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", randnet.random_inputs(rng, pkg, 1))
    capsys.readouterr()
    assert main(["sim", "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("logspike: error: package layers[3].shortcut.from = 0: does not fit this build (3 layers back")
    assert err.count("\n") == 1 and not (tmp_path / "r.npz").exists()
