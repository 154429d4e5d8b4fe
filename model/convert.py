"""ANN -> TTFS package (SPEC section 1), and checkpoints that carry what conversion needs.

The net must be folded and normalised (activations in [0, 1], see
nets.normalise); CAT nets are so by construction. Weights become log codes
with the same quantizer CAT trained with, biases become F-bit fixed point,
and acc_bits is the proven worst case.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import arith
from .nets import Net
from .package import Package, required_acc_bits, validate
from .quant import QuantConfig, log_weight, weight_codes, weight_exponent


def layer_tensors(net, weight_bits: int, frac_bits: int) -> tuple[list[dict], dict]:
    """Package layers (with exp_offset) and arrays of any net with `spec`, `weighted` and `mods`.

    Weights take the same log quantizer the net trained with; biases are
    rounded to F-bit fixed point. Shared by the ttfs and multistep exports.
    """
    tensors, layers = {}, []
    for i, l in enumerate(net.spec):
        l = {k: v for k, v in l.items() if k != "gap"}
        if i in net.weighted:
            m = net.mods[str(i)]
            w = m.weight
            if net.spec[i].get("gap"):   # global average pooling: each weight over its channel's window, / window
                n = net.spec[i]["gap"]
                w = torch.repeat_interleave(log_weight(w, weight_bits), n, dim=1) / n
            E = weight_exponent(w)
            sign, mag = weight_codes(w, weight_bits, E)
            l["exp_offset"] = E
            tensors[f"L{i}.sign"] = sign.numpy().astype(np.uint8)
            tensors[f"L{i}.mag"] = mag.numpy().astype(np.uint8)
            tensors[f"L{i}.bias"] = torch.round(m.bias.detach().double() * (1 << frac_bits)).numpy().astype(np.int64)
            sc = l.get("shortcut")
            if sc is not None:
                sc = dict(sc)
                if sc["kind"] == "identity":
                    sc["exp_offset"] = int(getattr(net, f"sc_log2_{i}"))
                else:
                    ws = net.sc_mods[str(i)].weight
                    sc["exp_offset"] = weight_exponent(ws)
                    ssign, smag = weight_codes(ws, weight_bits, sc["exp_offset"])
                    tensors[f"L{i}.sc_sign"] = ssign.numpy().astype(np.uint8)
                    tensors[f"L{i}.sc_mag"] = smag.numpy().astype(np.uint8)
                l["shortcut"] = sc
        layers.append(l)
    return layers, tensors


def package_version(layers: list[dict]) -> int:
    """2 where a layer uses a version-2 field (a shortcut), else 1: older readers keep taking the rest."""
    return 2 if any("shortcut" in l or "leak_shift" in l or "v_reset" in l for l in layers) else 1


def to_package(net: Net, q: QuantConfig, acc_bits: int | None = None) -> Package:
    layers, tensors = layer_tensors(net, q.weight_bits, q.frac_bits)
    manifest = {
        "format": "logspike-net", "version": package_version(layers), "mode": "ttfs", "input_shape": list(net.input_shape),
        "weight_bits": q.weight_bits, "frac_bits": q.frac_bits, "acc_bits": arith.ACC_BITS_RANGE[1],
        "time_steps": q.time_steps, "tau": q.tau, "lut": arith.make_lut(q.frac_bits, q.tau),
        "thresholds": q.thresholds(), "layers": layers,
    }
    pkg = Package(manifest, tensors)
    need = required_acc_bits(pkg)
    if acc_bits is not None and acc_bits < need:
        raise ValueError(f"acc_bits = {acc_bits}: this network's worst-case potential needs {need} bits")
    pkg.manifest["acc_bits"] = max(acc_bits or need, q.frac_bits + 2)
    return validate(pkg)


def encode_inputs(x: np.ndarray, q: QuantConfig) -> np.ndarray:
    """Images in [0, 1] -> TTFS input codes (SPEC section 3, host encoding)."""
    return arith.encode_value(x, q.frac_bits, q.thresholds())


def save_checkpoint(path, net: Net, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"input_shape": list(net.input_shape), "spec": net.spec, "form": net.form,
                "quant": net.quant.as_dict() if net.quant else None, "state": net.state_dict(), "meta": meta}, path)
    return path


def load_checkpoint(path) -> tuple[Net, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r}: no such file")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # pickle, zip or torch format errors all mean the same to the user
        raise ValueError(f"checkpoint {str(path)!r}: unreadable ({e})") from None
    try:
        spec = [{k: v for k, v in l.items() if k not in ("in", "in_shape")} for l in ck["spec"]]
        net = Net(ck["input_shape"], spec, batch_norm=False)
        net.form = ck["form"]
        net.quant = QuantConfig(**ck["quant"]) if ck["quant"] else None
        net.load_state_dict(ck["state"])
    except (KeyError, RuntimeError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"checkpoint {str(path)!r}: not a LogSpike checkpoint ({e})") from None
    return net.eval(), ck["meta"]
