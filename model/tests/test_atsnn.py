"""ATSNN: time-dependent loss, multistep export, and exit rules against the golden model."""
import numpy as np
import pytest
import torch

from logspike.model import data, golden
from logspike.model.atsnn import (SNNConfig, MultistepNet, calibrate, loss_upper_bound, entropy_exit, loss_weights, margin_candidates, margin_exit,
                         td_loss, to_package, train_snn)
from logspike.model.nets import mlp


def test_loss_weights():
    e, u, f = loss_weights("early", 4), loss_weights("uniform", 4), loss_weights("final", 4)
    assert torch.allclose(e, torch.tensor([4.0, 3.0, 2.0, 1.0]) / 10)
    assert torch.allclose(u, torch.full((4,), 0.25)) and f.tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="loss = 'late'"):
        loss_weights("late", 4)


def test_td_loss_is_the_weighted_sum_of_per_step_ce():
    torch.manual_seed(0)
    outs, y = torch.randn(3, 5, 4), torch.tensor([0, 1, 2, 3, 0])
    lam = torch.tensor([0.5, 0.3, 0.2])
    want = sum(lam[t] * torch.nn.functional.cross_entropy(outs[t] / (t + 1), y) for t in range(3))
    assert torch.allclose(td_loss(outs, y, lam), want)


@pytest.fixture(scope="module")
def trained():
    d = data.digits()
    net = train_snn(d, "mlp", SNNConfig(time_steps=8, loss="early"), epochs=12)
    return d, net, to_package(net)


def test_package_runs_like_the_float_net(trained):
    d, net, pkg = trained
    assert pkg.mode == "multistep" and pkg.time_steps == 8 and pkg.exit == {"margin": None, "min_steps": 1}
    res = golden.run(pkg, d.test.bytes)
    with torch.no_grad():
        fpred = net(torch.from_numpy(d.test.bytes))[-1].argmax(1).numpy()
    assert (res["pred"] == d.test.y).mean() > 0.85
    assert (res["pred"] == fpred).mean() >= 0.97  # integer rounding only moves a few borderline images
    assert (res["exit_step"] == 8).all()


def test_margin_exit_on_the_trace_equals_the_golden_model(trained):
    d, _, pkg = trained
    x = d.test.bytes[:120]
    trace = golden.output_trace(pkg, x)
    assert trace.shape == (120, 8, 10)
    for margin, min_steps in ((None, 1), (0, 1), (0, 3), *[(m, 2) for m in margin_candidates(trace, 6)]):
        p = pkg.copy()
        p.manifest["exit"] = {"margin": margin, "min_steps": min_steps}
        res = golden.run(p, x)
        ex, pred = margin_exit(trace, margin, min_steps)
        assert np.array_equal(ex, res["exit_step"]) and np.array_equal(pred, res["pred"]), (margin, min_steps)
        assert np.array_equal(trace[np.arange(120), ex - 1], res["logits"])


def test_calibration_is_the_cheapest_within_budget_at_confidence(trained):
    d, _, pkg = trained
    tv = golden.output_trace(pkg, d.val.bytes)
    full_correct = margin_exit(tv, None)[1] == d.val.y
    cands = margin_candidates(tv, 50)
    m, acc, steps = calibrate(tv, d.val.y, "margin", 0.005, cands)
    ex, pred = margin_exit(tv, m)
    assert (pred == d.val.y).mean() == acc and ex.mean() == steps and steps < 8
    assert loss_upper_bound(full_correct, pred == d.val.y, 0.95) <= 0.005
    for c in cands:  # nothing cheaper meets the budget at 95% confidence
        e2, p2 = margin_exit(tv, c)
        if e2.mean() < steps:
            assert loss_upper_bound(full_correct, p2 == d.val.y, 0.95) > 0.005
    # the plain mean (confidence 0.5) accepts at least as cheap a threshold
    assert calibrate(tv, d.val.y, "margin", 0.005, cands, confidence=0.5)[2] <= steps
    with pytest.raises(ValueError, match="confidence"):
        calibrate(tv, d.val.y, "margin", 0.005, cands, confidence=1.0)


def test_loss_upper_bound_is_paired_mean_plus_z_sd():
    full = np.ones(4, bool)
    # one of four images lost: mean 0.25, sd 0.5, z(0.95) = 1.6449
    assert loss_upper_bound(full, np.array([False, True, True, True]), 0.95) == pytest.approx(0.25 + 1.644854 * 0.5 / 2, abs=1e-6)
    assert loss_upper_bound(full, np.array([False, True, True, True]), 0.5) == pytest.approx(0.25)
    # an exit that changes no image's outcome is bounded by 0, however few the images
    same = np.array([True, False, True, False])
    assert loss_upper_bound(same, same, 0.95) == 0.0
    # one image lost of 359 is within 0.5 points by the mean (0.28) but not at 95% confidence
    full = np.ones(359, bool)
    lost_one = full.copy()
    lost_one[7] = False
    assert loss_upper_bound(full, lost_one, 0.5) < 0.005 < loss_upper_bound(full, lost_one, 0.95)
    # images gained count against images lost
    assert loss_upper_bound(np.array([True, False, True]), np.array([False, True, True]), 0.5) == 0.0


def test_entropy_exit_trades_steps_for_confidence(trained):
    d, _, pkg = trained
    tt = golden.output_trace(pkg, d.test.bytes[:100])
    steps = [entropy_exit(tt, th, pkg.frac_bits)[0].mean() for th in (0.0, 0.01, 0.1, 1.0, 3.0)]
    assert steps[0] == 8 and steps[-1] == 1 and all(a >= b for a, b in zip(steps, steps[1:]))


def test_leaky_net_exports_leak_shift():
    net = MultistepNet((1, 8, 8), mlp((1, 8, 8), (6,), 3), SNNConfig(time_steps=5, leak_shift=2))
    pkg = to_package(net, margin=7, min_steps=2)
    assert pkg.leak_shift == 2 and pkg.exit == {"margin": 7, "min_steps": 2}
    x = np.random.default_rng(0).integers(0, 256, size=(4, 1, 8, 8)).astype(np.uint8)
    assert golden.run(pkg, x)["logits"].shape == (4, 3)


def test_report_scores_its_saved_packages_again(tmp_path):
    """atsnn_report writes both trained packages; --reuse scores them again to the same table, and says what is
    missing where there is nothing to reuse."""
    from logspike.model import atsnn_report

    first = atsnn_report.main(tmp_path / "r", epochs=1)
    again = atsnn_report.main(tmp_path / "r", reuse=True)
    assert atsnn_report.rows_of(first["td"], first["plain"]) == atsnn_report.rows_of(again["td"], again["plain"])
    assert (tmp_path / "r" / "package_plain" / "manifest.json").exists()
    with pytest.raises(SystemExit, match="--reuse: .*empty.*package has no package"):
        atsnn_report.main(tmp_path / "empty", reuse=True)
