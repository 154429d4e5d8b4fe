"""Residual packages (SPEC version 2): the golden model runs them from the command line; the RTL has no
residual datapath yet, so `logspike sim` refuses them in one line naming the layer's shortcut."""
import numpy as np

from logspike.cli import main
from logspike.model import golden, randnet
from logspike.model.package import write


def test_golden_runs_and_sim_refuses_residual_packages(tmp_path, capsys):
    rng = np.random.default_rng(3)
    pkg = randnet.random_residual_package(rng, "multistep")
    write(pkg, tmp_path / "pkg")
    x = randnet.random_inputs(rng, pkg, 3)
    np.save(tmp_path / "x.npy", x)
    assert main(["golden", "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "g.npz")]) == 0
    got = np.load(tmp_path / "g.npz")
    want = golden.run(pkg, x)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    capsys.readouterr()
    assert main(["sim", "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err
    i = next(i for i, l in enumerate(pkg.layers) if "shortcut" in l)
    assert err.startswith(f"logspike: error: package layers[{i}].shortcut = identity") and "no residual datapath" in err
    assert err.count("\n") == 1 and not (tmp_path / "r.npz").exists()
