"""ATSNN report (digits by default; any data spec of model.data.load): fixed T_max, float entropy exit, ATSNN (time-dependent loss +
SPEC margin exit) and ATSNN without the time-dependent loss.

Thresholds are calibrated on the validation split (accuracy budget against
running all T_max steps, at 95% one-sided confidence: atsnn.calibrate) and
scored on the test split, with the golden model's exact integer outputs.
Writes atsnn.md, atsnn.json, atsnn_tradeoff.png, atsnn_exit_hist.png and both
trained packages (package/ with the calibrated margin, package_plain/), which
--reuse scores again without training.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import data
from .atsnn import SNNConfig, calibrate, entropy_exit, margin_candidates, margin_exit, sweep, to_package, train_snn
from .golden import output_trace

ENTROPY_GRID = [float(v) for v in np.concatenate([[0.0], np.geomspace(1e-4, 2.3, 120)])]


def evaluate(d: data.Dataset, net_name: str, cfg: SNNConfig, epochs: int, budget: float, pkg=None) -> dict:
    """Train (or take the given package of) one SNN and score its exit rules."""
    if pkg is None:
        pkg = to_package(train_snn(d, net_name, cfg, epochs=epochs))
    tv, tt = output_trace(pkg, d.val.bytes), output_trace(pkg, d.test.bytes)
    T = cfg.time_steps
    full_acc = float((margin_exit(tt, None)[1] == d.test.y).mean())
    m = calibrate(tv, d.val.y, "margin", budget, margin_candidates(tv))[0]
    ex, pred = margin_exit(tt, m)
    e = calibrate(tv, d.val.y, "entropy", budget, ENTROPY_GRID, cfg.frac_bits)[0]
    eex, epred = entropy_exit(tt, e if e is not None else 0.0, cfg.frac_bits)
    return {
        "loss": cfg.loss, "T_max": T, "net": net_name, "package": pkg,
        "fixed": {"acc": full_acc, "steps": float(T)},
        "margin": {"threshold": m, "acc": float((pred == d.test.y).mean()), "steps": float(ex.mean()), "exit_steps": ex.tolist()},
        "entropy": {"threshold": e, "acc": float((epred == d.test.y).mean()), "steps": float(eex.mean())},
        "sweep_margin": sweep(tt, d.test.y, "margin", margin_candidates(tv, 60)),
        "sweep_entropy": sweep(tt, d.test.y, "entropy", ENTROPY_GRID[::4], cfg.frac_bits),
    }


def rows_of(td: dict, plain: dict) -> list[tuple]:
    """(method, accuracy, mean steps) rows of the report table."""
    return [
        ("fixed T_max (final-step loss)", plain["fixed"]["acc"], plain["fixed"]["steps"]),
        ("fixed T_max (time-dependent loss)", td["fixed"]["acc"], td["fixed"]["steps"]),
        ("entropy exit, float (DT-SNN-style, final-step loss)", plain["entropy"]["acc"], plain["entropy"]["steps"]),
        ("ATSNN: time-dependent loss + margin exit", td["margin"]["acc"], td["margin"]["steps"]),
        ("ATSNN without time-dependent loss (margin exit)", plain["margin"]["acc"], plain["margin"]["steps"]),
    ]


def plot(td: dict, plain: dict, out: Path, data_name: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r, label, style in ((td, "margin exit, time-dependent loss", "-o"), (plain, "margin exit, final-step loss", "-s")):
        pts = sorted((s, a) for _, a, s in r["sweep_margin"])
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, ms=3, label=label)
    pts = sorted((s, a) for _, a, s in plain["sweep_entropy"])
    ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], "-^", ms=3, label="entropy exit (float), final-step loss")
    ax.plot([td["margin"]["steps"]], [100 * td["margin"]["acc"]], "*", ms=12, color="tab:red",
            label="ATSNN, calibrated on validation")
    # the view around the all-steps accuracy: a margin of 0 (exit at step 1) would squash the curves
    ax.set_ylim(max(0.0, 100 * min(td["fixed"]["acc"], plain["fixed"]["acc"]) - 8), 100.5)
    ax.set_xlabel("average timesteps per image")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{data_name}, {td['net']}: accuracy against average steps (threshold sweep)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "atsnn_tradeoff.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    T = td["T_max"]
    ax.hist(td["margin"]["exit_steps"], bins=np.arange(1, T + 2) - 0.5, color="tab:green")
    ax.set_xlabel("exit step")
    ax.set_ylabel("test images")
    ax.set_title(f"ATSNN exit steps (margin {td['margin']['threshold']}, T_max {T})")
    fig.tight_layout()
    fig.savefig(out / "atsnn_exit_hist.png", dpi=110)
    plt.close(fig)


def main(out: Path, quick: bool = False, net_name: str = "mlp", T: int = 16, budget: float = 0.005,
         data_spec: str = "digits", epochs: int | None = None, reuse: bool = False) -> dict:
    from .package import read, write

    out.mkdir(parents=True, exist_ok=True)
    d = data.load(data_spec)
    saved = {"early": None, "final": None}
    if reuse:
        if epochs is None and (out / "atsnn.json").exists():
            epochs = json.loads((out / "atsnn.json").read_text()).get("epochs")
        for loss, folder in (("early", out / "package"), ("final", out / "package_plain")):
            if not (folder / "manifest.json").exists():
                raise SystemExit(f"--reuse: {folder} has no package (run once without --reuse)")
            saved[loss] = read(folder)
            saved[loss].manifest["exit"]["margin"] = None
    if epochs is None:
        epochs = 4 if quick else 30
    td = evaluate(d, net_name, SNNConfig(time_steps=T, loss="early"), epochs, budget, saved["early"])
    plain = evaluate(d, net_name, SNNConfig(time_steps=T, loss="final"), epochs, budget, saved["final"])
    rows = rows_of(td, plain)
    saving = 1 - td["margin"]["steps"] / T
    loss_pts = 100 * (td["fixed"]["acc"] - td["margin"]["acc"])
    lines = [f"{d.name} test split ({len(d.test)} images), {net_name} SNN, IF neurons, T_max = {T}, 5-bit log weights, "
             f"{epochs} epochs; "
             f"thresholds calibrated on the validation split ({len(d.val)} images): the cheapest whose accuracy loss against "
             f"all steps is at most {100 * budget:.1f} points at 95% one-sided confidence.", "",
             "| method | accuracy (%) | mean steps | steps saved vs T_max |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {100 * a:.2f} | {s:.2f} | {100 * (1 - s / T):.1f}% |" for n, a, s in rows]
    # 0.0 - loss: an exit that loses nothing prints +0.00, not -0.00
    lines += ["", f"ATSNN: {100 * saving:.1f}% fewer steps than fixed T_max at {0.0 - loss_pts:+.2f} points accuracy change "
              f"(margin = {td['margin']['threshold']} in 2^-{td['package'].frac_bits} units per step)."]
    md = "\n".join(lines) + "\n"
    (out / "atsnn.md").write_text(md)
    plot(td, plain, out, d.name)
    td["package"].manifest["exit"]["margin"] = td["margin"]["threshold"]
    write(td["package"], out / "package")
    write(plain["package"], out / "package_plain")
    strip = lambda r: {k: v for k, v in r.items() if k not in ("package", "sweep_margin", "sweep_entropy")}
    (out / "atsnn.json").write_text(json.dumps({"epochs": epochs, "td": strip(td), "plain": strip(plain), "saving": saving, "loss_points": loss_pts}, indent=1))
    print(md)
    return {"td": td, "plain": plain, "saving": saving, "loss_points": loss_pts}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="ATSNN report")
    ap.add_argument("out", nargs="?", default="out/atsnn")
    ap.add_argument("--data", default="digits", help="digits | mnist5k | mnist:DIR | ...")
    ap.add_argument("--net", default="mlp", help="mlp | cnn | resnet8 | ... (model.nets.ARCHS)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs of each SNN (default 30)")
    ap.add_argument("--reuse", action="store_true", help="score OUT's saved packages again instead of training")
    a = ap.parse_args()
    main(Path(a.out), net_name=a.net, data_spec=a.data, epochs=a.epochs, reuse=a.reuse)
