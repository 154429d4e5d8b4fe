"""`logspike demo`: the main job on the embedded default (scikit-learn digits).

Train a CAT CNN, convert it to a TTFS package, run the golden model on the
test split, generate Verilog and co-simulate the RTL on the same images,
train an ATSNN and run it on the RTL with and without early exit, optionally
synthesise, and write report.md with a summary PNG.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from logspike.model import data, golden, train
from logspike.model.convert import encode_inputs, save_checkpoint, to_package
from logspike.model.package import write
from logspike.model.quant import QuantConfig


# synthesis figures the report shows: result key -> label (synth.flow's ECP5 results)
SYNTH_KEYS = {"luts": "logic cells", "ffs": "FFs", "brams": "BRAMs (DP16KD)", "dsps": "DSPs", "fmax_mhz": "Fmax (MHz)",
              "multipliers": "multipliers"}


def _fig(v) -> str:
    """A synthesis figure as text: Fmax to 0.1 MHz, counts as they are, n/a where the tools gave none."""
    if v is None:
        return "n/a"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run(out: Path, net_name: str = "cnn", quick: bool = False, synth: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    q = QuantConfig()
    summary: dict = {"net": net_name, "T": q.time_steps, "tau": q.tau}

    t = step(f"train {net_name} on digits: float ANN, then conversion-aware (CAT)")
    d = data.digits()
    cfg = train.TrainConfig(net=net_name, epochs=10 if quick else 60, cat_epochs=4 if quick else 40)
    fnet, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    save_checkpoint(out / "cat.pt", cat, {"data": "digits", "net": net_name})
    summary.update(float_ann=train.accuracy(fnet, d.test.x, d.test.y), cat_ann=train.accuracy(cat, d.test.x, d.test.y))
    print(f"float ANN {summary['float_ann']:.4f}, CAT ANN {summary['cat_ann']:.4f} ({time.perf_counter() - t:.0f} s)")

    step("convert to a TTFS package and run the golden model on the test split")
    pkg = to_package(cat, q)
    write(pkg, out / "package")
    codes = encode_inputs(d.test.x, q)
    np.save(out / "test_codes.npy", codes)
    np.save(out / "test_labels.npy", d.test.y)
    gold = golden.run(pkg, codes)
    golden.save_results(gold, out / "golden.npz")
    nocat = golden.run(to_package(folded, q), codes)
    summary.update(snn_golden=float((gold["pred"] == d.test.y).mean()), snn_no_cat=float((nocat["pred"] == d.test.y).mean()),
                   acc_bits=pkg.acc_bits)
    print(f"TTFS SNN (golden) {summary['snn_golden']:.4f}, no-CAT SNN {summary['snn_no_cat']:.4f}, acc_bits {pkg.acc_bits}")

    t = step("generate Verilog (P = 4 lanes) and co-simulate the RTL on the test split (Verilator)")
    from logspike.hw.config import build_for
    from logspike.hw.sim import simulate
    from logspike.hw.verilog import generate

    cfg = build_for(pkg, 4)
    paths = generate(cfg, out / "rtl")
    rtl, cycles = simulate(cfg, pkg, codes)
    golden.save_results(rtl, out / "rtl.npz")
    match = {k: int((rtl[k].reshape(len(codes), -1) == gold[k].reshape(len(codes), -1)).all(1).sum()) for k in gold}
    summary.update(rtl_acc=float((rtl["pred"] == d.test.y).mean()), rtl_cycles=float(np.mean(cycles)),
                   rtl_match=match, verilog=str(paths["verilog"]))
    print(f"Verilog {paths['verilog']}; RTL accuracy {summary['rtl_acc']:.4f}; images bit-exact per key: "
          + ", ".join(f"{k} {v}/{len(codes)}" for k, v in match.items())
          + f"; {summary['rtl_cycles']:.0f} cycles per inference ({time.perf_counter() - t:.0f} s)")

    t = step("ATSNN: multistep SNN with the time-dependent loss, margin exit calibrated on validation, RTL with and without exit")
    from logspike.model.atsnn import SNNConfig, calibrate, margin_candidates, to_package as ms_package, train_snn

    snn = train_snn(d, "mlp", SNNConfig(time_steps=16), epochs=5 if quick else 30)
    ms = ms_package(snn)
    tv = golden.output_trace(ms, d.val.bytes)
    ms.manifest["exit"]["margin"] = calibrate(tv, d.val.y, "margin", 0.005, margin_candidates(tv))[0]
    write(ms, out / "atsnn_package")
    msg = golden.run(ms, d.test.bytes)
    full = ms.copy()
    full.manifest["exit"]["margin"] = None
    mcfg = build_for(ms, 4)
    ms_rtl, ms_cyc = simulate(mcfg, ms, d.test.bytes)
    _, full_cyc = simulate(mcfg, full, d.test.bytes)
    summary.update(atsnn_acc=float((ms_rtl["pred"] == d.test.y).mean()), atsnn_full_acc=float((golden.run(full, d.test.bytes)["pred"] == d.test.y).mean()),
                   atsnn_steps=float(ms_rtl["exit_step"].mean()), atsnn_exact=all(np.array_equal(ms_rtl[k], msg[k]) for k in msg),
                   atsnn_cycles=float(np.mean(ms_cyc)), atsnn_full_cycles=float(np.mean(full_cyc)), T_max=ms.time_steps)
    print(f"ATSNN: accuracy {summary['atsnn_acc']:.4f} (all {ms.time_steps} steps: {summary['atsnn_full_acc']:.4f}), "
          f"mean exit step {summary['atsnn_steps']:.2f}, RTL cycles {summary['atsnn_cycles']:.0f} vs {summary['atsnn_full_cycles']:.0f} "
          f"without exit ({100 * (1 - summary['atsnn_cycles'] / summary['atsnn_full_cycles']):.1f}% saved), bit-exact {summary['atsnn_exact']}")

    if synth:
        t = step("synthesis: ECP5-25k, yowasp Yosys + nextpnr (out of context)")
        from logspike.synth.builds import synthesize_build
        from logspike.synth.flow import markdown

        sy = synthesize_build("ecp5", lanes=4, package=str(out / "package"), workdir=out / "synth")
        (out / "synth.json").write_text(json.dumps(sy, indent=1, default=str) + "\n")
        (out / "synth.md").write_text(markdown(sy))
        summary.update(synth={k: sy.get(k) for k in SYNTH_KEYS})
        print("ECP5: " + ", ".join(f"{label} {_fig(sy.get(k))}" for k, label in SYNTH_KEYS.items()) + f" ({time.perf_counter() - t:.0f} s)")

    write_report(out, summary, len(d.test), q)
    print(f"\nreport -> {out / 'report.md'}")
    return summary


def write_report(out: Path, s: dict, n: int, q: QuantConfig):
    """report.md and summary.png; the synthesis figures appear only when synthesis ran in this same run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sy = s.get("synth")
    fig, ax = plt.subplots(1, 3 if sy else 2, figsize=(13 if sy else 9, 3.2))
    names = ["float ANN", "CAT ANN", "SNN golden", "SNN RTL", "no-CAT SNN"]
    vals = [s["float_ann"], s["cat_ann"], s["snn_golden"], s["rtl_acc"], s["snn_no_cat"]]
    ax[0].bar(names, [100 * v for v in vals], color=["grey", "tab:blue", "tab:green", "tab:olive", "tab:red"])
    ax[0].set_ylim(min(100 * min(vals) - 3, 90), 100)
    ax[0].set_ylabel("test accuracy (%)")
    ax[0].tick_params(axis="x", labelsize=7)
    ax[1].bar(["fixed T_max", "ATSNN exit"], [s["atsnn_full_cycles"], s["atsnn_cycles"]], color=["grey", "tab:green"])
    ax[1].set_ylabel("RTL cycles per inference")
    ax[1].set_title(f"early exit: mean step {s['atsnn_steps']:.2f} of {s['T_max']}", fontsize=9)
    if sy:
        ax[2].axis("off")
        tab = ax[2].table(cellText=[[label, _fig(sy.get(k))] for k, label in SYNTH_KEYS.items()],
                          colLabels=["ECP5-25k, P = 4", "this run"], loc="center", cellLoc="left")
        tab.scale(1, 1.4)
        ax[2].set_title("synthesis (yowasp Yosys + nextpnr)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=110)
    plt.close(fig)
    lines = ["# LogSpike demo report", "",
             f"Digits test split, {n} images; {s['net']} TTFS network, T={q.time_steps}, tau={q.tau}, W={q.weight_bits}-bit log weights, F={q.frac_bits}; RTL with 4 lanes.", "",
             "## Accuracy", "", "| float ReLU ANN | CAT ANN | TTFS SNN (golden) | TTFS SNN (RTL) | no-CAT SNN |", "| --- | --- | --- | --- | --- |",
             f"| {100 * s['float_ann']:.2f} | {100 * s['cat_ann']:.2f} | {100 * s['snn_golden']:.2f} | {100 * s['rtl_acc']:.2f} | {100 * s['snn_no_cat']:.2f} |", "",
             "## RTL against the golden model (images bit-exact per key)", "", "| key | images equal |", "| --- | --- |"]
    lines += [f"| {k} | {v} / {n} |" for k, v in s["rtl_match"].items()]
    lines += ["", f"Cycles per inference: {s['rtl_cycles']:.0f} (mean over the test split). Verilog: `{s['verilog']}`.", "",
              "## Early exit (ATSNN, multistep MLP)", "", "| | accuracy (%) | mean steps | RTL cycles per inference |", "| --- | --- | --- | --- |",
              f"| fixed T_max = {s['T_max']} | {100 * s['atsnn_full_acc']:.2f} | {s['T_max']} | {s['atsnn_full_cycles']:.0f} |",
              f"| margin exit | {100 * s['atsnn_acc']:.2f} | {s['atsnn_steps']:.2f} | {s['atsnn_cycles']:.0f} |", "",
              f"RTL bit-exact with the golden model (logits, pred, exit_step, spike counts): {s['atsnn_exact']}.", ""]
    lines += ["## Synthesis (ECP5-25k, out of context)", ""]
    if sy:
        lines += ["Measured in this run on the TTFS package above (P = 4 lanes), yowasp Yosys + nextpnr; "
                  f"all figures in `{out / 'synth.md'}` and `{out / 'synth.json'}`.", "",
                  "| " + " | ".join(SYNTH_KEYS.values()) + " |", "| " + " | ".join("---" for _ in SYNTH_KEYS) + " |",
                  "| " + " | ".join(_fig(sy.get(k)) for k in SYNTH_KEYS) + " |", ""]
    else:
        lines += ["Not run in this demo (it takes minutes). To measure logic cells, FFs, BRAM, DSP, multipliers and Fmax, run "
                  "`logspike demo --synth`, or synthesise this run's package alone with "
                  f"`logspike synth --target ecp5 --lanes 4 --package {out / 'package'} --json {out / 'synth.json'} --md {out / 'synth.md'}`.", ""]
    lines += ["![summary](summary.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(s, indent=1))
