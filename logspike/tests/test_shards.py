"""Sharded runs (logspike.shards): local processes and a Dask cluster give the one-process results, byte for byte."""
import os
import signal
import time

import numpy as np
import pytest

from logspike import shards
from logspike.cli import main
from logspike.golden.make import HERE as GOLDEN, load
from logspike.model import golden, randnet
from logspike.model.package import write

distributed = pytest.importorskip("dask.distributed", reason="the cluster extra (dask[distributed]) is a dev dependency")


def _same(a: dict, b: dict, what: str):
    assert sorted(a) == sorted(b), what
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (what, k)
        assert np.array_equal(a[k], b[k]), (what, k)


def test_bounds_cover_the_inputs_once_in_order():
    for n in (0, 1, 7, 100, 359):
        for count in (1, 2, 3, 8, 500):
            spans = shards.bounds(n, count)
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            sizes = [b - a for a, b in spans]
            assert len(spans) == max(1, min(count, n)) and max(sizes) - min(sizes) <= 1, (n, count, sizes)


@pytest.mark.parametrize("net", ["digits_cnn", "digits_atsnn"])  # ttfs and multistep
def test_sharded_golden_equals_one_process(net):
    pkg, inputs, _, _ = load(net)
    x = np.concatenate([inputs, inputs[:50]])  # 409 inputs: no shard size divides them
    one = golden.run(pkg, x)
    for kw in ({"jobs": 2, "shard_size": 37}, {"jobs": 2, "shard_size": 1000}, {"jobs": 2}, {"jobs": 1, "shard_size": 5}):
        _same(shards.run(shards.golden_shard, pkg, x, progress=False, **kw), one, f"{net} {kw}")


def test_sharded_golden_command_writes_the_same_file(tmp_path):
    np.save(tmp_path / "x.npy", load("digits_cnn")[1])
    base = ["golden", "--package", str(GOLDEN / "digits_cnn" / "package"), "--inputs", str(tmp_path / "x.npy")]
    assert main(base + ["--out", str(tmp_path / "one.npz")]) == 0
    assert main(base + ["--out", str(tmp_path / "two.npz"), "--jobs", "2", "--shard-size", "41"]) == 0
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()


def _sim_package(mode: str):
    """The packages of test_cli_sim.test_sim_command_matches_golden_command: the same builds, from the cache."""
    rng = np.random.default_rng(5 if mode == "ttfs" else 6)
    pkg = randnet.random_package(rng, mode, "conv", weight_bits=5, frac_bits=10, tau=2 if mode == "ttfs" else None,
                                 **({"leak_shift": 1} if mode == "multistep" else {}))
    return pkg, randnet.random_inputs(rng, pkg, 11)


@pytest.mark.parametrize("mode", ["ttfs", "multistep"])
def test_sharded_sim_command_equals_one_process(mode, tmp_path):
    pkg, x = _sim_package(mode)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    base = ["sim", "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"), "--lanes", "2"]
    assert main(base + ["--out", str(tmp_path / "one.npz")]) == 0
    assert main(base + ["--out", str(tmp_path / "two.npz"), "--jobs", "2", "--shard-size", "3"]) == 0
    for suffix in (".npz", ".cycles.npy"):
        assert (tmp_path / f"one{suffix}").read_bytes() == (tmp_path / f"two{suffix}").read_bytes(), suffix
    with np.load(tmp_path / "one.npz") as r:
        _same(dict(r), golden.run(pkg, x), f"{mode} sim against golden")


@pytest.fixture(scope="module")
def cluster():
    client = shards.connect(local_workers=2)
    client.wait_for_workers(2, timeout=60)
    yield client
    shards.close(client)


def test_sim_on_a_dask_cluster_equals_one_process(cluster):
    pkg, x = _sim_package("multistep")
    from logspike.hw.config import build_for

    build = shards.sim_job(build_for(pkg, 2), pkg)
    one = shards.sim_shard(build, x)
    _same(shards.run(shards.sim_shard, build, x, client=cluster, shard_size=4, progress=False), one, "dask sim")


def test_dask_worker_killed_mid_run_loses_nothing(cluster):
    """One of two workers dies while shards are in flight; its shards run again on the other (or on the
    worker its nanny restarts) and the merged results are complete and bit-exact."""
    pkg, inputs, _, _ = load("digits_cnn")
    x = np.tile(inputs, (40, 1, 1, 1))  # 14,360 inputs in 40 shards of 359
    one = golden.run(pkg, x)
    pids = cluster.run(os.getpid)  # worker address -> its process on this host
    killed = []

    def kill_one(done, total):
        if done == 2 and not killed:  # shards are still running on both workers
            busy = [w for w, tasks in cluster.processing().items() if tasks] or sorted(pids)
            killed.append(busy[0])
            os.kill(pids[busy[0]], signal.SIGKILL)  # as the kernel's OOM killer would

    res = shards.run(shards.golden_shard, pkg, x, client=cluster, shard_size=len(inputs), progress=False,
                     on_shard=kill_one)
    _same(res, one, "after a worker died")
    assert killed, "no worker was killed: the test did not test anything"
    deadline = time.monotonic() + 30
    while killed[0] in cluster.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed[0] not in cluster.scheduler_info()["workers"], "the killed worker is still registered"


def test_scheduler_that_does_not_answer_is_a_bounded_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shards, "CONNECT_TIMEOUT_S", 2)
    np.save(tmp_path / "x.npy", load("digits_cnn")[1][:3])
    t = time.monotonic()
    rc = main(["golden", "--package", str(GOLDEN / "digits_cnn" / "package"), "--inputs", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "r.npz"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and time.monotonic() - t < 20
    assert err.startswith("logspike: error: --scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 2 s"), err
    assert "\n" not in err and not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize("args,msg", [
    (["--jobs", "0"], "--jobs 0: must be >= 1"),
    (["--shard-size", "0"], "--shard-size 0: must be >= 1"),
    (["--cluster", "remote:3"], "--cluster 'remote:3': must be local:N"),
    (["--cluster", "local:2", "--scheduler", "tcp://x:1"], "--cluster and --scheduler: give one"),
])
def test_bad_shard_options_are_one_line_errors(args, msg, tmp_path, capsys):
    np.save(tmp_path / "x.npy", load("digits_cnn")[1][:3])
    rc = main(["golden", "--package", str(GOLDEN / "digits_cnn" / "package"), "--inputs", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "r.npz")] + args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and "\n" not in err, err
