"""`logspike verilog`: the emitted Verilog passes Verilator lint with only width warnings waived."""
import json
import subprocess

from logspike.hw import cosim
from logspike.hw.config import Config
from logspike.hw.verilog import generate
from logspike.cli import main


def test_verilog_lint_clean(tmp_path):
    paths = generate(Config(lanes=4), tmp_path)
    cosim._verilator_on_path()
    out = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--top-module", "logspike",
                          str(paths["verilog"])], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "%Warning" not in out.stderr and "%Error" not in out.stderr, out.stderr[-3000:]
    meta = json.loads(paths["json"].read_text())
    assert meta["config"]["lanes"] == 4 and meta["ports"]["inp_payload_bits"] == 4 * meta["derived"]["sym_bits"]


def test_fusesoc_core_parses_and_names_the_rtl(tmp_path):
    import yaml

    paths = generate(Config(lanes=2), tmp_path)
    text = paths["core"].read_text()
    assert text.splitlines()[0] == "CAPI=2:"
    core = yaml.safe_load(text)
    assert core["name"].startswith("logspike:snn:logspike:")
    files = core["filesets"]["rtl"]["files"]
    assert files == ["logspike.v"] and (tmp_path / files[0]).is_file()
    assert core["filesets"]["rtl"]["file_type"] == "verilogSource"
    assert core["targets"]["default"]["toplevel"] == "logspike"
    assert core["targets"]["lint"]["toplevel"] == "logspike"  # inherited through the YAML anchor
    assert core["targets"]["lint"]["tools"]["verilator"]["mode"] == "lint-only"


def test_verilog_command_writes_verilog_and_json(tmp_path, capsys):
    assert main(["verilog", "--out", str(tmp_path), "--lanes", "2"]) == 0
    assert (tmp_path / "logspike.v").read_text().count("module ") >= 1
    assert json.loads((tmp_path / "logspike.json").read_text())["config"]["lanes"] == 2
    assert main(["verilog", "--out", str(tmp_path), "--lanes", "3"]) == 2  # not a power of two
    assert "lanes = 3" in capsys.readouterr().err


def test_axi_stream_top_lints_and_lists_its_ports(tmp_path, capsys):
    assert main(["verilog", "--out", str(tmp_path), "--lanes", "2", "--axi-stream"]) == 0
    paths = {k: tmp_path / f"logspike.{k}" for k in ("v", "json", "core")}
    cosim._verilator_on_path()
    out = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--top-module", "logspike",
                          str(paths["v"])], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "%Warning" not in out.stderr, out.stderr[-3000:]
    meta = json.loads(paths["json"].read_text())
    assert meta["top"] == "axi_stream"
    axis = meta["ports"]["axi_stream"]
    for port, payload in (("s_axis_cfg", meta["ports"]["cfg_payload_bits"]),
                          ("s_axis_inp", meta["ports"]["inp_payload_bits"]),
                          ("m_axis_res", meta["ports"]["res_payload_bits"])):
        w = axis[port]
        assert w["payload_bits"] == payload and w["tdata_bits"] % 8 == 0 and 0 <= w["tdata_bits"] - payload < 8
        assert w["tkeep_bits"] * 8 == w["tdata_bits"]
        for sig in ("tdata", "tkeep", "tlast", "tvalid", "tready"):
            assert f"{port}__{sig}" in paths["v"].read_text()
    assert "AXI4-Stream ports s_axis_cfg, s_axis_inp, m_axis_res" in paths["core"].read_text()
    plain = json.loads(generate(Config(lanes=2), tmp_path / "plain")["json"].read_text())
    assert plain["top"] == "native" and "axi_stream" not in plain["ports"]


def test_axi_stream_of_a_set_width(tmp_path, capsys):
    """--axi-width 32: every port 32 bits; a payload wider than that takes several transfers (in the JSON)."""
    assert main(["verilog", "--out", str(tmp_path), "--lanes", "4", "--axi-width", "32"]) == 0
    meta = json.loads((tmp_path / "logspike.json").read_text())
    axis = meta["ports"]["axi_stream"]
    for port, key in (("s_axis_cfg", "cfg_payload_bits"), ("s_axis_inp", "inp_payload_bits"), ("m_axis_res", "res_payload_bits")):
        w = axis[port]
        assert w["tdata_bits"] == 32 and w["transfers"] == -(-meta["ports"][key] // 32)
    cosim._verilator_on_path()
    out = subprocess.run(["verilator", "--lint-only", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--top-module", "logspike",
                          str(tmp_path / "logspike.v")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "%Warning" not in out.stderr, out.stderr[-3000:]
    assert "[31:0] s_axis_cfg__tdata" in (tmp_path / "logspike.v").read_text()
    assert main(["verilog", "--out", str(tmp_path / "bad"), "--axi-width", "12"]) == 2
    assert "--axi-width 12: must be a positive multiple of 8 bits" in capsys.readouterr().err
