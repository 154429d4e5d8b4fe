"""The README's examples (and the NIR report's) run as written."""
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
README, NIR_REPORT = ROOT / "README.md", ROOT / "model" / "reports" / "nir.md"


def _block_after(marker: str, doc: Path = README) -> str:
    text = doc.read_text()
    at = text.index(marker)
    m = re.search(r"```python\n(.*?)```", text[at:], re.S)
    assert m, f"no python block after {marker!r}"
    return m.group(1)


def test_own_pytorch_module_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(_block_after("Your own PyTorch module"), "README.md", "exec"), scope)
    res, rtl, d = scope["res"], scope["rtl"], scope["d"]
    assert all(np.array_equal(rtl[k], res[k][:20]) for k in rtl)   # the RTL equals the golden model
    assert (res["pred"] == d.test.y).mean() > 0.85                 # and the network learned digits
    assert (tmp_path / "out" / "my_net" / "logspike.v").exists()


def test_snntorch_through_nir_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(_block_after("An snnTorch network trained on digits", NIR_REPORT), "nir.md", "exec"), scope)
    res, rtl, d, imp = scope["res"], scope["rtl"], scope["d"], scope["imp"]
    assert all(np.array_equal(rtl[k], res[k][:8]) for k in rtl)    # the RTL equals the golden model
    assert (res["pred"] == d.test.y).mean() > 0.85                  # the imported network still reads digits
    assert imp.package.version == 2 and imp.package.layers[1]["v_reset"] == 0   # NIR's reset to 0, exactly
    assert any("output layer integrates" in x for x in imp.deviations)
