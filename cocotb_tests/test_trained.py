"""The trained digits networks (golden/ vectors: MLP, CNN, residual ResNet-8) on every test image, on the RTL,
bit-exact on every key."""
import numpy as np
import pytest

from logspike.golden.make import load
from logspike.hw.config import build_for_all
from logspike.hw.sim import simulate

LANES = 4


TTFS_NETS = ("digits_mlp", "digits_cnn", "digits_resnet8")


def _shared_build():
    """One build that holds every trained TTFS network, so they share one Verilator model."""
    return build_for_all([load(n)[0] for n in TTFS_NETS], LANES)


# the ResNet-8 (72k cycles an image at 4 lanes) on its first 120 images; all 359 run in the RTL-cycles
# benchmark (python -m logspike.hw.bench --net digits_resnet8), which records bit_exact
IMAGES = {"digits_resnet8": 120}


@pytest.mark.parametrize("name", TTFS_NETS)
def test_trained_network_test_images(name, tmp_path):
    pkg, x, y, want = load(name)
    n = IMAGES.get(name, len(x))
    x, y, want = x[:n], y[:n], {k: v[:n] for k, v in want.items()}
    res, cycles = simulate(_shared_build(), pkg, x, test_dir=tmp_path)
    assert sorted(res) == sorted(want)
    for k in want:
        bad = np.flatnonzero((res[k] != want[k]).reshape(len(x), -1).any(1))
        assert len(bad) == 0, f"{k}: {len(bad)} of {len(x)} images differ, first {bad[:5].tolist()}"
    assert (res["pred"] == y).mean() > 0.93
    assert len(cycles) == len(x) and min(cycles) > 0


def test_trained_cnn_on_the_16_lane_build(tmp_path):
    """The build the synthesis figures are for: 16 lanes, ttfs only, firing bank split over two cycles."""
    from logspike.hw.config import build_for

    pkg, x, y, want = load("digits_cnn")
    cfg = build_for(pkg, 16)
    assert cfg.fire_split == 2 and not cfg.multistep
    x, want = x[:40], {k: v[:40] for k, v in want.items()}
    res, _ = simulate(cfg, pkg, x, test_dir=tmp_path)
    for k in want:
        assert np.array_equal(res[k], want[k]), k
