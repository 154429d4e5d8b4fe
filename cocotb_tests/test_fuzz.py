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


def test_report_counts_the_residual_packages():
    """The campaign report says how many packages had shortcuts, of which kind, and their outcomes."""
    rows = [dict(index=0, mode="ttfs", lanes=4, outcome="match", detail="", shortcuts=[]),
            dict(index=1, mode="multistep", lanes=4, outcome="match", detail="",
                 shortcuts=["L2 identity from L0", "L4 projection stride 2 from L3"]),
            dict(index=2, mode="ttfs", lanes=1, outcome="mismatch", detail="pred", shortcuts=["L1 projection stride 1 from L0"])]
    r = fuzz.summarise(rows)["residual"]
    assert (r["packages"], r["multistep"], r["shortcuts"], r["identity"], r["projection"]) == (2, 1, 3, 1, 2)
    assert r["counts"]["match"] == 1 and r["counts"]["mismatch"] == 1
    assert "Residual packages (SPEC version-2 shortcuts): 2 (1 multistep), 3 shortcuts (1 identity, 2 projection); " \
           "match 1, mismatch 1" in fuzz.markdown(rows, 0)
