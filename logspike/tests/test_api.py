"""The Python API (logspike/__init__.py) against the golden model, the RTL and the stored golden vectors."""
import json

import numpy as np
import pytest

import logspike
from logspike.golden.make import HERE, load
from logspike.model import randnet


def test_predict_matches_the_stored_golden_vectors():
    pkg = logspike.load(HERE / "digits_mlp" / "package")
    _, x, _, want = load("digits_mlp")
    res = logspike.predict(pkg, x)
    assert set(res) == set(want) and all(np.array_equal(res[k], want[k]) for k in want)


def test_simulate_equals_predict_and_verilog_writes_the_build(tmp_path):
    rng = np.random.default_rng(5)
    pkg = randnet.random_package(rng, "ttfs", "conv", weight_bits=5, frac_bits=10, tau=2)
    x = randnet.random_inputs(rng, pkg, 5)
    res, cycles = logspike.simulate(pkg, x, lanes=2)
    want = logspike.predict(pkg, x)
    assert all(np.array_equal(res[k], want[k]) for k in want) and len(cycles) == 5
    res2, cycles2 = logspike.simulate(pkg, x, lanes=2, jobs=2)
    assert all(np.array_equal(res2[k], want[k]) for k in want) and cycles2 == cycles
    want2 = logspike.predict(pkg, x, jobs=2)
    assert all(np.array_equal(want2[k], want[k]) for k in want)
    files = logspike.verilog(pkg, tmp_path / "rtl", lanes=2, bake=True)
    assert "module logspike" in files["verilog"].read_text()
    meta = json.loads(files["json"].read_text())
    assert meta["config"]["lanes"] == 2 and meta["baked"] and meta["layouts"]["end_beat_data"]["cycles"] == [16, 32]


def test_bad_input_is_an_error_naming_the_field():
    pkg = logspike.load(HERE / "digits_mlp" / "package")
    with pytest.raises(ValueError, match="lanes = 3"):
        logspike.verilog(pkg, "unused", lanes=3)
    with pytest.raises(ValueError, match="input_shape"):
        logspike.predict(pkg, np.zeros((2, 3), dtype=np.int64))
