"""A fixed-seed slice of the random-network campaign (hw/fuzz.py; `make fuzz` runs the big one):
three builds of 1, 4 and 16 lanes, seven packages each drawn over the contract's whole range, every
one bit-exact against the golden model on random, all-silent and all-firing inputs."""
import pytest

from logspike.hw import fuzz


@pytest.mark.parametrize("lanes", [1, 4, 16])
def test_campaign_slice(lanes):
    seed = 100 + lanes
    (group,) = fuzz.groups(seed, 7, 7, lanes=(lanes,))
    rows = fuzz.run_group(seed, group)
    assert len(rows) == 7 and {r["mode"] for r in rows} == {"ttfs", "multistep"}
    bad = [r for r in rows if r["outcome"] != "match"]
    assert not bad, bad
