"""Every malformed input, enumerated: each manifest field and layer field of both modes (missing, wrong
type, out of range), an unknown field, each tensor (missing, wrong dtype, wrong shape, values out of
range, an extra one), broken files, inputs of the wrong shape, dtype or range, and output paths that
cannot be written. Each case must end `logspike golden` and `logspike sim` with one line
`logspike: error: ...` naming the field, exit status 2, no traceback, and no results file written.

The table is generated from the package itself, so a field added to the format is covered at once.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from logspike.cli import main
from logspike.model import randnet
from logspike.model.package import write


def _package(mode):
    rng = np.random.default_rng({"ttfs": 11, "multistep": 12}[mode])
    pkg = randnet.random_package(rng, mode, "conv", weight_bits=5, frac_bits=10)
    return pkg, randnet.random_inputs(rng, pkg, 2)


# out-of-range values per manifest field: (value, text the message must hold)
RANGE = {
    "format": ("logspike-netz", "format"), "version": (3, "version"), "mode": ("rate", "mode"),
    "input_shape": ([0, 1, 1], "input_shape[0]"), "weight_bits": (9, "weight_bits"), "frac_bits": (7, "frac_bits"),
    "acc_bits": (63, "acc_bits"), "time_steps": (0, "time_steps"), "tau": (3, "tau"), "lut": ([1], "lut"),
    "thresholds": ([0], "thresholds"), "leak_shift": (32, "leak_shift"), "exit": ({"margin": -1, "min_steps": 1}, "exit.margin"),
    "layers": ([], "layers"),
}
LAYER_RANGE = {"in": 0, "out": 0, "in_shape": [0, 1, 1], "out_channels": 0, "kernel": 65, "stride": 0, "padding": -1,
               "exp_offset": 33}


def _manifest_cases(mode):
    pkg, _ = _package(mode)
    m = pkg.manifest
    cases = []
    for k in m:
        cases.append((f"{mode}: {k} missing", ("del", k), k))
        cases.append((f"{mode}: {k} wrong type", ("set", k, "x" if k != "format" else 7), k))
        v, want = RANGE[k]
        cases.append((f"{mode}: {k} out of range", ("set", k, v), want))
    cases.append((f"{mode}: unknown field", ("set", "colour", "red"), "colour"))
    for i, l in enumerate(m["layers"]):
        for k in l:
            if k == "type":
                cases.append((f"{mode}: layers[{i}].type unknown", ("layer", i, k, "conv3d"), f"layers[{i}].type"))
                continue
            cases.append((f"{mode}: layers[{i}].{k} missing", ("ldel", i, k), f"layers[{i}].{k}"))
            cases.append((f"{mode}: layers[{i}].{k} wrong type", ("layer", i, k, "x"), f"layers[{i}].{k}"))
            cases.append((f"{mode}: layers[{i}].{k} out of range", ("layer", i, k, LAYER_RANGE[k]), f"layers[{i}].{k}"))
        cases.append((f"{mode}: layers[{i}] unknown field", ("layer", i, "dilation", 2), f"layers[{i}].dilation"))
    for key in pkg.tensors:
        cases.append((f"{mode}: {key} missing", ("tdel", key), key))
        cases.append((f"{mode}: {key} float dtype", ("tdtype", key), key))
        cases.append((f"{mode}: {key} wrong shape", ("tshape", key), key))
        cases.append((f"{mode}: {key} out of range", ("trange", key), key))
    cases.append((f"{mode}: extra tensor", ("tadd", "L99.sign"), "L99.sign"))
    return cases


def _apply(pkg, change):
    m, t = pkg.manifest, pkg.tensors
    op = change[0]
    if op == "del":
        del m[change[1]]
    elif op == "set":
        m[change[1]] = change[2]
    elif op == "ldel":
        del m["layers"][change[1]][change[2]]
    elif op == "layer":
        m["layers"][change[1]][change[2]] = change[3]
    elif op == "tdel":
        del t[change[1]]
    elif op == "tdtype":
        t[change[1]] = t[change[1]].astype(np.float32)
    elif op == "tshape":
        t[change[1]] = t[change[1]][..., :-1] if t[change[1]].shape[-1] > 1 else t[change[1]][:0]
    elif op == "trange":
        k = change[1]
        a = t[k].astype(np.int64)
        a.flat[0] = {"sign": 2, "mag": 99, "bias": 1 << 62}[k.split(".")[1]]
        t[k] = a if k.endswith("bias") else a.astype(np.uint8)
    elif op == "tadd":
        t[change[1]] = np.zeros(3, np.uint8)


def _write_raw(pkg, path):
    """Write a package without validating it (the point is that it is malformed)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(pkg.manifest))
    np.savez(path / "tensors.npz", **pkg.tensors)


def _one_line_error(capsys, argv, out):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(err) == 1 and err[0].startswith("logspike: error: ") and "Traceback" not in err[0], err
    assert not out.exists() and not out.with_suffix(".cycles.npy").exists(), "a results file was written"
    return err[0]


CASES = _manifest_cases("ttfs") + _manifest_cases("multistep")


@pytest.fixture
def no_build(monkeypatch):
    """sim must refuse before any Verilog or Verilator work."""
    import logspike.hw.sim

    def _no(*a, **k):
        raise AssertionError("sim reached the simulator with malformed input")
    monkeypatch.setattr(logspike.hw.sim, "simulate", _no)


@pytest.mark.parametrize("name,change,field", CASES, ids=[c[0] for c in CASES])
def test_malformed_package_field(name, change, field, tmp_path, capsys, no_build):
    mode = name.split(":")[0]
    pkg, x = _package(mode)
    bad = pkg.copy()
    _apply(bad, change)
    _write_raw(bad, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    for cmd in ("golden", "sim"):
        out = tmp_path / f"{cmd}.npz"
        msg = _one_line_error(capsys, [cmd, "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"),
                                       "--out", str(out)], out)
        assert field in msg, (name, msg)


def _file_cases():
    """(name, how to break the package folder or inputs, text the message must hold)."""
    def junk_npz(d):
        (d / "pkg" / "tensors.npz").write_bytes(b"PK\x03\x04 not really a zip")

    def truncated_npz(d):
        data = (d / "pkg" / "tensors.npz").read_bytes()
        (d / "pkg" / "tensors.npz").write_bytes(data[: len(data) // 2])

    def pickled_npz(d):
        np.savez(d / "pkg" / "tensors.npz", **{"L0.sign": np.array([object()], dtype=object)})

    def no_manifest(d):
        (d / "pkg" / "manifest.json").unlink()

    def not_json(d):
        (d / "pkg" / "manifest.json").write_text("{\"format\": ")

    def binary_manifest(d):
        (d / "pkg" / "manifest.json").write_bytes(b"\xff\xfe\x00")

    def manifest_list(d):
        (d / "pkg" / "manifest.json").write_text("[]")

    def package_is_file(d):
        shutil.rmtree(d / "pkg")
        (d / "pkg").write_text("x")

    def inputs(arr):
        return lambda d: np.save(d / "x.npy", arr(np.load(d / "x.npy")))

    def inputs_npz(d):
        np.savez(d / "x.npy", x=np.load(d / "x.npy"))
        (d / "x.npy.npz").rename(d / "x.npy")

    def inputs_junk(d):
        (d / "x.npy").write_bytes(b"\x93NUMPY junk")

    def inputs_missing(d):
        (d / "x.npy").unlink()

    return [
        ("tensors.npz not a zip", junk_npz, "tensors.npz: unreadable"),
        ("tensors.npz truncated", truncated_npz, "tensors.npz: unreadable"),
        ("tensors.npz with pickled objects", pickled_npz, "tensors.npz: unreadable"),
        ("manifest.json missing", no_manifest, "manifest.json is missing"),
        ("manifest.json not JSON", not_json, "not valid JSON"),
        ("manifest.json not text", binary_manifest, "not valid JSON"),
        ("manifest.json a list", manifest_list, "must be a JSON object"),
        ("package a file", package_is_file, "not a directory"),
        ("inputs wrong shape", inputs(lambda x: x[..., :-1]), "input_shape"),
        ("inputs missing batch axis", inputs(lambda x: x[0]), "input_shape"),
        ("inputs float dtype", inputs(lambda x: x.astype(np.float64)), "dtype float64"),
        ("inputs bool dtype", inputs(lambda x: x > 0), "dtype bool"),
        ("inputs above range", inputs(lambda x: x.astype(np.int64) + 300), "inputs value"),
        ("inputs negative", inputs(lambda x: x.astype(np.int64) - 300), "inputs value"),
        ("inputs empty", inputs(lambda x: x[:0]), "holds no samples"),
        ("inputs an npz archive", inputs_npz, "not one .npy array"),
        ("inputs junk", inputs_junk, "not a readable .npy"),
        ("inputs missing", inputs_missing, "no such file"),
    ]


FILE_CASES = _file_cases()


@pytest.mark.parametrize("mode", ["ttfs", "multistep"])
@pytest.mark.parametrize("name,breaks,text", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_malformed_files_and_inputs(mode, name, breaks, text, tmp_path, capsys, no_build):
    pkg, x = _package(mode)
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    breaks(tmp_path)
    for cmd in ("golden", "sim"):
        out = tmp_path / f"{cmd}.npz"
        msg = _one_line_error(capsys, [cmd, "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"),
                                       "--out", str(out)], out)
        assert text in msg, (name, msg)


@pytest.mark.parametrize("where", ["under a file", "a folder", "where no folder can be made"])
def test_unwritable_outputs(where, tmp_path, capsys, no_build):
    pkg, x = _package("ttfs")
    write(pkg, tmp_path / "pkg")
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    # /proc takes no new folders, not even from root
    out = {"under a file": tmp_path / "file" / "r.npz", "a folder": tmp_path / "folder",
           "where no folder can be made": "/proc/logspike-test/r.npz"}[where]
    for cmd in ("golden", "sim"):
        rc = main([cmd, "--package", str(tmp_path / "pkg"), "--inputs", str(tmp_path / "x.npy"), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("logspike: error: --out"), err
    assert list((tmp_path / "folder").iterdir()) == []
