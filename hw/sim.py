"""`simulate(cfg, pkg, inputs)`: run a package on the generated RTL (cocotb + Verilator).

Both modes: ttfs codes or multistep bytes in; the result dict has the SPEC
section 5 keys (multistep: exit_step and per-neuron spike counts up to the
exit step), batched like model.golden.run; cycles are the RTL's own count of
each whole inference, so early exit shows up as fewer cycles.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from model.package import Package

from . import cosim, image
from .config import Config, fits
from .top import Processor, res_layout

TOP = "logspike"


def build(cfg: Config, baked: Package | None = None) -> Path:
    img = image.bake(cfg, baked) if baked is not None else None
    return cosim.build(cosim.verilog_of(Processor(cfg, image=img), TOP), TOP)


def run_steps(cfg: Config, steps: list, test_dir=None, seed: int = 0, baked: Package | None = None) -> list:
    """Run a list of driver steps ({"cfg": beats} / {"infer": [beats per sample]} / {"abort_after": n, "inp": beats});
    returns the raw result beats of each inference."""
    bdir = build(cfg, baked)
    tag_shift = res_layout(cfg)["tag"].offset
    job = {"steps": steps, "seed": seed, "tag_shift": tag_shift}
    if test_dir is None:
        with tempfile.TemporaryDirectory(prefix="logspike-sim-") as d:
            return cosim.run(bdir, TOP, "hw.tb_driver", Path(d), job)["results"]
    return cosim.run(bdir, TOP, "hw.tb_driver", Path(test_dir), job)["results"]


def collate(cfg: Config, pkg: Package, raw: list) -> tuple[dict, list]:
    parsed = [image.parse_results(cfg, pkg, r) for r in raw]
    res = {k: np.stack([np.asarray(p[0][k]) for p in parsed]).astype(np.int64) for k in parsed[0][0]}
    return res, [p[1] for p in parsed]


def simulate(cfg: Config, pkg: Package, inputs, test_dir=None, gap=0.0, ready_p=1.0, seed=0):
    """Load pkg over the config stream, run every input; returns (results, cycles per inference)."""
    fits(cfg, pkg)
    steps = [{"cfg": image.config_beats(cfg, pkg), "gap": gap},
             {"infer": [image.input_beats(cfg, pkg, x) for x in inputs], "gap": gap, "ready_p": ready_p}]
    res, counters = collate(cfg, pkg, run_steps(cfg, steps, test_dir, seed))
    return res, [c["cycles"] for c in counters]
