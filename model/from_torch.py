"""A user's PyTorch module as a LogSpike `Net`: the layers the package format has, the weights copied.

Accepted: an `nn.Sequential` (nested ones are flattened) of Conv2d, Linear, BatchNorm1d/2d (right after
a weighted layer: folded into it later), ReLU after every weighted layer but the last (the TTFS firing
rule is a ReLU), MaxPool2d with stride = kernel and no padding, Flatten, and Dropout / Identity (no-ops
at inference). The last weighted layer gives the logits. Anything else is an error naming the layer and
what is supported; so is an `input_shape` the module cannot take. The imported Net computes what the
module computes in eval mode: checked on random inputs before it is returned.

AvgPool2d (stride = kernel, no padding, floor mode) where it is exact: right before a Conv2d, or before
Flatten and a Linear. Averaging is linear, so it is folded into that layer (the kernel and stride grow by
the pool's and the weights repeat over its window, divided by its area; a dense layer's weights repeat over
the window of each pooled position). An average pool anywhere else is refused: SPEC.md pools by maximum
only (the earliest spike wins), and an average of TTFS codes is not a code.
"""
from __future__ import annotations

import torch
from torch import nn

from .nets import Net, fold_pool_into_conv, fold_pool_into_dense
from .package import layer_shapes

SUPPORTED = ("Conv2d, Linear, BatchNorm1d/2d, ReLU, MaxPool2d (stride = kernel), AvgPool2d (stride = kernel, before a "
             "Conv2d or Flatten + Linear), Flatten, Dropout, Identity")


class TorchImportError(ValueError):
    """The module is not a chain of supported layers, or does not match input_shape (one line)."""


def _flat(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _flat(child, f"{prefix}{name}.")
        return out
    return [(prefix.rstrip("."), module)]


def _pair(v, what: str, name: str) -> int:
    a, b = (v, v) if isinstance(v, int) else tuple(v)
    if a != b:
        raise TorchImportError(f"layer {name} ({what} = {tuple(v)}): must be square (the package has one {what})")
    return int(a)


def _conv_layer(name: str, m: nn.Conv2d) -> dict:
    if m.groups != 1 or _pair(m.dilation, "dilation", name) != 1:
        raise TorchImportError(f"layer {name} (Conv2d groups={m.groups}, dilation={m.dilation}): must be groups=1, dilation=1")
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise TorchImportError(f"layer {name} (Conv2d padding={m.padding!r}, padding_mode={m.padding_mode!r}): "
                               "must be integer zero padding")
    return {"type": "conv2d", "out_channels": m.out_channels, "kernel": _pair(m.kernel_size, "kernel_size", name),
            "stride": _pair(m.stride, "stride", name), "padding": _pair(m.padding, "padding", name)}


def _pool_layer(name: str, m: nn.MaxPool2d) -> dict:
    k = _pair(m.kernel_size, "kernel_size", name)
    s = _pair(m.stride if m.stride is not None else m.kernel_size, "stride", name)
    if s != k or _pair(m.padding, "padding", name) != 0 or _pair(m.dilation, "dilation", name) != 1 or m.ceil_mode:
        raise TorchImportError(f"layer {name} (MaxPool2d kernel={m.kernel_size}, stride={m.stride}, padding={m.padding}, "
                               f"ceil_mode={m.ceil_mode}): must be stride = kernel, no padding or dilation, floor mode")
    return {"type": "maxpool2d", "kernel": k}


def _avg_pool(name: str, m: nn.AvgPool2d) -> int:
    k = _pair(m.kernel_size, "kernel_size", name)
    s = _pair(m.stride if m.stride is not None else m.kernel_size, "stride", name)
    if s != k or _pair(m.padding, "padding", name) != 0 or m.ceil_mode or m.divisor_override is not None:
        raise TorchImportError(f"layer {name} (AvgPool2d kernel={m.kernel_size}, stride={m.stride}, padding={m.padding}, "
                               f"ceil_mode={m.ceil_mode}): must be stride = kernel, no padding, floor mode")
    return k


def parse(module: nn.Module) -> tuple[list[dict], dict[int, nn.Module], dict[int, nn.Module]]:
    """(package layer spec, {spec index: weighted torch layer}, {spec index: its batch norm}). A weighted
    layer an average pool folds into has `avg_pool` (the pool's kernel) in its spec entry until from_torch
    folds it."""
    if not isinstance(module, nn.Sequential):
        raise TorchImportError(f"module {type(module).__name__}: must be an nn.Sequential of {SUPPORTED}")
    spec, weighted, norms = [], {}, {}
    pending_relu = None  # the weighted layer whose ReLU has not come yet
    pending_pool = None  # (kernel, name) of an average pool not yet folded into the next weighted layer
    for name, m in _flat(module):
        if isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            last = len(spec) - 1
            if pending_relu is None or pending_relu != last or last in norms:
                raise TorchImportError(f"layer {name} ({type(m).__name__}): must follow a Conv2d or Linear directly")
            if not m.track_running_stats or m.running_mean is None:
                raise TorchImportError(f"layer {name} ({type(m).__name__}): needs running statistics to fold")
            norms[last] = m
            continue
        if isinstance(m, nn.ReLU):
            if pending_relu is None:
                raise TorchImportError(f"layer {name} (ReLU): must follow a Conv2d or Linear (and its batch norm)")
            pending_relu = None
            continue
        if pending_pool is not None and not isinstance(m, (nn.Conv2d, nn.Linear, nn.Flatten)):
            raise TorchImportError(f"layer {pending_pool[1]} (AvgPool2d): must be followed by a Conv2d, or Flatten "
                                   f"and a Linear, to fold into (found {type(m).__name__})")
        if pending_relu is not None and isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten)):
            raise TorchImportError(f"layer {name} ({type(m).__name__}): the layer before it needs a ReLU "
                                   "(every weighted layer but the last fires through one)")
        if isinstance(m, nn.AvgPool2d):
            if pending_pool is not None:
                raise TorchImportError(f"layer {name} (AvgPool2d): a second pool before the layer to fold into")
            if not weighted and not spec:
                raise TorchImportError(f"layer {name} (AvgPool2d): pooling the input is not supported")
            pending_pool = (_avg_pool(name, m), name)
            continue
        if isinstance(m, nn.Conv2d):
            spec.append(_conv_layer(name, m))
        elif isinstance(m, nn.Linear):
            spec.append({"type": "dense", "out": m.out_features})
        elif isinstance(m, nn.MaxPool2d):
            spec.append(_pool_layer(name, m))
            continue
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise TorchImportError(f"layer {name} (Flatten start_dim={m.start_dim}, end_dim={m.end_dim}): "
                                       "must flatten every dimension but the batch")
            spec.append({"type": "flatten"})
            continue
        else:
            raise TorchImportError(f"layer {name} ({type(m).__name__}): not supported; supported: {SUPPORTED}")
        if pending_pool is not None:
            spec[-1]["avg_pool"] = pending_pool[0]
            pending_pool = None
        weighted[len(spec) - 1] = m
        pending_relu = len(spec) - 1
    if pending_pool is not None:
        raise TorchImportError(f"layer {pending_pool[1]} (AvgPool2d): nothing follows it to fold it into")
    if not weighted:
        raise TorchImportError("module has no Conv2d or Linear layer")
    last = max(weighted)
    if pending_relu != last or last in norms:
        raise TorchImportError(f"layer {last} of the package (the last weighted layer): gives the logits, so no ReLU "
                               "or batch norm may follow it")
    if any(l["type"] != "flatten" for l in spec[last + 1:]):
        raise TorchImportError("the last weighted layer must be the module's last layer (it gives the logits)")
    return spec, weighted, norms


def from_torch(module: nn.Module, input_shape) -> Net:
    """The module as a float-form Net with batch norm (fold and normalise it, then CAT-train or convert)."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise TorchImportError(f"input_shape {list(shape)}: must be [C, H, W] or [features]")
    spec, weighted, norms = parse(module)
    pools = {i: spec[i].pop("avg_pool") for i in list(weighted) if "avg_pool" in spec[i]}
    for i, pk in pools.items():   # the folded conv: kernel, stride and padding grow by the pool's
        if spec[i]["type"] == "conv2d":
            l = spec[i]
            l["kernel"], l["stride"], l["padding"] = l["kernel"] * pk, l["stride"] * pk, l["padding"] * pk
    module = module.eval()
    x = torch.rand((8,) + shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            want = module(x)
        net = Net(shape, spec, batch_norm=True)
    except (RuntimeError, ValueError) as e:
        raise TorchImportError(f"input_shape {list(shape)}: the module does not take it "
                               f"({' '.join(str(e).split())[:200]})") from None
    with torch.no_grad():
        for i, m in weighted.items():
            mine = net.mods[str(i)]
            w = m.weight
            if i in pools:
                w = _folded_weight(net, i, m.weight, pools[i])
            if tuple(mine.weight.shape) != tuple(w.shape):
                raise TorchImportError(f"input_shape {list(shape)}: layer {i} expects weights {list(mine.weight.shape)}, "
                                       f"the module has {list(m.weight.shape)}")
            mine.weight.copy_(w)
            mine.bias.copy_(m.bias if m.bias is not None else torch.zeros_like(mine.bias))
            if str(i) in net.norms:
                bn = net.norms[str(i)]
                if i in norms:
                    bn.load_state_dict(norms[i].state_dict())
                    bn.eps = norms[i].eps
                else:  # no batch norm there: an exact identity
                    bn.reset_parameters()
                    bn.eps = 0.0
    net.eval()
    with torch.no_grad():
        got = net(x)
    if tuple(want.shape) != tuple(got.shape):
        raise TorchImportError(f"input_shape {list(shape)}: the module gives {list(want.shape[1:])} outputs, "
                               f"the imported net {list(got.shape[1:])}")
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise TorchImportError(f"the imported net differs from the module by {float((got - want).abs().max()):.3g}")
    return net


def _folded_weight(net: Net, i: int, w: torch.Tensor, pk: int) -> torch.Tensor:
    """Layer i's weights with the average pool of kernel pk before it folded in (nets.fold_pool_into_*)."""
    l = net.spec[i]
    a = w.detach().double().numpy()
    if l["type"] == "conv2d":
        out = fold_pool_into_conv(a, l["kernel"] // pk, 1, 0, pk, 1.0 / (pk * pk))[0]
    else:
        src = layer_shapes(net.input_shape, net.spec[:i - 1])[-1]   # the map before the flatten
        pooled = (src[0], src[1] // pk, src[2] // pk)
        if a.shape[1] != pooled[0] * pooled[1] * pooled[2]:
            raise TorchImportError(f"layer {i}: a Linear of {a.shape[1]} inputs after an average pool to {list(pooled)}")
        out = fold_pool_into_dense(a, pooled, src, pk, 1.0 / (pk * pk))
    return torch.from_numpy(out).to(w.dtype)
