"""Random-network campaign: packages drawn over the contract's whole range, each run on the golden
model and on the RTL, one outcome per package.

    logspike fuzz --packages 1000 --out out/fuzz        (make fuzz N=1000)

Packages come in groups that share one processor build (build_for_all of the group, so a group
costs one Verilator model): each group draws its lanes (1 to 16) and its F; every package in it
draws its own mode, shape, W, T, tau, leak and exit rule (model.randnet.campaign_package), and a
multistep one its version-2 neurons (randnet.with_neurons: per-layer leaks, resets to a value), and,
with `shortcuts` = p > 0, half the packages residual shortcuts (randnet.with_shortcuts: each conv layer
with probability p, from one or two layers back; their own generator default_rng([s, i, 3])). A
group's packages run back to back through the HDL testbench, each one's config stream followed
by its inputs (two random, one all-silent, one all-firing), with the group's own random valid
gaps and result backpressure.

Outcomes: `match` (every SPEC section 5 key bit-exact), `mismatch`, `refused` (the package
reader or hw.config.fits named a field and its limit) and `crash` (anything else: an exception
in the golden model, the build or the simulator). Package `i` of seed `s` is drawn from
numpy's default_rng([s, i]) (its version-2 neurons from default_rng([s, i, 2])) alone, so any row is
reproduced by `draw(s, i)`.
"""
from __future__ import annotations

import json
import sys
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logspike.model import golden, randnet
from logspike.model.package import Package, PackageError

from . import image, sim
from .config import FitError, build_for_all, fits

OUTCOMES = ("match", "mismatch", "refused", "crash")
LANES = (1, 2, 4, 8, 16)
# a hang fails the group after this many harness cycles without a finished inference
TIMEOUT_CYCLES = 20_000_000


@dataclass
class Case:
    index: int
    mode: str
    pkg: Package | None = None
    inputs: np.ndarray | None = None
    outcome: str = ""
    detail: str = ""
    want: dict | None = None   # golden results of the inputs
    summary: dict = field(default_factory=dict)


def draw(seed: int, index: int, frac_bits: int, shortcuts: float = 0.0) -> Case:
    rng = np.random.default_rng([seed, index])
    mode = "ttfs" if rng.random() < 0.5 else "multistep"
    c = Case(index, mode)
    try:
        c.pkg = randnet.campaign_package(rng, mode, frac_bits=frac_bits)
    except PackageError as e:
        c.outcome, c.detail = "refused", f"package: {e}"
        return c
    c.inputs = randnet.campaign_inputs(rng, c.pkg)
    if mode == "multistep":   # version-2 neurons (own leak, reset to a value), from a generator of their own
        try:
            c.pkg = randnet.with_neurons(c.pkg, np.random.default_rng([seed, index, 2]))
        except PackageError as e:
            c.outcome, c.detail = "refused", f"package: {e}"
            return c
    if shortcuts and rng.random() < 0.5:   # residual shortcuts, from a generator of their own
        try:
            c.pkg = randnet.with_shortcuts(c.pkg, np.random.default_rng([seed, index, 3]), shortcuts)
        except PackageError as e:
            c.outcome, c.detail = "refused", f"package: {e}"
            return c
    p = c.pkg
    c.summary = {"W": p.weight_bits, "F": p.frac_bits, "A": p.acc_bits, "T": p.time_steps,
                 "layers": "-".join({"dense": "d", "conv2d": "c", "maxpool2d": "p", "flatten": "f"}[l["type"]]
                                    for l in p.layers),
                 "input": list(p.input_shape),
                 "shortcuts": [f"L{i} {l['shortcut']['kind']} stride {l['shortcut'].get('stride', 1)} from L{l['shortcut']['from']}"
                               for i, l in enumerate(p.layers) if "shortcut" in l]}
    c.summary.update({"tau": p.tau} if mode == "ttfs" else {
        "leak": [p.layer_leak(i) for i in p.weighted_indices()[:-1]], "margin": p.exit["margin"],
        "min_steps": p.exit["min_steps"],
        "v_reset": [p.layer_reset(i) for i in p.weighted_indices()[:-1]]})
    return c


def groups(seed: int, packages: int, group_size: int, lanes=LANES, shortcuts: float = 0.0) -> list[dict]:
    """The campaign's groups: lanes, F and package indices of each (cheap; the packages are drawn
    by the process that runs the group)."""
    rng = np.random.default_rng([seed, 1 << 30])
    out = []
    for g, start in enumerate(range(0, packages, group_size)):
        out.append({"group": g, "lanes": int(rng.choice(lanes)), "frac_bits": int(rng.integers(8, 25)),
                    "indices": list(range(start, min(start + group_size, packages))),
                    "gap": float(rng.choice([0.0, 0.3])), "ready_p": float(rng.choice([1.0, 0.6])),
                    "shortcuts": shortcuts})
    return out


def _compare(want, got) -> str:
    """'' when got (parsed RTL results) equals want (golden) on every key, else the first difference."""
    if set(got) != set(want):
        return f"keys: rtl {sorted(got)} golden {sorted(want)}"
    for k in want:
        if not np.array_equal(got[k], want[k]):
            bad = np.argwhere(np.asarray(got[k]) != np.asarray(want[k]))[0].tolist()
            return f"{k}{bad}: rtl {np.asarray(got[k])[tuple(bad)]} golden {np.asarray(want[k])[tuple(bad)]}"
    return ""


def _run_cases(cfg, cases, g, test_dir):
    items = []
    for c in cases:
        items.append({"cfg": image.config_beats(cfg, c.pkg)})
        items += [{"inp": image.input_beats(cfg, c.pkg, xi)} for xi in c.inputs]
    raw, _ = sim.run_fast(cfg, items, test_dir, gap=g["gap"], ready_p=g["ready_p"], seed=g["group"],
                          timeout_cycles=TIMEOUT_CYCLES)
    pos = 0
    for c in cases:
        n = len(c.inputs)
        got, _ = sim.collate(cfg, c.pkg, raw[pos:pos + n])
        pos += n
        diff = _compare(c.want, got)
        c.outcome, c.detail = ("mismatch", diff) if diff else ("match", "")


def _crash(e: BaseException) -> str:
    last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
    return f"{type(e).__name__}{where}: {' '.join(str(e).split())[:300]}"


def run_group(seed: int, g: dict) -> list[dict]:
    """Draw and run one group; returns one row per package."""
    cases = [draw(seed, i, g["frac_bits"], g.get("shortcuts", 0.0)) for i in g["indices"]]
    live = []
    for c in cases:
        if c.outcome:
            continue
        try:
            c.want = golden.run(c.pkg, c.inputs)
            live.append(c)
        except Exception as e:  # a validated package the golden model cannot run
            c.outcome, c.detail = "crash", "golden: " + _crash(e)
    cfg = None
    if live:
        try:
            cfg = build_for_all([c.pkg for c in live], g["lanes"])
        except Exception as e:
            for c in live:
                c.outcome, c.detail = "crash", "build_for_all: " + _crash(e)
            live = []
    runnable = []
    for c in live:
        try:
            fits(cfg, c.pkg)
            runnable.append(c)
        except FitError as e:
            c.outcome, c.detail = "refused", f"build: {e}"
    if runnable:
        with tempfile.TemporaryDirectory(prefix="logspike-fuzz-") as d:
            try:
                _run_cases(cfg, runnable, g, d)
            except Exception:
                # the group's run failed: run each package alone on the same build to tell which
                for c in runnable:
                    try:
                        _run_cases(cfg, [c], g, d)
                    except Exception as e:
                        c.outcome, c.detail = "crash", "rtl: " + _crash(e)
    return [dict({"index": c.index, "group": g["group"], "mode": c.mode, "lanes": g["lanes"], "outcome": c.outcome,
                  "detail": c.detail}, **c.summary) for c in cases]


def run(seed: int, packages: int, group_size: int = 20, lanes=LANES, jobs: int = 1, progress: bool = True,
        shortcuts: float = 0.0) -> list[dict]:
    """The whole campaign; rows in package order. jobs: groups run by that many processes; shortcuts: see
    draw (0: the campaigns of seeds 0 to 4)."""
    from tqdm import tqdm

    gs = groups(seed, packages, group_size, lanes, shortcuts)
    rows = []
    bar = tqdm(total=packages, desc="fuzz", unit="pkg", file=sys.stderr, disable=None if progress else True)
    if jobs <= 1:
        for g in gs:
            rows += run_group(seed, g)
            bar.update(len(g["indices"]))
            bar.set_postfix(summarise(rows)["counts"])
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = [pool.submit(run_group, seed, g) for g in gs]
            for f in as_completed(futs):
                part = f.result()
                rows += part
                bar.update(len(part))
                bar.set_postfix(summarise(rows)["counts"])
    bar.close()
    return sorted(rows, key=lambda r: r["index"])


def summarise(rows: list[dict]) -> dict:
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    by = {}
    for r in rows:
        key = f"{r['mode']} / {r['lanes']} lanes"
        by.setdefault(key, {o: 0 for o in OUTCOMES})[r["outcome"]] += 1
    res = [r for r in rows if r.get("shortcuts")]
    sc = [d for r in res for d in r["shortcuts"]]
    residual = {"packages": len(res), "multistep": sum(r["mode"] == "multistep" for r in res), "shortcuts": len(sc),
                "identity": sum("identity" in d for d in sc), "projection": sum("projection" in d for d in sc),
                "counts": {o: sum(r["outcome"] == o for r in res) for o in OUTCOMES}}
    return {"packages": len(rows), "counts": counts, "by_mode_lanes": dict(sorted(by.items())), "residual": residual}


def markdown(rows: list[dict], seed: int) -> str:
    s = summarise(rows)
    out = [f"# Random-network campaign, seed {seed}: {s['packages']} packages", "",
           "| mode / lanes | packages | " + " | ".join(OUTCOMES) + " |", "| --- | ---: |" + " ---: |" * len(OUTCOMES)]
    for key, c in s["by_mode_lanes"].items():
        out.append(f"| {key} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    c = s["counts"]
    out.append(f"| **all** | **{s['packages']}** | " + " | ".join(f"**{c[o]}**" for o in OUTCOMES) + " |")
    r = s["residual"]
    out += ["", f"Residual packages (SPEC version-2 shortcuts): {r['packages']} ({r['multistep']} multistep), "
                f"{r['shortcuts']} shortcuts ({r['identity']} identity, {r['projection']} projection); "
                + ", ".join(f"{o} {r['counts'][o]}" for o in OUTCOMES) + "."]
    odd = [r for r in rows if r["outcome"] != "match"]
    if odd:
        out += ["", "| package | mode | lanes | outcome | detail |", "| ---: | --- | ---: | --- | --- |"]
        out += [f"| {r['index']} | {r['mode']} | {r['lanes']} | {r['outcome']} | {r['detail']} |" for r in odd]
    return "\n".join(out) + "\n"


def write(rows: list[dict], seed: int, out: Path) -> dict:
    s = summarise(rows)
    (out / "fuzz.json").write_text(json.dumps({"seed": seed, "summary": s, "rows": rows}, indent=1) + "\n")
    (out / "fuzz.md").write_text(markdown(rows, seed))
    return s
