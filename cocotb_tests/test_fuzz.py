"""A fixed-seed slice of the random-network campaign (hw/fuzz.py; `make fuzz` runs the big one):
three builds of 1, 4 and 16 lanes, seven packages each drawn over the contract's whole range (on 4 and
16 lanes half of them with residual shortcuts, as `logspike fuzz` draws them), every one bit-exact
against the golden model on random, all-silent and all-firing inputs."""
import pytest

from logspike.hw import fuzz


@pytest.mark.parametrize("lanes,shortcuts", [(1, 0.0), (4, 1.0), (16, 1.0)])
def test_campaign_slice(lanes, shortcuts):
    seed = 200 if shortcuts else 100 + lanes   # seed 200: two residual packages on either build, both modes
    (group,) = fuzz.groups(seed, 7, 7, lanes=(lanes,), shortcuts=shortcuts)
    rows = fuzz.run_group(seed, group)
    assert len(rows) == 7 and {r["mode"] for r in rows} == {"ttfs", "multistep"}
    bad = [r for r in rows if r["outcome"] != "match"]
    assert not bad, bad
    if shortcuts:
        assert {r["mode"] for r in rows if r["shortcuts"]} == {"ttfs", "multistep"}, rows
