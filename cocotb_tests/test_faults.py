"""Resets at random cycles of every phase (config load, input load, compute, result drain), with random
valid gaps and result backpressure, on packages of both modes: nothing lost, nothing duplicated, and
every inference after a reset bit-exact against the golden model."""
import numpy as np
import pytest

from common import CFG, cfg_step, check, infer_step, make_ms, make_pkg
from logspike.hw import image, sim
from logspike.model import randnet


def _cycles(pkg, x, tmp_path):
    """Cycles of each inference and result beats of the first, from one clean run."""
    raw = sim.run_steps(CFG, [cfg_step(pkg), infer_step(pkg, x)], tmp_path)
    check(pkg, x, raw)
    return [c["cycles"] for c in sim.collate(CFG, pkg, raw)[1]], len(raw[0])


@pytest.mark.parametrize("seed", range(3))
def test_resets_at_random_cycles_of_every_phase(seed, tmp_path):
    rng = np.random.default_rng(900 + seed)
    ttfs, rt = make_pkg(910 + seed, ("conv", "dense")[seed % 2], (1, 2, 4)[seed])
    xt = randnet.random_inputs(rt, ttfs, 3)
    ms, xm = make_ms(920 + seed, ("dense", "conv")[seed % 2], batch=3)
    ms.manifest["exit"]["margin"] = None   # every step runs: the compute phase is long enough to land in
    cyc_t, beats_t = _cycles(ttfs, xt, tmp_path / "t")
    cyc_m, beats_m = _cycles(ms, xm, tmp_path / "m")
    cfg_t, cfg_m = image.config_beats(CFG, ttfs), image.config_beats(CFG, ms)
    in_t = len(image.input_beats(CFG, ttfs, xt[0]))

    def some(lo, hi):
        return int(rng.integers(lo, max(lo + 1, hi)))

    steps = [
        cfg_step(ttfs),
        {"cfg": cfg_m, "abort_after": some(1, len(cfg_m)), "gap": 0.3},          # config load (another package)
        cfg_step(ttfs, gap=0.3),                                                  # reload: the table is whole again
        {"inp": image.input_beats(CFG, ttfs, xt[0]), "abort_after": some(1, in_t)},  # input load
        {"inp": image.input_beats(CFG, ttfs, xt[1]), "abort_after": some(in_t + 2, cyc_t[1])},  # compute
        {"inp": image.input_beats(CFG, ttfs, xt[2]), "abort_after_results": some(1, beats_t - 1), "ready_p": 0.3},  # drain
        infer_step(ttfs, xt, gap=0.3, ready_p=0.5),                               # all three, exact
        {"cfg": cfg_t, "abort_after": some(1, len(cfg_t))},                       # config load again
        cfg_step(ms),
        {"inp": image.input_beats(CFG, ms, xm[0]), "abort_after": some(2, cyc_m[0])},   # compute, mid step
        {"inp": image.input_beats(CFG, ms, xm[1]), "abort_after_results": some(1, beats_m - 1), "ready_p": 0.2},
        infer_step(ms, xm, gap=0.2, ready_p=0.6),
    ]
    raw = sim.run_steps(CFG, steps, tmp_path / "faults", seed=seed, max_cycles=2_000_000)
    assert len(raw) == len(xt) + len(xm)   # only the completed inferences answer
    check(ttfs, xt, raw[:len(xt)])
    check(ms, xm, raw[len(xt):])
