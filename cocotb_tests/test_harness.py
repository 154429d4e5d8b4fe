"""The HDL testbench (hw.harness + hw.tb_fast) behind hw.sim.simulate: bit-exact against
model.golden, and beat for beat the same result stream as the per-beat Python driver.

One sequence loads three packages one after another (ttfs conv, multistep, ttfs dense)
into one build and runs them back to back; it is long enough for both ring buffers of the
harness to wrap around several times."""
import numpy as np
import pytest

from common import CFG, check, make_pkg
from logspike.hw import image, sim
from logspike.hw.harness import BEAT_DEPTH, RES_DEPTH
from logspike.hw.protocol import END_LAYOUT, Tag, res_layout
from logspike.model import golden, randnet
from common import make_ms

TIMEOUT = 2_000_000  # cycles between two stops of the harness; these packages need a few thousand


@pytest.fixture(scope="module")
def cases():
    t1, rng1 = make_pkg(700, "conv", 2)
    t2, rng2 = make_pkg(701, "dense", 4)
    m1 = make_ms(702, "conv", leak_shift=1, batch=16)
    return [(t1, randnet.random_inputs(rng1, t1, 48, silent=0.3)), m1,
            (t2, randnet.random_inputs(rng2, t2, 48, silent=0.5))]


def _items(cases):
    items = []
    for pkg, x in cases:
        items += [{"cfg": image.config_beats(CFG, pkg)}] + [{"inp": image.input_beats(CFG, pkg, xi)} for xi in x]
    return items


@pytest.fixture(scope="module")
def driver_raw(cases, tmp_path_factory):
    """The same sequence through the per-beat driver, no gaps: the reference result stream."""
    steps = []
    for pkg, x in cases:
        steps += [{"cfg": image.config_beats(CFG, pkg)},
                  {"infer": [image.input_beats(CFG, pkg, xi) for xi in x]}]
    return sim.run_steps(CFG, steps, tmp_path_factory.mktemp("driver"))


def _check_golden(cases, raw):
    pos = 0
    for pkg, x in cases:
        check(pkg, x, raw[pos:pos + len(x)])
        pos += len(x)
    assert pos == len(raw)


CYCLES_SHIFT = res_layout(CFG)["data"].offset + END_LAYOUT["cycles"].offset
TAG_SHIFT = res_layout(CFG)["tag"].offset


def _without_cycles(raw):
    """END beats with their cycles field zeroed (gaps and backpressure stretch it, nothing else)."""
    mask = ~(0xFFFFFFFF << CYCLES_SHIFT)
    return [[b & mask if (b >> TAG_SHIFT) == Tag.END else b for b in r] for r in raw]


def _cycles(raw):
    return [(r[-1] >> CYCLES_SHIFT) & 0xFFFFFFFF for r in raw]


def test_gaps_and_backpressure(cases, driver_raw, tmp_path):
    """In-HDL random valid gaps and ready backpressure: golden on every key, and every result
    beat of every inference equal, in order, to the per-beat driver's (no drop, duplicate or
    reorder), END cycles aside."""
    items = _items(cases)
    raw, stats = sim.run_fast(CFG, items, tmp_path, gap=0.4, ready_p=0.5, seed=11, timeout_cycles=TIMEOUT)
    _check_golden(cases, raw)
    assert _without_cycles(raw) == _without_cycles(driver_raw)
    # both rings really wrapped around, with Python refilling and draining them on the way
    assert stats["beats"] > 2 * BEAT_DEPTH and stats["result_beats"] > 2 * RES_DEPTH
    assert stats["services"] > 4
    # the gaps and the backpressure really stretched the inferences
    assert sum(a > b for a, b in zip(_cycles(raw), _cycles(driver_raw))) > len(raw) // 2


def test_full_speed_same_cycles(cases, driver_raw, tmp_path):
    """No gaps, ready always high: the very same result beats as the per-beat driver, END cycle
    counts included (the harness feeds one beat per cycle, like the driver)."""
    raw, _ = sim.run_fast(CFG, _items(cases), tmp_path, timeout_cycles=TIMEOUT)
    assert raw == driver_raw
    _check_golden(cases, raw)


def test_simulate_two_packages_one_build(cases, tmp_path):
    """hw.sim.simulate (the harness path): two packages one after the other on the same
    Verilator model, the result dict and cycle list as model.golden gives them."""
    bdir = sim.build_harness(CFG)
    for k, (pkg, x) in enumerate(cases[:2]):
        res, cycles = sim.simulate(CFG, pkg, x[:6], tmp_path / str(k), gap=0.2, ready_p=0.7, seed=k)
        want = golden.run(pkg, x[:6])
        assert sorted(res) == sorted(want)
        for key in want:
            assert np.array_equal(res[key], want[key]), key
        assert len(cycles) == 6 and min(cycles) > 0
        assert sim.build_harness(CFG) == bdir
