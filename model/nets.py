"""Network builders whose layer lists map one to one onto package layers.

A `Net` runs in one of two forms: `float` (ReLU, optional batch norm, the
baseline ANN) or `cat` (no batch norm, TTFS log activations and log weights,
the conversion-aware ANN). Activations always come before pooling, so the
SNN's min-code pooling equals the ANN's max pooling.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .package import layer_shapes
from .quant import QuantConfig, fixed_bias, log_act, log_weight


def fold_pool_into_conv(w: np.ndarray, k: int, s: int, p: int, pk: int, scale: float):
    """conv(sum_pool_pk(x)) as one conv of x (scale 1 / pk^2: an average pool): kernel k * pk, stride s * pk,
    padding p * pk (SPEC floors the sizes the same way), each weight repeated over its pk x pk block.
    Returns (weights, kernel, stride, padding)."""
    return np.repeat(np.repeat(w, pk, axis=2), pk, axis=3) * scale, k * pk, s * pk, p * pk


def fold_pool_into_dense(w: np.ndarray, pooled_shape, shape, pk: int, scale: float) -> np.ndarray:
    """dense(flatten(sum_pool_pk(x))) as one dense of flatten(x); positions the pool floored away weigh 0."""
    C, Hp, Wp = pooled_shape
    _, H, W = shape
    full = np.zeros((w.shape[0], C, H, W))
    full[:, :, :Hp * pk, :Wp * pk] = np.repeat(np.repeat(w.reshape(-1, C, Hp, Wp), pk, axis=2), pk, axis=3)
    return full.reshape(w.shape[0], -1) * scale


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


def resnet(input_shape=(3, 32, 32), classes=10, stages=((16, 1), (32, 1), (64, 1)), stem=None, hidden=None,
           width=1.0) -> list[dict]:
    """A residual network of basic blocks (two 3x3 convs, the second adding the block's input through an
    identity shortcut, or a strided 1x1 projection where the shape changes; SPEC version 2). stages:
    (channels, blocks) per stage, every stage after the first halving the map. Global average pooling
    before the classifier: the dense layer's `gap` (its window, a power of two), which the package writes
    as the dense layer with weights repeated over the window (SPEC section 1)."""
    ch = lambda c: max(1, int(c * width))   # noqa: E731
    spec = [{"type": "conv2d", "out_channels": ch(stem or stages[0][0]), "kernel": 3, "stride": 1, "padding": 1}]
    cur, (_, h, w) = ch(stem or stages[0][0]), input_shape
    for n, (channels, blocks) in enumerate(stages):
        for b in range(blocks):
            stride = 2 if n > 0 and b == 0 else 1
            src = len(spec) - 1
            out = ch(channels)
            spec.append({"type": "conv2d", "out_channels": out, "kernel": 3, "stride": stride, "padding": 1})
            sc = ({"from": src, "kind": "identity"} if stride == 1 and out == cur
                  else {"from": src, "kind": "projection", "stride": stride})
            spec.append({"type": "conv2d", "out_channels": out, "kernel": 3, "stride": 1, "padding": 1, "shortcut": sc})
            h, w, cur = (h - 1) // stride + 1, (w - 1) // stride + 1, out
    window = h * w
    if window & (window - 1):
        raise ValueError(f"resnet: the last map is {h}x{w}; global average pooling needs a power-of-two window "
                         "(SPEC: the pool folds into the dense layer as a shift)")
    spec.append({"type": "flatten"})
    if hidden:
        spec += [{"type": "dense", "out": ch(hidden), "gap": window}, {"type": "dense", "out": classes}]
    else:
        spec.append({"type": "dense", "out": classes, "gap": window})
    return spec


def resnet8(input_shape=(3, 32, 32), classes=10, width=1.0) -> list[dict]:
    """ResNet-8-style: a stem and three stages of one basic block (16, 32, 64 channels)."""
    return resnet(input_shape, classes, ((16, 1), (32, 1), (64, 1)), width=width)


def resnet19(input_shape=(3, 32, 32), classes=10, width=1.0) -> list[dict]:
    """The ResNet19 ATSNN and its predecessors use for CIFAR: a 128-channel stem, stages of 3, 3 and 2 basic
    blocks at 128, 256 and 512 channels, global average pooling, a 256-unit hidden layer (19 weighted layers);
    `width` scales every channel count."""
    return resnet(input_shape, classes, ((128, 3), (256, 3), (512, 2)), stem=128, hidden=256, width=width)


ARCHS = {"mlp": mlp, "cnn": cnn, "vgg11": lambda s, classes: vgg(11, s, classes), "vgg16": lambda s, classes: vgg(16, s, classes),
         "resnet8": lambda s, classes: resnet8(s, classes), "resnet19": lambda s, classes: resnet19(s, classes)}


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


def layer_modules(input_shape, spec: list[dict], batch_norm: bool):
    """The torch modules of a completed spec: per weighted layer its Linear / Conv2d (a `gap` dense layer
    takes one input per channel) and batch norm, and per residual layer its shortcut (`sc_mods`: a
    projection's bias-free 1x1 conv, and its batch norm) or, for an identity, the log2 of its fixed
    weight (0 until normalise moves it; the caller keeps it as the buffer `sc_log2_{i}`)."""
    weighted = [i for i, l in enumerate(spec) if l["type"] in ("dense", "conv2d")]
    mods, norms, sc_mods, sc_norms, sc_log2 = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), {}
    for i in weighted:
        l = spec[i]
        if l["type"] == "dense":
            mods[str(i)] = nn.Linear(l["in"] // l.get("gap", 1), l["out"])
            bn = nn.BatchNorm1d(l["out"])
        else:
            mods[str(i)] = nn.Conv2d(l["in_shape"][0], l["out_channels"], l["kernel"], l["stride"], l["padding"])
            bn = nn.BatchNorm2d(l["out_channels"])
        if batch_norm and i != weighted[-1]:
            norms[str(i)] = bn
        sc = l.get("shortcut")
        if sc is not None and sc["kind"] == "projection":
            src_c = layer_shapes(input_shape, spec[:sc["from"] + 1])[-1][0]
            sc_mods[str(i)] = nn.Conv2d(src_c, l["out_channels"], 1, sc["stride"], 0, bias=False)
            if batch_norm:
                sc_norms[str(i)] = nn.BatchNorm2d(l["out_channels"])
        elif sc is not None:
            sc_log2[i] = 0
    return weighted, mods, norms, sc_mods, sc_norms, sc_log2


def gap_dense(x: torch.Tensor, l: dict) -> torch.Tensor:
    """A `gap` dense layer's input: the flattened [C * window] map averaged over each channel's window."""
    return x.reshape(x.shape[0], -1, l["gap"]).mean(dim=2) if l.get("gap") else x


def shortcut_term(net, i: int, src: torch.Tensor, quant_weight) -> torch.Tensor:
    """Layer i's shortcut contribution from its source's activations: 2^E times them (identity) or the
    projection (its weights through quant_weight, then its batch norm if any)."""
    sc = net.spec[i]["shortcut"]
    if sc["kind"] == "identity":
        return src * (2.0 ** float(getattr(net, f"sc_log2_{i}")))
    y = nn.functional.conv2d(src, quant_weight(net.sc_mods[str(i)].weight), None, sc["stride"])
    return net.sc_norms[str(i)](y) if str(i) in net.sc_norms else y


class Net(nn.Module):
    def __init__(self, input_shape, spec, batch_norm=True):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.spec = complete_layers(input_shape, spec)
        self.form = "float"
        self.quant: QuantConfig | None = None
        self.weighted, self.mods, self.norms, self.sc_mods, self.sc_norms, sc_log2 = layer_modules(self.input_shape, self.spec, batch_norm)
        for i, v in sc_log2.items():
            self.register_buffer(f"sc_log2_{i}", torch.tensor(v))

    @property
    def output_index(self) -> int:
        return self.weighted[-1]

    def layer_weight(self, i):
        w = self.mods[str(i)].weight
        return log_weight(w, self.quant.weight_bits) if self.form == "cat" else w

    def layer_bias(self, i):
        b = self.mods[str(i)].bias
        return fixed_bias(b, self.quant.frac_bits) if self.form == "cat" else b

    def quant_weight(self, w):
        return log_weight(w, self.quant.weight_bits) if self.form == "cat" else w

    def forward(self, x, taps: dict | None = None):
        """Logits; `taps` (if given) collects each spiking layer's activation by layer index."""
        if self.form == "cat":
            x = log_act(x, self.quant)  # the input is TTFS-coded too
        acts = {}   # each conv / pool layer's output activations, for the shortcuts that read them
        for i, l in enumerate(self.spec):
            t = l["type"]
            if t == "flatten":
                x = x.flatten(1)
            elif t == "maxpool2d":
                x = nn.functional.max_pool2d(x, l["kernel"])
                acts[i] = x
            else:
                w, b = self.layer_weight(i), self.layer_bias(i)
                x = nn.functional.linear(gap_dense(x, l), w, b) if t == "dense" else nn.functional.conv2d(x, w, b, l["stride"], l["padding"])
                if i == self.output_index:
                    return x
                if str(i) in self.norms:
                    x = self.norms[str(i)](x)
                if "shortcut" in l:   # the second branch meets the first in the same potential
                    x = x + shortcut_term(self, i, acts[l["shortcut"]["from"]], self.quant_weight)
                if taps is not None:
                    taps[i] = x.detach()  # pre-activation: what the SNN compares with its thresholds
                x = log_act(x, self.quant) if self.form == "cat" else torch.relu(x)
                acts[i] = x
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
    for key, bn in list(out.sc_norms.items()):   # a projection's batch norm: its shift joins the layer's bias
        m, main = out.sc_mods[key], out.mods[key]
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        m.weight.data = m.weight.data * scale.reshape(-1, 1, 1, 1)
        main.bias.data = main.bias.data + bn.bias.detach() - bn.running_mean * scale
    out.norms, out.sc_norms = nn.ModuleDict(), nn.ModuleDict()
    return out


@torch.no_grad()
def normalise(net: Net, x: torch.Tensor, percentile: float = 99.9) -> tuple[Net, list[int]]:
    """Rescale a folded ReLU net so every spiking layer's activations sit in [0, 1].

    Each layer's scale is the power of two at or above the given percentile of
    its positive activations; powers of two keep log weights exactly
    representable (only the exponent offset moves). Returns the net and the
    log2 scales.
    """
    assert not net.norms and not net.sc_norms, "fold batch norm first"
    out = copy.deepcopy(net).eval()
    taps: dict = {}
    out.float()(x, taps)
    log2s, prev = [], 0
    scale = {}   # log2 scale of every layer's output activations (a pool keeps its input's)
    for i, l in enumerate(out.spec):
        if l["type"] not in ("dense", "conv2d"):
            scale[i] = prev
            continue
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
        sc = l.get("shortcut")
        if sc is not None:   # the source is in its own layer's scale: the shortcut moves by the difference
            d = scale[sc["from"]] - cur
            if sc["kind"] == "identity":
                getattr(out, f"sc_log2_{i}").add_(d)
            else:
                out.sc_mods[str(i)].weight.data *= 2.0 ** d
        log2s.append(cur)
        scale[i] = prev = cur
    return out, log2s


def to_cat(net: Net, q: QuantConfig) -> Net:
    """The conversion-aware form of a folded, normalised net."""
    out = copy.deepcopy(net)
    out.form, out.quant = "cat", q
    return out
