"""Lanes sweep on ECP5-25k (post place-and-route) and generic gates: Markdown table + PNG.

    python -m logspike.synth.sweep [--lanes 1 4 16] [--external 16] [--out synth/reports] [--freq 150] [--seeds 4]
                                   [--jobs J] [--placer default|timing] [--no-generic]

--external P: also the external-weight build of P lanes (weights behind the AXI4 read port, hw/fetch.py).
--placer: nextpnr's placer settings for every ECP5 build of this run (synth.flow.PLACERS).
Writes sweep.md, sweep.png and one JSON per run (small files, committed: ecp5_pP.json, ecp5_pP_ext.json).
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict
from pathlib import Path

from .flow import PLACERS, seed_note, seeds_tried

HERE = Path(__file__).resolve().parent


def table(rows: list, gen: dict) -> str:
    L = ["| lanes | weights | ECP5 logic cells (TRELLIS_COMB) | LUT4 | CCU2C | FF | DP16KD BRAM | LUT-RAM (DPR16X4) | DSP | "
         "Fmax (MHz) | critical path (ns, levels) | multipliers (netlist) | RTL $mul (const / var) | generic gates | generic FF | "
         "generic memory bits |",
         "| --- " * 16 + "|"]
    for r in rows:
        g = gen.get(run_key(r), {})
        cp = r.get("critical_path") or {}
        L.append(f"| {r['config']['lanes']} | {weights_of(r)} | {r['luts']} | {r['lut4']} | {r['carry_ccu2c']} | {r['ffs']} | {r['brams']} | "
                 f"{r['lutram_dpr16x4']} | {r['dsps']} | {fmax_cell(r)} | {cp.get('delay_ns')}, {cp.get('logic_levels')} | "
                 f"{r['multipliers']} | {r['rtl_mul_const']} / {r['rtl_mul_variable']} | {g.get('gates', '-')} | {g.get('ffs', '-')} | "
                 f"{g.get('memory_bits', '-')} |")
    return "\n".join(L) + "\n"


def weights_of(r: dict) -> str:
    c = r["config"]
    return f"external ({c['axi_data_bits']}-bit AXI4)" if c.get("weights") == "external" else "on chip"


def run_key(r: dict) -> str:
    """The file stem of a run: ecp5_pP / generic_pP, _ext for the external-weight build."""
    return f"p{r['config']['lanes']}" + ("_ext" if r["config"].get("weights") == "external" else "")


def fmax_cell(r: dict) -> str:
    """The chosen placement's Fmax, its seed and every other seed tried, and the placer where not the default."""
    placer = r.get("placer", "default")
    return f"{r['fmax_mhz']} ({seed_note(r)}{'' if placer == 'default' else f'; {placer} placer'})"


def plot(rows: list, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ext = [r for r in rows if r["config"].get("weights") == "external"]
    rows = [r for r in rows if r["config"].get("weights") != "external"]
    P = [r["config"]["lanes"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].plot(P, [r["luts"] for r in rows], "o-", label="logic cells (LUT4 + carry)")
    ax[0].plot(P, [r["ffs"] for r in rows], "s-", label="flip-flops")
    ax[0].set_xscale("log", base=2)
    ax[0].set_xticks(P, [str(p) for p in P])
    ax[0].set_xlabel("lanes P")
    ax[0].set_ylabel("ECP5 cells")
    ax[0].legend(fontsize=8)
    ax[0].grid(alpha=0.3)
    ax[1].plot(P, [r["fmax_mhz"] for r in rows], "o-", color="C3", label="the flow's placement")
    tried = [(r["config"]["lanes"], v) for r in rows for k, v in seeds_tried(r).items() if k != r.get("placement_seed", 1)]
    if tried:
        ax[1].plot([p for p, _ in tried], [v for _, v in tried], "x", color="gray", label="other seeds tried")
    for r in ext:
        ax[0].plot([r["config"]["lanes"]], [r["luts"]], "D", color="C2", label="external weights: logic cells")
        ax[1].plot([r["config"]["lanes"]], [r["fmax_mhz"]], "D", color="C2", label="external weights")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8, loc="lower left")
    ax[1].axhline(150, ls="--", color="gray", lw=1)
    ax[1].text((P or [r["config"]["lanes"] for r in ext])[0], 152, "150 MHz target", fontsize=8, color="gray")
    ax[1].set_xscale("log", base=2)
    P = sorted(set(P + [r["config"]["lanes"] for r in ext]))
    ax[0].set_xticks(P, [str(p) for p in P])
    ax[1].set_xticks(P, [str(p) for p in P])
    ax[1].set_xlabel("lanes P")
    ax[1].set_ylabel("Fmax post P&R (MHz)")
    ax[1].set_ylim(0, max(160, max((r["fmax_mhz"] or 0 for r in rows + ext), default=0) * 1.1))
    ax[1].grid(alpha=0.3)
    fig.suptitle("LogSpike core, digits-CNN build, ECP5-25k out of context (nextpnr)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slim(r: dict) -> dict:
    """What is committed of one run: drop the bulky per-type dumps, keep counts and the path summary."""
    drop = {"rtl_cells_by_type", "workdir", "verilog"}
    out = {k: v for k, v in r.items() if k not in drop}
    if out.get("critical_path"):
        out["critical_path"] = {k: v for k, v in out["critical_path"].items() if k not in ("cells", "nets")}
    return out


def main(argv=None):
    from . import builds
    from .flow import synthesize

    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--out", default=str(HERE / "reports"))
    ap.add_argument("--work", default="out/synth/sweep")
    ap.add_argument("--freq", type=float, default=150.0)
    ap.add_argument("--seeds", type=int, default=4, help="timing closure: seeds 1..N in turn until one meets --freq")
    ap.add_argument("--jobs", type=int, default=1, help="placements run at once (waves of this many seeds)")
    ap.add_argument("--external", type=int, nargs="*", default=[], help="lane counts of external-weight builds to add")
    ap.add_argument("--placer", choices=tuple(PLACERS), default="default",
                    help="nextpnr placer settings for the ECP5 builds (synth.flow.PLACERS)")
    ap.add_argument("--no-generic", action="store_true")
    ap.add_argument("--merge", action="store_true", help="only rebuild sweep.md / sweep.png from the JSONs in --out")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.merge:
        return merge(out)
    pkg, desc = builds.digits_cnn_package()
    print(f"package: {desc}", flush=True)
    rows, gen = [], {}
    builds_ = [(P, {}) for P in a.lanes] + [(P, {"weights": "external"}) for P in a.external]
    for P, over in builds_:
        cfg = builds.config_for(pkg, P, **over)
        key = f"p{P}" + ("_ext" if cfg.external else "")
        wd = Path(a.work) / key
        v = builds.write_verilog(cfg, wd / "rtl")
        r = synthesize(v, "logspike", "ecp5", freq_mhz=a.freq, workdir=wd / "ecp5", log=lambda s: print(s, flush=True),
                       seeds=a.seeds, jobs=a.jobs, placer=a.placer)
        r["config"], r["package"] = asdict(cfg), desc
        (out / f"ecp5_{key}.json").write_text(json.dumps(_slim(r), indent=1, default=str) + "\n")
        rows.append(r)
        if not a.no_generic:
            g = synthesize(v, "logspike", "generic", workdir=wd / "generic", log=lambda s: print(s, flush=True))
            g["config"], g["package"] = asdict(cfg), desc
            (out / f"generic_{key}.json").write_text(json.dumps(_slim(g), indent=1, default=str) + "\n")
            gen[key] = g
        write(rows, gen, desc, out)
    return rows, gen


RUN = re.compile(r"(ecp5|generic)_p\d+(_ext)?\.json")   # the sweep's own files, not dated copies


def merge(out: Path):
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if RUN.fullmatch(p.name)]
    rows = sorted((r for r in runs if r.get("target") == "ecp5"), key=lambda r: (run_key(r).endswith("_ext"), r["config"]["lanes"]))
    gen = {run_key(r): r for r in runs if r.get("target") == "generic"}
    write(rows, gen, rows[0]["package"] if rows else "", out)
    return rows, gen


def write(rows, gen, desc, out: Path):
    freq = rows[0]["freq_request_mhz"] if rows else 150.0
    md = ["# LogSpike lanes sweep: ECP5-25k post place-and-route and generic gates", "",
          f"Build: sized for the digits CNN ({desc}); one build per lane count (`hw.config.build_for`).",
          f"ECP5: yowasp Yosys `synth_ecp5`, nextpnr-ecp5 `--25k --package CABGA256 --out-of-context --freq {freq:g} "
          "--timing-allow-fail --seed N` (the timing placer adds `" + " ".join(PLACERS["timing"]) + "`), timing closure by seed: seeds 1, 2, ... in turn (up to "
          f"{max((r.get('seeds_max', 1) for r in rows), default=1)}) until one meets {freq:g} MHz; the figures are that "
          "placement's (the Fmax column names every seed tried). Generic: Yosys `synth` (memories kept as memories) + `abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`.",
          "", table(rows, gen), "", "Critical paths (nextpnr, worst clock-to-clock path):", ""]
    for r in rows:
        cp = r.get("critical_path") or {}
        md.append(f"- P = {r['config']['lanes']}, weights {weights_of(r)}: {cp.get('delay_ns')} ns (logic {cp.get('logic_ns')}, routing {cp.get('routing_ns')}), "
                  f"{cp.get('logic_levels')} logic levels, from `{cp.get('start_cell')}` to `{cp.get('end_cell')}`; "
                  f"RTL lines: {', '.join('`' + s + '`' for s in (cp.get('rtl_sources') or [])[:14])}")
    (out / "sweep.md").write_text("\n".join(md) + "\n")
    if rows:
        plot(rows, out / "sweep.png")


if __name__ == "__main__":
    main()
