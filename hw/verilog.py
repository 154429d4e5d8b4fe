"""Emit the processor's Verilog and a JSON of its parameters and capacity."""
from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from .config import Config
from .protocol import cfg_layout, end_layout, entry_layout, res_layout
from .sequencer import record_layout
from .top import Processor


def generate(cfg: Config, out_dir, name: str = "logspike", baked=None, axi_stream: bool = False,
             axi_width: int | None = None) -> dict:
    """Write <name>.v, <name>.json and <name>.core to out_dir; baked: optional Package baked into memory
    init; axi_stream: the top has AXI4-Stream ports (hw/axis.py) instead of the native streams, each
    axi_width bits wide if given (else each payload in whole bytes)."""
    from . import axis, image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = image.bake(cfg, baked) if baked is not None else None
    v = out / f"{name}.v"
    top = axis.AxiStreamProcessor(cfg, image=img, width=axi_width) if axi_stream else Processor(cfg, image=img)
    v.write_text(verilog.convert(top, name=name, emit_src=False))
    meta = {
        "config": cfg.as_dict(),
        "derived": {"code_bits": cfg.code_bits, "sym_bits": cfg.sym_bits, "step_bits": cfg.step_bits,
                    "count_bits": cfg.count_bits, "buffer_words": cfg.words, "lanes": cfg.lanes,
                    "weight_bank_depth": cfg.weight_bank_depth},
        "ports": {"cfg_payload_bits": cfg_layout(cfg).size, "inp_payload_bits": cfg.lanes * cfg.sym_bits,
                  "res_payload_bits": res_layout(cfg).size},
        "layouts": {"config_beat": {n: [f.offset, f.width] for n, f in cfg_layout(cfg)},
                    "result_beat": {n: [f.offset, f.width] for n, f in res_layout(cfg)},
                    "layer_entry": {n: [f.offset, f.width] for n, f in entry_layout(cfg)},
                    "end_beat_data": {n: [f.offset, f.width] for n, f in end_layout(cfg)},
                    "event_record_bits": record_layout(cfg).size},
        "baked": baked is not None,
        "top": "axi_stream" if axi_stream else "native",
    }
    if cfg.external:   # the AXI4 read port to the weights (hw/fetch.py); `logspike image` writes the memory's contents
        meta["ports"]["m_axi"] = {"kind": "AXI4 read-only manager (AR, R), INCR bursts, ARID 0", "addr_bits": 32,
                                  "data_bits": cfg.axi_data_bits, "max_burst_beats": cfg.axi_max_burst,
                                  "outstanding_bursts": cfg.axi_outstanding,
                                  "registers": "config globals XBASE (the image's byte address), XBIAS, XWSTART"}
    if axi_stream:   # TDATA is the payload in whole bytes; the payload is TDATA's low bits
        meta["ports"]["axi_stream"] = axis.port_widths(cfg, axi_width)
    j = out / f"{name}.json"
    j.write_text(json.dumps(meta, indent=1) + "\n")
    core = out / f"{name}.core"
    core.write_text(fusesoc_core(name, v.name, j.name, cfg, axi_stream))
    return {"verilog": v, "json": j, "core": core}


def fusesoc_core(name: str, verilog_file: str, json_file: str, cfg: Config, axi_stream: bool = False) -> str:
    """A FuseSoC CAPI2 core description, so the RTL drops into FuseSoC/edalize flows."""
    ports = ("AXI4-Stream ports s_axis_cfg, s_axis_inp, m_axis_res" if axi_stream
             else "valid/ready streams cfg, inp, res") + (", AXI4 read port m_axi to external weights" if cfg.external else "")
    return "\n".join([
        "CAPI=2:",
        f"name: logspike:snn:{name}:0.1.0",
        f"description: LogSpike event-driven SNN processor, {cfg.lanes} lanes, W={cfg.weight_bits}, "
        f"F={cfg.frac_bits}, A={cfg.acc_bits}, {ports} (generated; parameters and widths in {json_file})",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {verilog_file}",
        "    file_type: verilogSource",
        "targets:",
        "  default: &default",
        "    filesets: [rtl]",
        f"    toplevel: {name}",
        "  lint:",
        "    <<: *default",
        "    default_tool: verilator",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [-Wno-WIDTHEXPAND, -Wno-WIDTHTRUNC]",
        "",
    ])
