"""`logspike sim` end to end: the results file equals `logspike golden`'s, in both modes; bad input is one line."""
import numpy as np
import pytest

from logspike.model import randnet
from logspike.cli import main
from logspike.model.package import write


@pytest.mark.parametrize("mode,seed", [("ttfs", 5), ("multistep", 6)])
def test_sim_command_matches_golden_command(mode, seed, tmp_path):
    rng = np.random.default_rng(seed)
    pkg = randnet.random_package(rng, mode, "conv", weight_bits=5, frac_bits=10, tau=2 if mode == "ttfs" else None,
                                 **({"leak_shift": 1} if mode == "multistep" else {}))
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", randnet.random_inputs(rng, pkg, 5))
    args = ["--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy")]
    assert main(["golden"] + args + ["--out", str(tmp_path / "g.npz")]) == 0
    assert main(["sim"] + args + ["--out", str(tmp_path / "r.npz"), "--lanes", "2"]) == 0
    with np.load(tmp_path / "g.npz") as g, np.load(tmp_path / "r.npz") as r:
        assert sorted(g.files) == sorted(r.files)
        for k in g.files:
            assert np.array_equal(g[k], r[k]), k
    cycles = np.load(tmp_path / "r.cycles.npy")
    assert len(cycles) == 5 and (cycles > 0).all()


def test_sim_command_refuses_bad_input_before_building(tmp_path, capsys):
    rng = np.random.default_rng(7)
    pkg = randnet.random_package(rng, "ttfs", "dense", weight_bits=5, frac_bits=10)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype=np.int64))
    base = ["sim", "--package", str(tmp_path / "pkg"), "--out", str(tmp_path / "r.npz")]
    assert main(base + ["--inputs", str(tmp_path / "x.npy")]) == 2
    assert "input_shape" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", randnet.random_inputs(rng, pkg, 2))
    assert main(base + ["--inputs", str(tmp_path / "x.npy"), "--lanes", "3"]) == 2
    assert "lanes = 3" in capsys.readouterr().err


@pytest.mark.parametrize("T,tau,lanes", [(255, 1, 1)])
def test_sim_runs_ttfs_packages_up_to_the_largest_T(T, tau, lanes, tmp_path):
    """T up to 255 (SPEC 1.1) builds and runs bit-exact: the config decoder's register selects grow with
    max_t (once an assertion at T > 16)."""
    rng = np.random.default_rng(T)
    pkg = randnet.random_package(rng, "ttfs", "conv", weight_bits=5, frac_bits=12, tau=tau, time_steps=T)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", randnet.random_inputs(rng, pkg, 3))
    args = ["--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy")]
    assert main(["golden"] + args + ["--out", str(tmp_path / "g.npz")]) == 0
    assert main(["sim"] + args + ["--out", str(tmp_path / "r.npz"), "--lanes", str(lanes)]) == 0
    with np.load(tmp_path / "g.npz") as g, np.load(tmp_path / "r.npz") as r:
        assert sorted(g.files) == sorted(r.files) and all(np.array_equal(g[k], r[k]) for k in g.files)
