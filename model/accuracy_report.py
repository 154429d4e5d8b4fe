"""Accuracy report (digits by default, any data spec of model.data.load): float ReLU ANN, CAT ANN, TTFS SNN (golden model), and
the no-CAT ablation (the same float ANN converted with the same quantizers).

Writes accuracy.md, accuracy.json and spike_times.png (per-layer histograms
of the SNN's spike codes on the test split).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import data, golden, train
from .convert import encode_inputs, to_package
from .quant import QuantConfig

SETTINGS = [("mlp", QuantConfig()), ("cnn", QuantConfig()), ("cnn", QuantConfig(time_steps=8, tau=1))]


def evaluate(net_name: str, q: QuantConfig, d: data.Dataset, cfg: train.TrainConfig) -> dict:
    """Train one net both ways and score every stage on the test split."""
    fnet, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    codes = encode_inputs(d.test.x, q)
    snn = golden.run(to_package(cat, q), codes)
    nocat = golden.run(to_package(folded, q), codes)
    y = d.test.y
    return {
        "net": net_name, "T": q.time_steps, "tau": q.tau, "W": q.weight_bits, "F": q.frac_bits,
        "float_ann": train.accuracy(fnet, d.test.x, y), "cat_ann": train.accuracy(cat, d.test.x, y),
        "snn_golden": float((snn["pred"] == y).mean()), "snn_no_cat": float((nocat["pred"] == y).mean()),
        "spikes": {k: v for k, v in snn.items() if k.startswith("spikes_L")},
    }


def plot_spike_times(rows: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(r["spikes"]) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(3.2 * n, 2.4 * len(rows)), squeeze=False)
    for r_i, r in enumerate(rows):
        for c_i in range(n):
            ax = axes[r_i][c_i]
            keys = sorted(r["spikes"], key=lambda k: int(k[8:]))
            if c_i >= len(keys):
                ax.axis("off")
                continue
            codes = r["spikes"][keys[c_i]].ravel()
            ax.hist(codes, bins=np.arange(r["T"] + 2) - 0.5, color="tab:blue")
            ax.set_title(f"{r['net']} T={r['T']} tau={r['tau']}: {keys[c_i][7:]}", fontsize=8)
            ax.set_xlabel(f"spike code (T={r['T']} silent)", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    lines = ["| net | T | tau | float ReLU ANN | CAT ANN | TTFS SNN (golden) | SNN - CAT ANN | no-CAT SNN | CAT gain |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['T']} | {r['tau']} | {100 * r['float_ann']:.2f} | {100 * r['cat_ann']:.2f} | "
                     f"{100 * r['snn_golden']:.2f} | {100 * (r['snn_golden'] - r['cat_ann']):+.2f} | "
                     f"{100 * r['snn_no_cat']:.2f} | {100 * (r['snn_golden'] - r['snn_no_cat']):+.2f} |")
    return "\n".join(lines)


def main(out: Path, quick: bool = False, settings=SETTINGS, data_spec: str = "digits") -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    d = data.load(data_spec)
    cfg = train.TrainConfig(epochs=8, cat_epochs=4) if quick else train.TrainConfig()
    rows = []
    for net_name, q in settings:
        r = evaluate(net_name, q, d, train.TrainConfig(**{**cfg.__dict__, "net": net_name}))
        print(f"{net_name} T={q.time_steps} tau={q.tau}: float {r['float_ann']:.4f}  CAT {r['cat_ann']:.4f}  "
              f"SNN {r['snn_golden']:.4f}  no-CAT SNN {r['snn_no_cat']:.4f}", flush=True)
        rows.append(r)
    md = (f"{d.name} test split ({len(d.test)} images), accuracy in %; W=5-bit log weights, F=16; "
          f"{cfg.epochs} float and {cfg.cat_epochs} CAT epochs.\n\n"
          + table(rows) + "\n")
    (out / "accuracy.md").write_text(md)
    (out / "accuracy.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "spikes"} for r in rows], indent=1))
    plot_spike_times(rows, out / "spike_times.png")
    print(md)
    return rows


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/accuracy"))
