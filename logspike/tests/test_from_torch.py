"""A user's own PyTorch module through the Python API: import, CAT, package, golden model and RTL agree."""
import numpy as np
import pytest
import torch
from torch import nn

import logspike
from logspike.model import data
from logspike.model.from_torch import TorchImportError, from_torch


def _digits_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.1)),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


def _train(module, d, epochs=8):
    """A user's own float training loop."""
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    x, y = torch.from_numpy(d.train.x), torch.from_numpy(d.train.y)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        module.train()
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    return module.eval()


@pytest.fixture(scope="module")
def trained():
    d = data.digits()
    return _train(_digits_cnn(), d), d


def test_imported_net_computes_what_the_module_computes(trained):
    module, d = trained
    net = from_torch(module, (1, 8, 8)).eval()
    x = torch.from_numpy(d.test.x)
    with torch.no_grad():
        assert torch.allclose(net(x), module(x), rtol=1e-4, atol=1e-5)
    assert [l["type"] for l in net.spec] == ["conv2d", "maxpool2d", "conv2d", "flatten", "dense"]


def test_user_module_to_verified_verilog(trained, tmp_path):
    """The README's example: a user's torch module to a package whose RTL equals the golden model."""
    module, d = trained
    net = logspike.from_torch(module, input_shape=(1, 8, 8))
    pkg = net.cat_train(d, epochs=3).convert()
    x = net.encode(d.test.x)
    res = logspike.predict(pkg, x)
    acc = float((res["pred"] == d.test.y).mean())
    with torch.no_grad():
        float_acc = float((module(torch.from_numpy(d.test.x)).argmax(1).numpy() == d.test.y).mean())
    assert acc > 0.85 and acc >= float_acc - 0.05, (acc, float_acc)
    rtl, cycles = logspike.simulate(pkg, x[:6], lanes=2)
    assert all(np.array_equal(rtl[k], res[k][:6]) for k in rtl) and len(cycles) == 6
    files = logspike.verilog(pkg, tmp_path / "rtl", lanes=2)
    assert "module logspike" in files["verilog"].read_text()


def test_convert_without_cat_needs_calibration_images(trained):
    module, d = trained
    net = logspike.from_torch(module, (1, 8, 8))
    with pytest.raises(ValueError, match="cat_train first, or give calib images"):
        net.convert()
    pkg = net.convert(calib=d.train.x)
    assert pkg.mode == "ttfs" and list(pkg.input_shape) == [1, 8, 8]


def test_data_of_another_shape_is_refused(trained):
    module, _ = trained
    with pytest.raises(ValueError, match=r"data digits28: images \[1, 28, 28\] but the network takes input_shape \[1, 8, 8\]"):
        logspike.from_torch(module, (1, 8, 8)).cat_train("digits28", epochs=1)


@pytest.mark.parametrize("layers,msg", [
    ([nn.Linear(64, 10), nn.Sigmoid()], r"layer 1 \(Sigmoid\): not supported; supported: Conv2d, Linear"),
    ([nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.MaxPool2d(1), nn.Flatten(), nn.Linear(36, 10)],
     r"layer 2 \(AvgPool2d\): must be followed by a Conv2d, or Flatten and a Linear, to fold into \(found MaxPool2d\)"),
    ([nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(100, 10)],
     r"layer 2 \(AvgPool2d .*must be stride = kernel"),
    ([nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 10)], r"layer 0 \(AvgPool2d\): pooling the input is not supported"),
    ([nn.Flatten(), nn.Linear(64, 32), nn.Linear(32, 10)], r"layer 2 \(Linear\): the layer before it needs a ReLU"),
    ([nn.Flatten(), nn.Linear(64, 10), nn.ReLU()], r"gives the logits, so no ReLU"),
    ([nn.Conv2d(1, 4, 3, groups=1, dilation=2), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10)], r"layer 0 \(Conv2d groups=1, dilation=\(2, 2\)\)"),
    ([nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(100, 10)], r"layer 2 \(MaxPool2d .*must be stride = kernel"),
    ([nn.Conv2d(1, 4, (3, 1)), nn.ReLU(), nn.Flatten(), nn.Linear(96, 10)], r"layer 0 \(kernel_size = \(3, 1\)\): must be square"),
    ([nn.ReLU(), nn.Flatten(), nn.Linear(64, 10)], r"layer 0 \(ReLU\): must follow a Conv2d or Linear"),
    ([nn.Flatten(), nn.Linear(64, 10), nn.BatchNorm1d(10)], r"gives the logits, so no ReLU or batch norm"),
    ([nn.Flatten(), nn.Linear(100, 10)], r"input_shape \[1, 8, 8\]: the module does not take it"),
])
def test_unsupported_modules_are_one_line_errors(layers, msg):
    with pytest.raises(TorchImportError, match=msg) as e:
        from_torch(nn.Sequential(*layers), (1, 8, 8))
    assert "\n" not in str(e.value)


def test_a_module_that_is_not_sequential_is_refused():
    class Custom(nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(TorchImportError, match="module Custom: must be an nn.Sequential"):
        from_torch(Custom(), (1, 8, 8))


def test_average_pools_fold_into_the_next_layer():
    """AvgPool2d before a Conv2d and before Flatten + Linear: folded (kernel 3 -> 6, stride 1 -> 2; the dense
    layer over the unpooled map, its weights repeated and divided by the window); the imported net computes
    what the module does."""
    torch.manual_seed(3)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 3, padding=1),
                           nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 10)).eval()
    net = from_torch(module, (1, 8, 8))
    conv = net.spec[1]
    assert (conv["kernel"], conv["stride"], conv["padding"]) == (6, 2, 2) and [l["type"] for l in net.spec] == [
        "conv2d", "conv2d", "flatten", "dense"]
    assert net.spec[-1]["in"] == 6 * 4 * 4
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), module(x), rtol=1e-4, atol=1e-5)
