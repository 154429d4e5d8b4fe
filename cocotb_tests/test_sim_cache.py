"""The Verilator model cache (hw.cosim): a finished build keeps only its executable, and the
cache is held under its size cap by evicting least recently used models, never one in use."""
import os

from filelock import FileLock

from logspike.hw import cosim

NOW = 1_000_000_000.0


def _entry(cache, name, mb, used=None, age=None):
    d = cache / name
    d.mkdir()
    (d / "sim").write_bytes(b"x" * int(mb * 1e6))
    if used is not None:
        (d / ".built").write_text("ok\n")
        os.utime(d / ".built", (NOW - used, NOW - used))
    if age is not None:
        os.utime(d, (NOW - age, NOW - age))
    return d


def test_evicts_least_recently_used_to_the_cap(tmp_path):
    old = _entry(tmp_path, "a", 1, used=9000)
    mid = _entry(tmp_path, "b", 1, used=8000)
    new = _entry(tmp_path, "c", 1, used=7000)
    gone = cosim.evict(tmp_path, 1.5, now=NOW)
    assert gone == [old, mid]
    assert not old.exists() and not mid.exists() and new.exists()


def test_under_the_cap_nothing_goes(tmp_path):
    es = [_entry(tmp_path, n, 1, used=9000) for n in "abc"]
    assert cosim.evict(tmp_path, 3.1, now=NOW) == []
    assert all(e.exists() for e in es)


def test_recent_kept_and_locked_models_are_never_evicted(tmp_path):
    recent = _entry(tmp_path, "recent", 1, used=cosim.KEEP_S - 10)
    keep = _entry(tmp_path, "keep", 1, used=9000)
    building = _entry(tmp_path, "building", 1, age=60)  # no stamp yet, folder 1 min old
    locked = _entry(tmp_path, "locked", 1, used=9500)
    killed = _entry(tmp_path, "killed", 1, age=2 * cosim.KEEP_S)  # no stamp, 2 h old
    with FileLock(str(locked) + ".lock"):
        # a second FileLock object on the same file: filelock is reentrant per object only
        gone = cosim.evict(tmp_path, 0, keep=keep, now=NOW)
    assert gone == [killed]
    assert recent.exists() and keep.exists() and building.exists() and locked.exists()


def test_slim_keeps_the_executable_only(tmp_path):
    for name in ("top", "build.log", ".built", "Vtop__ALL.o", "Vtop__pch.h.fast.gch", "top.v"):
        (tmp_path / name).write_text(name)
    (tmp_path / "obj").mkdir()
    (tmp_path / "obj" / "x.o").write_text("x")
    cosim.slim(tmp_path, "top")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".built", "build.log", "top"]


def test_build_slims_and_a_hit_refreshes_the_stamp(tmp_path, monkeypatch):
    """A real Verilator build of a small module: the entry keeps the executable only, a second build of
    the same Verilog is a hit (no rebuild) that marks the model used now."""
    monkeypatch.setattr(cosim, "CACHE", tmp_path)
    v = "module cnt(input clk, output reg [3:0] q); always @(posedge clk) q <= q + 1; endmodule\n"
    bdir = cosim.build(v, "cnt")
    assert sorted(p.name for p in bdir.iterdir()) == [".built", "build.log", "cnt"]
    assert os.access(bdir / "cnt", os.X_OK)
    exe_mtime = (bdir / "cnt").stat().st_mtime
    os.utime(bdir / ".built", (NOW, NOW))
    assert cosim.build(v, "cnt") == bdir
    assert (bdir / ".built").stat().st_mtime > NOW + 1e8   # touched now (2026), not left at NOW (2001)
    assert (bdir / "cnt").stat().st_mtime == exe_mtime       # not rebuilt
