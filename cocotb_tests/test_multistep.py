"""multistep mode on the same build as ttfs: exit controller against SPEC 4.4, random
multistep packages bit-exact against model.golden (exit_step and spike counts
included), mode switching, backpressure, the trained ATSNN vector, early-exit cycles."""

import numpy as np
import pytest
import torch

from common import CFG, SPLIT, cfg_step, check, infer_step, make_ms, make_pkg, run_back_to_back
from logspike.hw import cosim, image, sim
from logspike.hw.protocol import Global, Sel
from logspike.hw.config import Config, FitError, fits
from logspike.hw.exit import ExitController
from logspike.model import arith, golden, randnet
from logspike.model.package import PackageError



# ---- exit controller -------------------------------------------------------

def test_exit_controller(tmp_path):
    cfg = Config(lanes=4, weight_bits=4, frac_bits=8, acc_bits=14, max_steps=12)
    A = cfg.acc_bits
    lo, hi = arith.signed_range(A)
    rng = np.random.default_rng(3)
    samples = []
    for i in range(40):
        K = int(rng.integers(2, 11))
        t_max = int(rng.integers(1, 13))
        n_steps = int(rng.integers(1, t_max + 1))
        null = bool(rng.random() < 0.2)
        margin = [0, 1, int(rng.integers(0, 200)), int(rng.integers(0, 1 << A)), 1 << (A + 3)][i % 5]
        min_steps = int(rng.integers(1, t_max + 3))
        steps = []
        for s in range(n_steps):
            span = int(rng.choice([3, 50, 1 << (A - 1)]))
            o = rng.integers(max(lo, -span), min(hi, span) + 1, size=K)
            if rng.random() < 0.4:  # ties, of the top value or elsewhere
                o[rng.integers(0, K)] = o.max()
            if rng.random() < 0.1:
                o[:] = o[0]
            if rng.random() < 0.1:  # the widest gap
                o[:] = lo
                o[rng.integers(0, K)] = hi
            steps.append(o.tolist())
        samples.append({"margin": min(margin, 1 << A), "null": int(null), "min_steps": min(min_steps, t_max),
                        "t_max": t_max, "steps": steps, "_margin": None if null else margin, "_min": min_steps})
    bdir = cosim.build(cosim.verilog_of(ExitController(cfg), "exitctl"), "exitctl")
    job = {"A": A, "P": cfg.lanes, "samples": [{k: v for k, v in s.items() if not k.startswith("_")} for s in samples]}
    ans = cosim.run(bdir, "exitctl", "tb_exit", tmp_path, job)
    n_exit = 0
    for smp, got in zip(samples, ans["out"]):
        for s, (o, g) in enumerate(zip(smp["steps"], got), start=1):
            ot = torch.tensor([o], dtype=torch.int64)
            want = bool(arith.exit_now(ot, s, smp["_margin"], smp["_min"], smp["t_max"])[0])
            top = sorted(o)[::-1]
            assert g == [int(want), s, int(arith.argmax_first(ot)[0]), top[0], top[1]], (smp, s, g)
            n_exit += want
    assert n_exit > 10


# ---- processor ---------------------------------------------------------------

def _run(tmp_path, cases, seed=0, **kw):
    """cases: (pkg, x) loaded one after another into ONE build (CFG) and inferred back to back."""
    return run_back_to_back(CFG, cases, tmp_path, seed=seed, **kw)


def _ms_cases(seeds, kind, **kw):
    cases = []
    for s in seeds:
        try:
            cases.append(make_ms(s, kind, **kw))
        except PackageError:  # randnet can draw a kernel wider than a 1-wide map
            continue
    return cases


def test_multistep_dense(tmp_path):
    cases = _ms_cases(range(100, 103), "dense", leak_shift=0) + _ms_cases(range(103, 106), "dense", leak_shift=2)
    _run(tmp_path, cases)
    steps = np.concatenate([golden.run(p, x)["exit_step"] for p, x in cases])
    assert len(set(steps.tolist())) > 2, steps  # samples exit at different steps


def test_multistep_conv(tmp_path):
    cases = _ms_cases(range(200, 203), "conv", leak_shift=0) + _ms_cases(range(203, 206), "conv", leak_shift=3)
    _run(tmp_path, cases)


def test_modes_interleaved_backpressure(tmp_path):
    """ttfs, multistep, ttfs, multistep into the same build, with random stream gaps and ready."""
    t1, rng1 = make_pkg(300, "conv", 2)
    t2, rng2 = make_pkg(301, "dense", 4)
    m1, m2 = make_ms(302, "conv", leak_shift=1), make_ms(303, "dense", leak_shift=0, min_steps=3)
    cases = [(t1, randnet.random_inputs(rng1, t1, 2)), m1, (t2, randnet.random_inputs(rng2, t2, 2)), m2]
    _run(tmp_path, cases, seed=5, gap=0.4, ready_p=0.5)


def test_config_with_input(tmp_path):
    """The same multistep network reloaded with another margin, its config beats offered together with
    an input and the margin beat last: the exit controller takes the margin when the inference starts,
    so the start must wait for that beat's write (two cycles after the beat)."""
    pkg, x = make_ms(410, "dense", leak_shift=1, time_steps=10, batch=1, min_steps=2)
    pkg.manifest["exit"]["margin"] = 65535      # the largest: never exits before T here
    low = pkg.copy()
    low.manifest["exit"]["margin"] = 0          # exits at min_steps
    s_hi, s_lo = golden.run(pkg, x)["exit_step"], golden.run(low, x)["exit_step"]
    assert s_lo[0] < s_hi[0], (s_lo, s_hi)   # the margin decides this sample's exit step
    beats = image.config_beats(CFG, low)
    mb = [b for b in beats if image.config_beat_fields(CFG, b)[:2] == (Sel.GLOBAL, Global.MARGIN)]
    assert len(mb) == 1
    beats = [b for b in beats if b != mb[0]] + mb
    steps = [cfg_step(pkg), infer_step(pkg, x), {"cfg": beats, "with_input": image.input_beats(CFG, low, x[0])}]
    raw = sim.run_steps(CFG, steps, tmp_path, max_cycles=200_000)   # a stalled config fails, not hangs
    check(pkg, x, raw[:1])
    check(low, x, raw[1:])


def test_early_exit_saves_cycles(tmp_path):
    """The same package and inputs with its margin and with margin null: fewer RTL cycles where it exits early."""
    pkg, x = make_ms(400, "dense", leak_shift=1, time_steps=10, batch=6, quantile=0.3)
    off = pkg.copy()
    off.manifest["exit"]["margin"] = None
    (c_on, c_off) = _run(tmp_path, [(pkg, x), (off, x)])
    steps = golden.run(pkg, x)["exit_step"]
    assert (steps < pkg.time_steps).any()
    for s, a, b in zip(steps, c_on, c_off):
        assert (a["cycles"] < b["cycles"]) if s < pkg.time_steps else (a["cycles"] == b["cycles"])


def test_multistep_fits():
    pkg, _ = make_ms(500, "conv", leak_shift=0)
    fits(CFG, pkg)
    for field, over in [("time_steps", {"max_steps": pkg.time_steps - 1}), ("potentials", {"max_state_words": 2}),
                        ("spike counters", {"max_count_words": 1})]:
        with pytest.raises(FitError, match=field):
            fits(Config(**dict(CFG.as_dict(), **over)), pkg)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_multistep_sweep(tmp_path, block):
    kind = ("dense", "conv")[block % 2]
    cases = _ms_cases(range(2000 + 16 * block, 2016 + 16 * block), kind, batch=4,
                      quantile=float(np.random.default_rng(block).uniform(0.2, 0.8)))
    _run(tmp_path, cases, seed=block, gap=0.2 * (block // 2), ready_p=1.0 - 0.3 * (block // 2))


ATSNN_NETS = ("digits_atsnn", "digits_resnet8_atsnn")


@pytest.mark.parametrize("name", ATSNN_NETS)
def test_trained_atsnn(tmp_path, name):
    """The trained ATSNNs (the MLP of the demo, the residual ResNet-8 of the ATSNN table) on every digits
    test image, early exit on, on one 4-lane build: every key equal to the golden model, exit steps
    included."""
    from logspike.golden.make import load
    from logspike.hw.config import build_for_all

    pkg, x, y, want = load(name)
    cfg = build_for_all([load(n)[0] for n in ATSNN_NETS], 4)
    res, cycles = sim.simulate(cfg, pkg, x, test_dir=tmp_path)
    assert sorted(res) == sorted(want)
    for k in want:
        bad = np.flatnonzero((res[k] != want[k]).reshape(len(x), -1).any(1))
        assert len(bad) == 0, f"{k}: {len(bad)} of {len(x)} images differ, first {bad[:5].tolist()}"
    assert (res["pred"] == y).mean() > 0.93 and res["exit_step"].mean() < pkg.time_steps / 4
    assert len(cycles) == len(x) and min(cycles) > 0


def test_multistep_reset_mid_inference(tmp_path):
    """A reset in a later step keeps the network; the next inference starts from zero state."""
    pkg, x = make_ms(600, "conv", leak_shift=2, time_steps=8, batch=2)
    off = pkg.copy()
    off.manifest["exit"]["margin"] = None  # run all steps, so the abort lands mid-run
    steps = [cfg_step(off), {"abort_after": 400, "inp": image.input_beats(CFG, off, x[0])},
             {"abort_after": 3, "inp": image.input_beats(CFG, off, x[1])}, infer_step(off, x)]
    check(off, x, sim.run_steps(CFG, steps, tmp_path))


# ---- version-2 neurons ------------------------------------------------------

@pytest.mark.parametrize("split", [False, True])
def test_multistep_version2_neurons(tmp_path, split):
    """Per-layer leak shifts and resets to a value (SPEC version 2), dense and conv, back to back with
    version-1 packages of both modes on one build (4 lanes; 8 lanes with a split fire bank), with random
    valid gaps and result backpressure: bit-exact; and the new fields change the results."""
    cfg = SPLIT if split else CFG
    rng = np.random.default_rng(820)
    v2 = []
    for s, kind in ((821, "dense"), (822, "conv"), (823, "dense"), (824, "conv")):
        pkg, x = make_ms(s, kind, batch=3)
        v2.append((randnet.with_neurons(pkg, rng, p=0.8), x, pkg))
    v1_ttfs, r = make_pkg(825, "conv", 2)
    cases = [(v2[0][0], v2[0][1]), (v1_ttfs, randnet.random_inputs(r, v1_ttfs, 2)), (v2[1][0], v2[1][1]),
             make_ms(826, "dense", batch=2), (v2[2][0], v2[2][1]), (v2[3][0], v2[3][1])]
    run_back_to_back(cfg, cases, tmp_path, seed=5, gap=0.3, ready_p=0.6)
    assert all(p.version == 2 for p, _, _ in v2)
    assert any("v_reset" in l for p, _, _ in v2 for l in p.layers)
    assert len({p.layer_leak(i) for p, _, _ in v2 for i in p.weighted_indices()[:-1]}) > 1
    changed = sum(any(not np.array_equal(golden.run(p, x)[k], golden.run(p1, x)[k]) for k in golden.run(p, x))
                  for p, x, p1 in v2)
    assert changed >= 3, changed
