"""`logspike sim` end to end: the results file equals `logspike golden`'s, in both modes; bad input is one line."""
import numpy as np
import pytest

from logspike.model import randnet
from logspike.cli import main
from logspike.model.package import write


def _sim_equals_golden(tmp_path, pkg, x, lanes):
    """Run pkg on x through `logspike golden` and `logspike sim --lanes`; every results key must be equal.
    Returns the RTL's cycles per inference."""
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    args = ["--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy")]
    assert main(["golden"] + args + ["--out", str(tmp_path / "g.npz")]) == 0
    assert main(["sim"] + args + ["--out", str(tmp_path / "r.npz"), "--lanes", str(lanes)]) == 0
    with np.load(tmp_path / "g.npz") as g, np.load(tmp_path / "r.npz") as r:
        assert sorted(g.files) == sorted(r.files)
        for k in g.files:
            assert np.array_equal(g[k], r[k]), k
    return np.load(tmp_path / "r.cycles.npy")


@pytest.mark.parametrize("mode,seed", [("ttfs", 5), ("multistep", 6)])
def test_sim_command_matches_golden_command(mode, seed, tmp_path):
    rng = np.random.default_rng(seed)
    pkg = randnet.random_package(rng, mode, "conv", weight_bits=5, frac_bits=10, tau=2 if mode == "ttfs" else None,
                                 **({"leak_shift": 1} if mode == "multistep" else {}))
    cycles = _sim_equals_golden(tmp_path, pkg, randnet.random_inputs(rng, pkg, 5), lanes=2)
    assert len(cycles) == 5 and (cycles > 0).all()


def test_sim_command_with_external_weights_sharded_matches_golden(tmp_path):
    """`logspike sim --weights external`, two local processes (one model built, each shard its own memory model
    with a latency and a bandwidth limit): the results file equals `logspike golden`'s."""
    rng = np.random.default_rng(9)
    pkg = randnet.random_package(rng, "ttfs", "conv", weight_bits=5, frac_bits=10, tau=2)
    x = randnet.random_inputs(rng, pkg, 5)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    args = ["--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy")]
    assert main(["golden"] + args + ["--out", str(tmp_path / "g.npz")]) == 0
    assert main(["sim"] + args + ["--out", str(tmp_path / "r.npz"), "--lanes", "2", "--weights", "external",
                                  "--axi-data-bits", "64", "--mem-latency", "60", "--mem-bandwidth", "1.5",
                                  "--jobs", "2", "--shard-size", "3"]) == 0
    with np.load(tmp_path / "g.npz") as g, np.load(tmp_path / "r.npz") as r:
        assert sorted(g.files) == sorted(r.files) and all(np.array_equal(g[k], r[k]) for k in g.files)


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
    _sim_equals_golden(tmp_path, pkg, randnet.random_inputs(rng, pkg, 3), lanes)


# the high corner of ttfs and the long, leaky corner of multistep (SPEC 1.1); the campaign slice
# (cocotb_tests/test_fuzz.py) draws the rest of the range (W 2-8, F 8-24, T_max from 1) on its three builds
CORNERS = {
    "ttfs W=8 F=24 tau=64 T=200": dict(mode="ttfs", kind="conv", weight_bits=8, frac_bits=24, tau=64, time_steps=200),
    "multistep W=2 F=8 T_max=4095 leak=31": dict(mode="multistep", kind="dense", weight_bits=2, frac_bits=8,
                                                  time_steps=4095, leak_shift=31, margin=None),
}


@pytest.mark.parametrize("corner", list(CORNERS))
def test_sim_runs_packages_at_the_corners(corner, tmp_path):
    kw = dict(CORNERS[corner])
    rng = np.random.default_rng(len(corner))
    pkg = randnet.random_package(rng, kw.pop("mode"), kw.pop("kind"), **kw)
    _sim_equals_golden(tmp_path, pkg, randnet.random_inputs(rng, pkg, 2), lanes=2)
