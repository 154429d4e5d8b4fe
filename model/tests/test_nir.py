"""NIR import and export (model/nir_io.py): the round trip LogSpike -> NIR file -> LogSpike, the import
of pools (folded, or as max-pools) exact against the float NIR semantics, the deviations it reports, and
the errors for graphs it cannot take."""
import math

import nir
import numpy as np
import pytest

from logspike.model import golden, nir_io, randnet
from logspike.model.nir_io import NirImportError

DT = 2.0 ** -10   # a power of two: r = 1/dt, tau = dt 2^k are exact floats
TIE_BREAK = 2.0 ** -14


def _canonical(pkg):
    """A zero weight's sign bit means nothing; NIR's 0.0 keeps none (our converters write 0 too)."""
    for i in pkg.weighted_indices():
        pkg.tensors[f"L{i}.sign"][pkg.tensors[f"L{i}.mag"] == 0] = 0
    return pkg


def _same(a, b):
    return a.manifest == b.manifest and set(a.tensors) == set(b.tensors) and \
        all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


@pytest.mark.parametrize("seed", range(16))
def test_round_trip_gives_the_same_package(tmp_path, seed):
    """Every multistep package (dense and conv, max-pools, version-1 and version-2 neurons, exit rules) ->
    a .nir file -> the same package (manifest and arrays)."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        try:
            pkg = randnet.random_package(rng, "multistep", ("dense", "conv")[seed % 2])
            break
        except Exception:
            continue
    pkgs = [_canonical(pkg), _canonical(randnet.with_neurons(pkg, rng, p=0.7))]
    for q in pkgs:
        f = tmp_path / f"{q.version}.nir"
        nir.write(str(f), nir_io.to_nir(q, 1e-4))
        back = nir_io.from_nir(f, 1e-4).package
        assert _same(back, q), (q.manifest, back.manifest)


def test_round_trip_covers_pools_and_both_versions():
    kinds = set()
    for seed in range(16):
        rng = np.random.default_rng(seed)
        pkg = randnet.random_package(rng, "multistep", ("dense", "conv")[seed % 2])
        kinds |= {l["type"] for l in pkg.layers}
    assert {"maxpool2d", "conv2d", "dense", "flatten"} <= kinds


def _pow2(rng, shape, lo=-3, hi=0):
    """Random weights that are signed powers of two (or 0): the log quantizer keeps them exactly."""
    w = np.exp2(rng.integers(lo, hi + 1, size=shape).astype(np.float64)) * rng.choice([-1.0, 1.0], size=shape)
    return np.where(rng.random(shape) < 0.2, 0.0, w)


def _if(shape, thr=1.0, v_reset=0.0):
    n = np.ones(shape)
    return nir.IF(r=n / DT, v_threshold=thr * n, v_reset=v_reset * n)


def _graph(nodes, in_shape, out_shape):
    names = ["input"] + [f"n{i}" for i in range(len(nodes))] + ["output"]
    nd = {"input": nir.Input(input_type={"input": np.array(in_shape)}),
          "output": nir.Output(output_type={"output": np.array(out_shape)})}
    nd.update({f"n{i}": v for i, v in enumerate(nodes)})
    return nir.NIRGraph(nodes=nd, edges=list(zip(names[:-1], names[1:])))


def _pool_graph(seed, pool_kind):
    """conv (IF) -> pool folded into the next conv -> conv (IF, resets to 0.25) -> SumPool + IF (a
    max-pool) -> Flatten -> Affine (I)."""
    rng = np.random.default_rng(seed)
    pool = (nir.SumPool2d if pool_kind == "sum" else nir.AvgPool2d)(
        kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    # potentials are multiples of 2^-10 plus s * 2^-14 after s steps of the 2^-14 bias, so none ever equals the
    # threshold (where NIR's v > thr and SPEC's V >= 2^F differ)
    nodes = [nir.Conv2d(input_shape=(9, 9), weight=_pow2(rng, (3, 1, 3, 3), -2, 1), stride=1, padding=1, dilation=1,
                        groups=1, bias=np.exp2(-rng.integers(2, 5, size=3).astype(float)) + TIE_BREAK),
             _if((3, 9, 9)), pool,   # 9x9 -> 4x4 (the last row and column floored away)
             nir.Conv2d(input_shape=(4, 4), weight=_pow2(rng, (4, 3, 2, 2), -2, 0), stride=1, padding=0, dilation=1,
                        groups=1, bias=np.full(4, TIE_BREAK)),
             _if((4, 3, 3), v_reset=0.25),
             nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]), padding=np.array([0, 0])),
             _if((4, 1, 1), thr=0.5), nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0, end_dim=-1),
             nir.Affine(weight=_pow2(rng, (5, 4), -2, 0), bias=np.zeros(5)), nir.I(r=np.ones(5) / DT)]
    return _graph(nodes, [1, 9, 9], [5])


@pytest.mark.parametrize("pool_kind", ["sum", "avg"])
def test_pools_import_exactly(pool_kind):
    """Power-of-two weights and time constants, IF neurons: the imported package's output trace is NIR's
    float semantics (fed the bytes the package takes, b / 256) times 2^F, step for step; the pool before a
    conv is folded into it (kernel 2 -> 4, stride 1 -> 2) and SumPool + IF becomes a max-pool."""
    seen_spikes = 0
    for seed in range(4):
        g = _pool_graph(seed, pool_kind)
        imp = nir_io.from_nir(g, DT, time_steps=6, weight_bits=6, frac_bits=16)
        pkg = imp.package
        assert [l["type"] for l in pkg.layers] == ["conv2d", "conv2d", "maxpool2d", "flatten", "dense"]
        assert (pkg.layers[1]["kernel"], pkg.layers[1]["stride"], pkg.layers[1]["in_shape"]) == (4, 2, [3, 9, 9])
        assert pkg.layers[1]["v_reset"] == 1 << 14 and pkg.layers[0]["v_reset"] == 0
        assert pkg.layer_leak(0) == 0 and pkg.version == 2
        rng = np.random.default_rng(100 + seed)
        xb = rng.integers(0, 256, size=(8, 1, 9, 9)).astype(np.uint8)
        want = nir_io.reference(g, xb / 256.0, DT, 6)                  # [B, T, 5]
        got = golden.output_trace(pkg, xb).astype(np.float64)           # [B, T, 5], integers of F bits
        assert np.array_equal(got, want * (1 << 16)), (got[0, -1], want[0, -1] * (1 << 16))
        seen_spikes += int(golden.run(pkg, xb)["spikes_L2"].sum())
    assert seen_spikes > 0   # the max-pool passes spikes on: the comparison is not of silent networks


def test_leak_and_output_deviations_are_reported():
    rng = np.random.default_rng(0)
    n = np.ones(6)
    g = _graph([nir.Affine(weight=_pow2(rng, (6, 4)), bias=np.zeros(6)),
                nir.LIF(tau=n * DT * 10, r=n * 10, v_leak=0 * n, v_threshold=n, v_reset=0 * n),   # dt/tau 0.1
                nir.Affine(weight=_pow2(rng, (3, 6)), bias=np.zeros(3)),
                nir.LIF(tau=np.ones(3) * DT * 4, r=np.ones(3) * 4, v_leak=np.zeros(3), v_threshold=np.ones(3))],
               [4], [3])
    imp = nir_io.from_nir(g, DT, time_steps=5)
    text = "\n".join(imp.deviations)
    assert "node 'n1': leak dt/tau = 0.1" in text and "2^-3" in text and "25.0% off" in text
    assert "node 'n3': the output layer integrates" in text
    assert imp.package.layer_leak(0) == 3


def test_exact_leaks_report_no_leak_deviation():
    rng = np.random.default_rng(1)
    n = np.ones(6)
    g = _graph([nir.Affine(weight=_pow2(rng, (6, 4)), bias=np.zeros(6)),
                nir.LIF(tau=n * DT * 8, r=n * 8, v_leak=0 * n, v_threshold=n * 2.0, v_reset=0 * n),
                nir.Affine(weight=_pow2(rng, (3, 6)), bias=np.zeros(3)), nir.I(r=np.ones(3) / DT)], [4], [3])
    imp = nir_io.from_nir(g, DT, time_steps=5)
    assert not any("leak" in d for d in imp.deviations), imp.deviations
    assert imp.package.layer_leak(0) == 3


def _dense_graph():
    rng = np.random.default_rng(2)
    return _graph([nir.Affine(weight=_pow2(rng, (6, 4)), bias=np.zeros(6)), _if((6,)),
                   nir.Affine(weight=_pow2(rng, (3, 6)), bias=np.zeros(3)), nir.I(r=np.ones(3) / DT)], [4], [3])


def _mutate(fn):
    g = _dense_graph()
    fn(g)
    return g


BAD = [
    (lambda g: g.nodes.__setitem__("n1", nir.CubaLIF(tau_syn=np.ones(6), tau_mem=np.ones(6), r=np.ones(6),
                                                     v_leak=np.zeros(6), v_threshold=np.ones(6))),
     "node 'n1': CubaLIF is not supported; supported nodes: Input, Output"),
    (lambda g: g.edges.append(("n0", "n2")), "node 'n0': 2 outputs"),
    (lambda g: g.edges.append(("n1", "n1")), "node 'n1': 2 inputs"),
    (lambda g: g.nodes.__setitem__("n1", _if((6,), thr=0.0)), "node 'n1': v_threshold must be > 0"),
    (lambda g: g.nodes.__setitem__("n2", nir.Affine(weight=np.ones((3, 5)), bias=np.zeros(3))),
     "node 'n2': weight shape [3, 5] after a tensor of shape [6]"),
    (lambda g: g.nodes.__setitem__("n1", nir.LIF(tau=np.ones(6) * DT, r=np.ones(6), v_leak=np.zeros(6),
                                                 v_threshold=np.ones(6))), "node 'n1': dt / tau = 1 >= 1"),
    (lambda g: g.nodes.__setitem__("n1", nir.I(r=np.ones(6) / DT)), "node 'n0': a hidden weighted layer must be followed by an IF or LIF"),
]


@pytest.mark.parametrize("mutate,message", BAD)
def test_graphs_it_cannot_take_are_refused_naming_the_node(mutate, message):
    with pytest.raises(NirImportError) as e:
        nir_io.from_nir(_mutate(mutate), DT, time_steps=4)
    assert message in str(e.value), str(e.value)


def test_import_needs_dt_and_time_steps():
    with pytest.raises(NirImportError, match="dt = 0: must be a positive number"):
        nir_io.from_nir(_dense_graph(), 0, time_steps=4)
    with pytest.raises(NirImportError, match="dt = nan"):
        nir_io.from_nir(_dense_graph(), math.nan, time_steps=4)
    with pytest.raises(NirImportError, match="time_steps: not given"):
        nir_io.from_nir(_dense_graph(), DT)


def test_conv_pool_too_wide_and_grouped_conv_refused():
    rng = np.random.default_rng(3)
    conv = nir.Conv2d(input_shape=(4, 4), weight=_pow2(rng, (2, 2, 3, 3)), stride=1, padding=1, dilation=1,
                      groups=2, bias=np.zeros(2))
    g = _graph([nir.Conv2d(input_shape=(4, 4), weight=_pow2(rng, (2, 1, 3, 3)), stride=1, padding=1, dilation=1,
                           groups=1, bias=np.zeros(2)), _if((2, 4, 4)), conv, _if((2, 4, 4)),
                nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1),
                nir.Affine(weight=_pow2(rng, (3, 32)), bias=np.zeros(3))], [1, 4, 4], [3])
    with pytest.raises(NirImportError, match="node 'n2': groups = 2"):
        nir_io.from_nir(g, DT, time_steps=3)


def test_a_file_that_is_not_nir(tmp_path):
    f = tmp_path / "x.nir"
    f.write_bytes(b"not an hdf5 file")
    with pytest.raises(NirImportError, match="not a NIR graph file"):
        nir_io.read_graph(f)
    with pytest.raises(NirImportError, match="no such file"):
        nir_io.read_graph(tmp_path / "missing.nir")


def test_ttfs_packages_have_no_nir_form():
    pkg = randnet.random_package(np.random.default_rng(0), "ttfs", "dense")
    with pytest.raises(NirImportError, match="mode = 'ttfs'"):
        nir_io.to_nir(pkg)


def test_residual_packages_are_not_exported():
    pkg = randnet.random_residual_package(np.random.default_rng(1), "multistep")
    with pytest.raises(NirImportError, match=r"layers\[2\]\.shortcut: residual connections are not exported"):
        nir_io.to_nir(pkg)
