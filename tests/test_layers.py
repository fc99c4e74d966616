"""The package layers of perfex/: every import (module level, inside functions, under TYPE_CHECKING) points down.

    cli, api (the fronts: scripts, the perfex command, the Python API)
      -> tools (research tools on top: analysis/, study/)
      -> stages (evaluate, train, infer, explain)
      -> data, checkpoint
      -> core (errors, schema, paths, compute, metrics, tables, clips, ...)

Packages on one layer may import each other one way only: the graph of imports between perfex's packages has no
cycle (today: evaluate -> train -> infer -> explain, data -> checkpoint). ``models/`` imports nothing from perfex.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PERFEX = ROOT / "perfex"

LAYERS = {  # top-level entry of perfex/ -> layer (higher may import lower)
    "core": 0,
    "data": 1, "checkpoint": 1,
    "train": 2, "infer": 2, "evaluate": 2, "explain": 2,
    "tools": 3,
    "cli": 4, "api": 4, "__init__": 4,
}
LAYER_NAMES = ["core", "data/checkpoint", "stages", "tools", "cli/api"]
MAX_TOP_LEVEL = 15
PACKAGE_SIZE = (4, 10)  # modules (besides __init__.py) of each package, sub-packages counted on their own


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, typing_only: bool = True) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``import`` and ``from ... import`` in the file, at any depth; for
    ``from package import name``, ``package.name`` where that is a module of perfex, else ``package``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    skipped = set()
    if not typing_only:  # leave out imports under ``if TYPE_CHECKING:`` (never run)
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if _is_module(sub) else target))
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def entry_of(module: str) -> str | None:
    """The top-level entry of perfex/ a module belongs to ('core', 'train', 'api', '__init__'), None outside perfex."""
    parts = module.split(".")
    if parts[0] != "perfex":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = sorted(PERFEX.rglob("*.py"))


def test_every_top_level_entry_has_a_layer_and_there_are_few():
    entries = sorted(p.stem if p.is_file() else p.name for p in PERFEX.iterdir()
                     if (p.is_file() and p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").is_file()))
    assert len(entries) <= MAX_TOP_LEVEL, entries
    assert set(entries) == set(LAYERS), set(entries) ^ set(LAYERS)
    strays = [p.name for p in PERFEX.iterdir() if p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").is_file()]
    assert not strays, f"folders without __init__.py in perfex/: {strays}"


def test_packages_hold_four_to_ten_modules():
    wrong = {}
    for init in PERFEX.rglob("__init__.py"):
        if init.parent == PERFEX:
            continue
        modules = [p for p in init.parent.glob("*.py") if p.name != "__init__.py"]
        packages = [p for p in init.parent.iterdir() if (p / "__init__.py").is_file()]
        low, high = PACKAGE_SIZE
        grouping = not modules and packages  # a package of sub-packages only (tools/)
        if not grouping and not low <= len(modules) <= high:
            wrong[module_name(init)] = len(modules)
    assert not wrong, f"packages outside {PACKAGE_SIZE[0]}-{PACKAGE_SIZE[1]} modules: {wrong}"


def test_no_import_goes_to_a_higher_layer():
    upward = []
    for path in MODULES:
        source = module_name(path)
        here = LAYERS[entry_of(source)]
        for line, target in imports_of(path):
            entry = entry_of(target)
            if entry is not None and LAYERS[entry] > here:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({LAYER_NAMES[here]}) imports {target} "
                              f"({LAYER_NAMES[LAYERS[entry]]})")
    assert not upward, "imports to a higher layer:\n" + "\n".join(upward)


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {entry: set() for entry in LAYERS}
    for path in MODULES:
        source = entry_of(module_name(path))
        for _, target in imports_of(path):
            entry = entry_of(target)
            if entry is not None and entry != source:
                graph[source].add(entry)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_cycle_between_packages():
    cycle = _cycle(_package_graph())
    assert cycle is None, "import cycle between perfex's packages: " + " -> ".join(cycle)


def test_no_cycle_between_modules():
    """Function-level imports included (those under TYPE_CHECKING, which never run, left out): no module reaches itself
    through imports."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        source = module_name(path)
        graph[source] = {t for _, t in imports_of(path, typing_only=False) if t.startswith("perfex.") and t != source
                         and not source.startswith(t + ".")}  # a module importing its own package's __init__
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between perfex's modules: " + " -> ".join(cycle)


def test_models_import_nothing_from_perfex():
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {target}" for p in sorted((ROOT / "models").rglob("*.py"))
             for line, target in imports_of(p) if target.split(".")[0] == "perfex"]
    assert not wrong, wrong


def test_the_scan_sees_function_level_imports():
    """The checker itself: an import inside a function body is found (deploy's per-frame writer loads on demand)."""
    assert "perfex.infer.per_frame" in {t for _, t in imports_of(PERFEX / "infer" / "deploy.py")}
