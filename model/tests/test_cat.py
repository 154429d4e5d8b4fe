"""CAT quantizers, batch-norm folding, normalisation and conversion to a package."""
import numpy as np
import pytest
import torch

from logspike.model import arith, data, golden, train
from logspike.model.convert import encode_inputs, load_checkpoint, save_checkpoint, to_package
from logspike.model.nets import Net, build_spec, cnn, fold_batch_norm, mlp, normalise, to_cat, vgg
from logspike.model.package import read, write
from logspike.model.quant import QuantConfig, act_codes, code_weights, log_act, log_weight, weight_codes, weight_exponent


def test_weight_codes_are_log_rounded_powers_of_two():
    w = torch.tensor([0.0, 1.0, -1.0, 0.74, 0.70, 0.5, -0.26, 2.0 ** -14, 2.0 ** -14.6, 2.0 ** -13.4, 3e-9])
    E = weight_exponent(w)
    assert E == 0
    s, m = weight_codes(w, 5, E)
    # 0.74 > 2^-0.5 rounds up to 1; 0.70 < 2^-0.5 rounds down to 1/2; 2^-14.6 underflows (e = 15 > 14)
    assert m.tolist() == [0, 1, 1, 1, 2, 2, 3, 15, 0, 14, 0]
    assert s.tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    v = code_weights(s, m, E)
    assert v.tolist() == [0.0, 1.0, -1.0, 1.0, 0.5, 0.5, -0.25, 2.0 ** -14, 0.0, 2.0 ** -13, 0.0]


def test_weight_exponent_follows_the_largest_weight():
    assert weight_exponent(torch.tensor([0.1, -3.0])) == 2  # log2 3 = 1.58 rounds to 2
    assert weight_exponent(torch.tensor([0.01, 0.02])) == -6
    assert weight_exponent(torch.zeros(3)) == 0


def test_log_weight_straight_through_gradient():
    w = torch.tensor([0.3, -0.7], requires_grad=True)
    (log_weight(w, 5) * torch.tensor([2.0, 3.0])).sum().backward()
    assert w.grad.tolist() == [2.0, 3.0]


def test_log_act_levels_match_the_firing_rule():
    q = QuantConfig(time_steps=8, tau=2, frac_bits=12)
    k = torch.arange(-800, 6200)  # every fixed-point potential around the table, exactly representable
    x = k.to(torch.float32) / (1 << q.frac_bits)
    assert torch.equal(act_codes(x, q), arith.fire_code(k, q.thresholds()))
    y = log_act(x, q).numpy()
    levels = np.array([2.0 ** (-t / 2) for t in range(8)] + [0.0])
    assert np.abs(y[:, None] - levels[None, :]).min(axis=1).max() < 1e-6
    assert y[k >= (1 << 12)].min() == 1.0 and y[k < 0].max() == 0.0


def test_log_act_gradient_is_clipped_relu():
    q = QuantConfig()
    x = torch.tensor([-0.5, 0.3, 0.9, 1.4], requires_grad=True)
    log_act(x, q).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_encode_inputs_equals_spec_host_rule():
    q = QuantConfig(time_steps=16, tau=2)
    v = np.array([0.0, 1.0, 0.5, 0.70, 0.71, 1e-4, 0.0625])
    thr = q.thresholds()
    want = [next((t for t in range(16) if round(x * 2 ** 16) >= thr[t]), 16) for x in v]
    assert encode_inputs(v, q).tolist() == want


@pytest.mark.parametrize("spec_fn", [lambda: mlp((1, 8, 8), (12,), 4), lambda: cnn((1, 8, 8), (4, 6), 4)])
def test_fold_and_normalise_keep_the_function(spec_fn):
    torch.manual_seed(0)
    net = Net((1, 8, 8), spec_fn())
    for bn in net.norms.values():  # non-trivial statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(32, 1, 8, 8)
    folded = fold_batch_norm(net)
    assert not folded.norms
    assert torch.allclose(net(x), folded(x), atol=1e-5)
    normed, log2s = normalise(folded, x)
    assert torch.allclose(net(x), normed(x), atol=1e-4)
    taps = {}
    normed(x, taps)
    for i, a in taps.items():  # activations now mostly inside [0, 1]
        assert float((torch.relu(a) <= 1).float().mean()) > 0.99
    assert len(log2s) == len(net.weighted)


def test_vgg_builders_shapes():
    for depth, convs in ((11, 8), (16, 13)):
        spec = vgg(depth)
        assert sum(l["type"] == "conv2d" for l in spec) == convs
        net = Net((3, 32, 32), spec, batch_norm=False)
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert build_spec("vgg16", (3, 32, 32), 10) == vgg(16)
    with pytest.raises(ValueError, match="net 'resnet'"):
        build_spec("resnet", (3, 32, 32), 10)


def test_converted_package_matches_the_cat_ann_exactly_in_structure(tmp_path):
    torch.manual_seed(1)
    q = QuantConfig(time_steps=12, tau=2)
    net = to_cat(normalise(fold_batch_norm(Net((1, 8, 8), cnn((1, 8, 8), (4, 8), 5)).eval()), torch.rand(16, 1, 8, 8))[0], q)
    pkg = to_package(net, q)
    write(pkg, tmp_path / "p")
    back = read(tmp_path / "p")
    for i in net.weighted:
        w = net.mods[str(i)].weight
        E = back.layers[i]["exp_offset"]
        vals = code_weights(torch.from_numpy(back.tensors[f"L{i}.sign"].astype(np.int64)),
                            torch.from_numpy(back.tensors[f"L{i}.mag"].astype(np.int64)), E)
        assert torch.equal(vals, log_weight(w, q.weight_bits))  # package weights == what CAT trained with
        assert np.array_equal(back.tensors[f"L{i}.bias"], np.rint(net.mods[str(i)].bias.detach().double().numpy() * 2 ** 16).astype(np.int64))
    assert back.acc_bits >= q.frac_bits + 2


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    q = QuantConfig()
    net = to_cat(fold_batch_norm(Net((1, 8, 8), mlp((1, 8, 8), (9,), 3)).eval()), q)
    save_checkpoint(tmp_path / "c.pt", net, {"k": 1})
    back, meta = load_checkpoint(tmp_path / "c.pt")
    x = torch.rand(4, 1, 8, 8)
    assert meta == {"k": 1} and back.form == "cat" and back.quant == q
    assert torch.equal(back(x), net(x))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_digits_mlp_snn_within_half_a_point_of_cat_ann():
    """Issue 2's criterion on a real (briefly) trained network, end to end through the golden model."""
    torch.manual_seed(0)
    d = data.digits()
    q = QuantConfig()
    cfg = train.TrainConfig(net="mlp", epochs=25, cat_epochs=10)
    fnet, folded, _ = train.train_float(d, cfg)
    cat = train.train_cat(folded, d, q, cfg)
    cat_acc = train.accuracy(cat, d.test.x, d.test.y)
    res = golden.run(to_package(cat, q), encode_inputs(d.test.x, q))
    snn_acc = float((res["pred"] == d.test.y).mean())
    assert cat_acc > 0.93, cat_acc
    assert abs(snn_acc - cat_acc) <= 0.005, (snn_acc, cat_acc)
    # per image, the SNN and the CAT ANN agree almost everywhere
    with torch.no_grad():
        ann_pred = cat(torch.from_numpy(d.test.x)).argmax(1).numpy()
    assert (ann_pred == res["pred"]).mean() >= 0.99
