"""The import structure reads one way: arithmetic and package -> golden model and training (model) ->
golden vectors -> hardware generator (hw) -> synthesis (synth) -> application (logspike: CLI, demo, API).

Every import is read from the source (function-level imports too, since lazy imports still bind layers),
so an upward import, a circle of imports, a reach into another module's private names, a test importing
from another test, an import of a module that does not exist, or an import under the old top-level
names (`model`, `hw`, ...) fails here.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# folder -> (package name, layer); the application is the logspike/ folder itself
FOLDERS = {"model": ("logspike.model", 0), "golden": ("logspike.golden", 1), "hw": ("logspike.hw", 2),
           "synth": ("logspike.synth", 3), "logspike": ("logspike", 4)}
# the bottom of the model layer: arith imports nothing of ours, package only arith
BOTTOM = {"logspike.model.arith": set(), "logspike.model.package": {"logspike.model.arith"}}
OLD_NAMES = {"model", "hw", "synth", "golden"}


def is_test(path: Path) -> bool:
    return path.name.startswith("test_") or "tests" in path.parts or "cocotb_tests" in path.parts


def module_name(root: Path, path: Path) -> str | None:
    rel = path.relative_to(root)
    if rel.parts[0] == "cocotb_tests":
        return "cocotb_tests." + path.stem
    if rel.parts[0] not in FOLDERS:
        return None
    parts = [FOLDERS[rel.parts[0]][0]] + list(rel.parts[1:-1]) + ([] if path.stem == "__init__" else [path.stem])
    return ".".join(parts)


def layer_of(mod: str) -> int | None:
    best = None
    for pkg, layer in FOLDERS.values():
        if (mod == pkg or mod.startswith(pkg + ".")) and (best is None or len(pkg) > len(best[0])):
            best = (pkg, layer)
    return None if best is None else best[1]


def imports(path: Path, mod: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = mod if path.stem == "__init__" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((target, [a.name for a in node.names], node.lineno))
    return out


def check(root: Path) -> list[str]:
    """Every layering rule broken under root, one line each."""
    files = [p for p in sorted(root.rglob("*.py")) if ".venv" not in p.parts and "build" not in p.parts
             and "out" not in p.relative_to(root).parts[:1]]
    mods = {m: p for p in files if (m := module_name(root, p))}
    ours = set(mods)
    problems, graph = [], {m: set() for m in mods}
    for mod, path in mods.items():
        where = f"{path.relative_to(root)}"
        for target, names, line in imports(path, mod):
            top = target.split(".")[0]
            if top in OLD_NAMES:
                problems.append(f"{where}:{line}: imports {target!r} by its old top-level name (use logspike.{target})")
                continue
            if top == "logspike" and target not in ours:
                problems.append(f"{where}:{line}: imports {target!r}, which is no module of the package")
                continue
            # `from pkg import module` names a module; `from module import name` a name in it
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in ours] or ([target] if target in ours else [])
            for n in names:
                if n.startswith("_") and not n.startswith("__") and f"{target}.{n}" not in ours and target != mod:
                    problems.append(f"{where}:{line}: imports the private name {n!r} of {target}")
            if top == "cocotb_tests" or top.startswith("test_"):
                problems.append(f"{where}:{line}: imports {target!r}, a test module (shared helpers go in a common module)")
            for dep in hits:
                if dep.rpartition(".")[2].startswith("test_"):
                    problems.append(f"{where}:{line}: imports {dep!r}, a test module (shared helpers go in a common module)")
                if is_test(path):
                    continue
                graph[mod].add(dep)
                lm, ld = layer_of(mod), layer_of(dep)
                if lm is not None and ld is not None and ld > lm:
                    problems.append(f"{where}:{line}: {mod} (layer {lm}) imports {dep} (layer {ld}), an upward import")
                if mod in BOTTOM and dep not in BOTTOM[mod]:
                    problems.append(f"{where}:{line}: {mod} is the bottom of the stack and may not import {dep}")
    problems += [f"circular imports: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a closed path."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_repository_layering():
    problems = check(ROOT)
    assert not problems, "\n".join(problems)


def test_checker_catches_each_rule(tmp_path):
    """The checker itself: a tree with one violation of each rule reports each."""
    files = {
        "model/__init__.py": "", "model/arith.py": "from . import golden\n",
        "model/golden.py": "from logspike.hw import top\nfrom logspike.model.nets import _private\n",
        "model/nets.py": "from .golden import x\n", "model/x.py": "import model.arith\n",
        "hw/__init__.py": "", "hw/top.py": "from .bank import B\n", "hw/bank.py": "from .top import T\n",
        "logspike/__init__.py": "", "logspike/cli.py": "from logspike.hw import top\nfrom logspike.hw.cli import x\n",
        "cocotb_tests/test_a.py": "from test_b import helper\n", "cocotb_tests/test_b.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = "\n".join(check(tmp_path))
    assert "logspike.model.golden (layer 0) imports logspike.hw.top (layer 2)" in found
    assert "private name '_private'" in found
    assert "by its old top-level name" in found
    assert "logspike.model.arith is the bottom of the stack" in found
    assert "circular imports: logspike.hw.bank -> logspike.hw.top -> logspike.hw.bank" in found
    assert "circular imports: logspike.model.golden -> logspike.model.nets -> logspike.model.golden" in found
    assert "'test_b', a test module" in found
    assert "'logspike.hw.cli', which is no module" in found
    assert "logspike.cli (layer" not in found   # the application may import every layer
