"""The package's layout keeps its promises: subpackages by stage, imports only downward, no cycles,
short modules. The import graph is read from the source (ast), so every import counts, lazy ones too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import binary_encoding

PKG = Path(binary_encoding.__file__).parent
# the stages, lowest first: a module imports only from its own stage or the ones before it
LAYERS = ["ranks", "metrics", "model", "data", "record", "callbacks", "run", "report", "train", "evaluate"]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """`binary_encoding.x.y` -> its file, for every module of the package."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """The package modules that `name` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    mods = modules()
    return {m for m in found if m in mods and m != name}


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1  # the package's own __init__: below all


def test_every_subpackage_and_top_module_has_a_layer():
    stages = {n.split(".")[1] for n in modules() if n.count(".") >= 1}
    assert stages - {"conf"} <= set(LAYERS), stages - set(LAYERS)


def test_no_module_imports_a_stage_above_its_own():
    upward = [
        f"{name} ({LAYERS[layer(name)]}) imports {dep} ({LAYERS[layer(dep)]})"
        for name, path in modules().items()
        for dep in imports(name, path)
        if layer(dep) > layer(name)
    ]
    assert upward == []


def test_the_import_graph_has_no_cycles():
    graph = {name: imports(name, path) for name, path in modules().items()}
    # packages import nothing but their own modules' names: an edge to a package's __init__ is no cycle
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> list[str] | None:
        state[n] = 1
        for m in sorted(graph[n]):
            if m in trail[-1:]:
                continue
            if state.get(m) == 1:
                return [*trail, n, m]
            if state.get(m) is None and (cycle := visit(m, [*trail, n])):
                return cycle
        state[n] = 2
        return None

    cycles = [c for n in sorted(graph) if state.get(n) is None and (c := visit(n, []))]
    assert cycles == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_package_module_is_longer_than_400_lines(name):
    n = len(modules()[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name} has {n} lines"
