"""`logspike nir-export` and `logspike nir-import`: the trained ATSNN package out to NIR and back, the
accuracy report with --data, and one-line errors."""
import numpy as np

from logspike.cli import main
from logspike.model.package import read

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
ATSNN = ROOT / "golden" / "digits_atsnn" / "package"


def test_export_import_round_trip_and_accuracy(tmp_path, capsys):
    f = tmp_path / "atsnn.nir"
    assert main(["nir-export", "--package", str(ATSNN), "--out", str(f)]) == 0
    out = capsys.readouterr().out
    assert "reset by subtracting the threshold" in out and f"-> {f}" in out
    assert main(["nir-import", str(f), "--dt", "1e-4", "--out", str(tmp_path / "back"), "--data", "digits",
                 "--limit", "100"]) == 0
    out = capsys.readouterr().out
    a, b = read(ATSNN), read(tmp_path / "back")
    assert a.manifest == b.manifest and all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    line = next(x for x in out.splitlines() if x.startswith("accuracy on 100 digits test images"))
    pkg_acc = float(line.split("imported package (golden model) ")[1].split("%")[0])
    assert pkg_acc > 80, line   # the trained network, read back exactly
    assert "NIR float (dt 0.0001, 16 steps)" in line and "same prediction" in line


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_text("hello")
    assert main(["nir-import", str(bad), "--dt", "1e-4", "--time-steps", "4", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("logspike: error: ") and "not a NIR graph file" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()
    assert main(["nir-export", "--package", str(ROOT / "golden" / "digits_mlp" / "package"),
                 "--out", str(tmp_path / "x.nir")]) == 2
    assert "mode = 'ttfs'" in capsys.readouterr().err
    good = tmp_path / "good.nir"
    assert main(["nir-export", "--package", str(ATSNN), "--out", str(good)]) == 0
    capsys.readouterr()
    assert main(["nir-import", str(good), "--dt", "-1", "--out", str(tmp_path / "q")]) == 2
    assert "dt = -1.0: must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()
