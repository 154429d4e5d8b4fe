"""The stored golden vectors (golden/) still equal the golden model, and are real trained networks."""
import numpy as np
import pytest

from logspike.golden.make import NAMES, load
from logspike.model import golden


@pytest.mark.parametrize("name", NAMES)
def test_stored_results_equal_the_golden_model(name):
    pkg, x, y, stored = load(name)
    res = golden.run(pkg, x)
    assert sorted(res) == sorted(stored)
    for k in res:
        assert np.array_equal(res[k], stored[k]), k
    assert len(x) == len(y) == 359
    assert (res["pred"] == y).mean() > 0.93  # trained, not random


def test_atsnn_vector_exits_early():
    pkg, x, y, res = load("digits_atsnn")
    assert pkg.mode == "multistep" and pkg.exit["margin"] is not None
    assert res["exit_step"].mean() < 0.55 * pkg.time_steps  # at least 45% fewer steps than T_max
    assert len(set(res["exit_step"].tolist())) > 1
