"""Shared build configuration and helpers of the processor tests."""
from dataclasses import replace

import numpy as np

from logspike.hw import image, sim
from logspike.hw.config import Config
from logspike.model import golden, randnet

# One build serves every test package (they are loaded over the config stream).
CFG = Config(lanes=4, weight_bits=5, frac_bits=10, acc_bits=32, max_t=16, max_tau=4, max_layers=12,
             max_neurons=1024, max_weight_words=4096, max_bias_words=64, max_inputs=256)
# The same at 8 lanes with the fire bank split in two (hw.config fire_split, the default from 16 lanes on).
# Narrow firing compares (thr_bits: frac_bits + 2, as build_for makes them), so the clamp meets random potentials;
# 8 lanes: two lane groups, so the register copies of the PE's forwarding selects and of the bank's valid
# (hw.sequencer.copies, one per four lanes) each serve their own lanes
SPLIT = replace(CFG, lanes=8, fire_split=2, thr_bits=CFG.frac_bits + 2)
# The same with its weights and biases in external memory (hw/fetch.py): a 64-bit AXI4 port and small buffers,
# so the prefetch's room and credit limits bind
EXT = replace(CFG, weights="external", axi_data_bits=64, fetch_ops=64, fetch_beats=64, axi_max_burst=16,
              axi_outstanding=3, max_event_ops=32)


def make_pkg(seed, kind, tau=None, **kw):
    rng = np.random.default_rng(seed)
    return randnet.random_package(rng, "ttfs", kind, weight_bits=CFG.weight_bits, frac_bits=CFG.frac_bits, tau=tau, **kw), rng


def check(pkg, x, raw, counters_out=None, want=None, cfg=CFG):
    """Compare parsed result beats (of a `cfg` build) against model.golden on every key (want:
    golden.run(pkg, x), if the caller has it already)."""
    res, counters = sim.collate(cfg, pkg, raw)
    want = golden.run(pkg, x) if want is None else want
    assert set(res) == set(want), (sorted(res), sorted(want))
    for k in want:
        assert np.array_equal(res[k], want[k]), f"{k}: rtl {res[k].tolist()} golden {want[k].tolist()}"
    if counters_out is not None:
        counters_out.extend(counters)
    return counters


def run_back_to_back(cfg, cases, tmp_path, seed=0, gap=0.0, ready_p=1.0) -> list:
    """cases: (pkg, x) loaded one after another into ONE `cfg` build and inferred back to back, with valid
    gaps `gap` on the config and input streams and result ready `ready_p`; every result key checked against
    model.golden. Returns each case's END-beat counters."""
    steps = []
    for pkg, x in cases:
        steps += [{"cfg": image.config_beats(cfg, pkg), "gap": gap},
                  {"infer": [image.input_beats(cfg, pkg, xi) for xi in x], "gap": gap, "ready_p": ready_p}]
    raw = sim.run_steps(cfg, steps, tmp_path, seed=seed)
    assert len(raw) == sum(len(x) for _, x in cases), (len(raw), [len(x) for _, x in cases])
    pos, out = 0, []
    for pkg, x in cases:
        out.append(check(pkg, x, raw[pos:pos + len(x)], cfg=cfg))
        pos += len(x)
    return out


def infer_step(pkg, x, **kw):
    return dict({"infer": [image.input_beats(CFG, pkg, xi) for xi in x]}, **kw)


def cfg_step(pkg, **kw):
    return dict({"cfg": image.config_beats(CFG, pkg)}, **kw)


def make_ms(seed, kind, leak_shift=None, time_steps=None, batch=4, quantile=0.5, min_steps=None):
    """A random multistep package whose margin is picked from its own output trace, so that
    the samples exit at different steps; returns (pkg, inputs)."""
    rng = np.random.default_rng(seed)
    pkg = randnet.random_package(rng, "multistep", kind, weight_bits=CFG.weight_bits, frac_bits=CFG.frac_bits,
                                 leak_shift=leak_shift, time_steps=time_steps or int(rng.integers(4, 12)),
                                 margin=None, min_steps=min_steps or int(rng.integers(1, 3)))
    x = randnet.random_inputs(rng, pkg, batch, silent=float(rng.uniform(0.1, 0.5)))
    tr = golden.output_trace(pkg, x)  # [B, T, K]
    top = np.sort(tr, axis=2)
    ratio = (top[:, :, -1] - top[:, :, -2]) / np.arange(1, tr.shape[1] + 1)[None, :]
    pkg.manifest["exit"]["margin"] = int(np.quantile(ratio, quantile))
    return pkg, x


def residual(seed, mode, layers=None, batch=3, max_t=None, **kw):
    """A random residual package (randnet.random_residual_package) of the shared build's W and F, and inputs."""
    rng = np.random.default_rng(seed)
    pkg = randnet.random_residual_package(rng, mode, weight_bits=CFG.weight_bits, frac_bits=CFG.frac_bits,
                                          time_steps=max_t and int(rng.integers(2, max_t + 1)), layers=layers, **kw)
    return pkg, randnet.random_inputs(rng, pkg, batch, silent=float(rng.uniform(0.1, 0.5)))
