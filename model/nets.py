"""Network builders whose layer lists map one to one onto package layers.

A `Net` runs in one of two forms: `float` (ReLU, optional batch norm, the
baseline ANN) or `cat` (no batch norm, TTFS log activations and log weights,
the conversion-aware ANN). Activations always come before pooling, so the
SNN's min-code pooling equals the ANN's max pooling.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .package import layer_shapes
from .quant import QuantConfig, fixed_bias, log_act, log_weight


def mlp(input_shape=(1, 8, 8), hidden=(64,), classes=10) -> list[dict]:
    spec = [{"type": "flatten"}] if len(input_shape) == 3 else []
    spec += [{"type": "dense", "out": h} for h in hidden]
    return spec + [{"type": "dense", "out": classes}]


def cnn(input_shape=(1, 8, 8), channels=(16, 32), classes=10) -> list[dict]:
    """conv-pool blocks then one dense layer: the small CNN for 8x8 digits."""
    spec = []
    for c in channels:
        spec += [{"type": "conv2d", "out_channels": c, "kernel": 3, "stride": 1, "padding": 1}, {"type": "maxpool2d", "kernel": 2}]
    return spec + [{"type": "flatten"}, {"type": "dense", "out": classes}]


VGG_CFG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg(depth=16, input_shape=(3, 32, 32), classes=10, width=1.0, hidden=512) -> list[dict]:
    """VGG-11/16 for 32x32x3: 3x3 convs, 2x2 pools, then dense hidden-classes."""
    spec = []
    for v in VGG_CFG[depth]:
        if v == "M":
            spec.append({"type": "maxpool2d", "kernel": 2})
        else:
            spec.append({"type": "conv2d", "out_channels": max(1, int(v * width)), "kernel": 3, "stride": 1, "padding": 1})
    return spec + [{"type": "flatten"}, {"type": "dense", "out": max(1, int(hidden * width))}, {"type": "dense", "out": classes}]


ARCHS = {"mlp": mlp, "cnn": cnn, "vgg11": lambda s, classes: vgg(11, s, classes), "vgg16": lambda s, classes: vgg(16, s, classes)}


def build_spec(name: str, input_shape, classes: int) -> list[dict]:
    if name not in ARCHS:
        raise ValueError(f"net {name!r}: must be one of {sorted(ARCHS)}")
    return ARCHS[name](tuple(input_shape), classes=classes)


def complete_layers(input_shape, spec) -> list[dict]:
    """Fill in the package layer fields (in, in_shape, ...) from the chained shapes."""
    out, shape = [], tuple(input_shape)
    for s in spec:
        l = dict(s)
        if l["type"] == "dense":
            l["in"] = shape[0]
        elif l["type"] == "conv2d":
            l["in_shape"] = list(shape)
        shape = layer_shapes(shape, [dict(l, exp_offset=0)])[-1]
        out.append(l)
    return out


class Net(nn.Module):
    def __init__(self, input_shape, spec, batch_norm=True):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.spec = complete_layers(input_shape, spec)
        self.form = "float"
        self.quant: QuantConfig | None = None
        self.weighted = [i for i, l in enumerate(self.spec) if l["type"] in ("dense", "conv2d")]
        mods, norms = nn.ModuleDict(), nn.ModuleDict()
        for i in self.weighted:
            l = self.spec[i]
            if l["type"] == "dense":
                mods[str(i)] = nn.Linear(l["in"], l["out"])
                bn = nn.BatchNorm1d(l["out"])
            else:
                mods[str(i)] = nn.Conv2d(l["in_shape"][0], l["out_channels"], l["kernel"], l["stride"], l["padding"])
                bn = nn.BatchNorm2d(l["out_channels"])
            if batch_norm and i != self.weighted[-1]:
                norms[str(i)] = bn
        self.mods, self.norms = mods, norms

    @property
    def output_index(self) -> int:
        return self.weighted[-1]

    def layer_weight(self, i):
        w = self.mods[str(i)].weight
        return log_weight(w, self.quant.weight_bits) if self.form == "cat" else w

    def layer_bias(self, i):
        b = self.mods[str(i)].bias
        return fixed_bias(b, self.quant.frac_bits) if self.form == "cat" else b

    def forward(self, x, taps: dict | None = None):
        """Logits; `taps` (if given) collects each spiking layer's activation by layer index."""
        if self.form == "cat":
            x = log_act(x, self.quant)  # the input is TTFS-coded too
        for i, l in enumerate(self.spec):
            t = l["type"]
            if t == "flatten":
                x = x.flatten(1)
            elif t == "maxpool2d":
                x = nn.functional.max_pool2d(x, l["kernel"])
            else:
                w, b = self.layer_weight(i), self.layer_bias(i)
                x = nn.functional.linear(x, w, b) if t == "dense" else nn.functional.conv2d(x, w, b, l["stride"], l["padding"])
                if i == self.output_index:
                    return x
                if str(i) in self.norms:
                    x = self.norms[str(i)](x)
                if taps is not None:
                    taps[i] = x.detach()  # pre-activation: what the SNN compares with its thresholds
                x = log_act(x, self.quant) if self.form == "cat" else torch.relu(x)
        raise AssertionError("spec has no output layer")


def fold_batch_norm(net: Net) -> Net:
    """Same function without batch norm: scale and shift folded into weights and bias (eval stats)."""
    out = copy.deepcopy(net).eval()
    for key, bn in list(out.norms.items()):
        m = out.mods[key]
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        shape = (-1,) + (1,) * (m.weight.dim() - 1)
        m.weight.data = m.weight.data * scale.reshape(shape)
        m.bias.data = (m.bias.data - bn.running_mean) * scale + bn.bias.detach()
    out.norms = nn.ModuleDict()
    return out


@torch.no_grad()
def normalise(net: Net, x: torch.Tensor, percentile: float = 99.9) -> tuple[Net, list[int]]:
    """Rescale a folded ReLU net so every spiking layer's activations sit in [0, 1].

    Each layer's scale is the power of two at or above the given percentile of
    its positive activations; powers of two keep log weights exactly
    representable (only the exponent offset moves). Returns the net and the
    log2 scales.
    """
    assert not net.norms, "fold batch norm first"
    out = copy.deepcopy(net).eval()
    taps: dict = {}
    out.float()(x, taps)
    log2s, prev = [], 0
    for i in out.weighted:
        m = out.mods[str(i)]
        if i == out.output_index:
            cur = 0
        else:
            a = torch.relu(taps[i]).flatten()
            a = a[a > 0]
            v = float(torch.quantile(a[: 1 << 24], percentile / 100)) if len(a) else 1.0
            cur = int(torch.ceil(torch.log2(torch.tensor(max(v, 1e-12)))).item())
        m.weight.data *= 2.0 ** (prev - cur)
        m.bias.data *= 2.0 ** (-cur)
        log2s.append(cur)
        prev = cur
    return out, log2s


def to_cat(net: Net, q: QuantConfig) -> Net:
    """The conversion-aware form of a folded, normalised net."""
    out = copy.deepcopy(net)
    out.form, out.quant = "cat", q
    return out
