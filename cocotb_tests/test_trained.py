"""The trained digits networks (golden/ vectors) on every test image, on the RTL, bit-exact on every key."""
import numpy as np
import pytest

from golden.make import load
from hw.cli import build_for
from hw.config import needs
from hw.sim import simulate

LANES = 4


def _shared_build():
    """One build that holds both trained TTFS networks, so they share one Verilator model."""
    pkgs = [load(n)[0] for n in ("digits_mlp", "digits_cnn")]
    cfg = build_for(pkgs[0], LANES)
    n = [needs(p, LANES) for p in pkgs]
    return cfg.__class__(**{**cfg.as_dict(), "max_layers": max(x["layers"] for x in n), "max_neurons": max(x["neurons"] for x in n),
                            "max_inputs": max(x["inputs"] for x in n), "max_weight_words": max(x["weight_words"] for x in n),
                            "max_bias_words": max(x["bias_words"] for x in n), "max_dim": max(x["dim"] for x in n),
                            "max_kernel": max(x["kernel"] for x in n), "max_stride": max(x["stride"] for x in n),
                            "acc_bits": max(p.acc_bits for p in pkgs)})


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_trained_network_every_test_image(name, tmp_path):
    pkg, x, y, want = load(name)
    res, cycles = simulate(_shared_build(), pkg, x, test_dir=tmp_path)
    assert sorted(res) == sorted(want)
    for k in want:
        bad = np.flatnonzero((res[k] != want[k]).reshape(len(x), -1).any(1))
        assert len(bad) == 0, f"{k}: {len(bad)} of {len(x)} images differ, first {bad[:5].tolist()}"
    assert (res["pred"] == y).mean() > 0.93
    assert len(cycles) == len(x) and min(cycles) > 0
