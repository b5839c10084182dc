"""The package's shape: light modules stay light, no import cycles, one home for argparse, loading a
model skips the training loop, and the package maps of the docstrings name every module.

These read the source with :mod:`ast` or import in a fresh interpreter, so what other tests have
imported already does not matter.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nicbook

PACKAGE = Path(nicbook.__file__).parent

#: Modules that need numpy and Pillow only (the package map of ``nicbook/__init__.py`` says so).
LIGHT_MODULES = (
    "nicbook.entropy",
    "nicbook.jpeg",
    "nicbook.transforms",
    "nicbook.metrics",
    "nicbook.data",
    "nicbook.deadzone",
    "nicbook.blockcoder",
    "nicbook.pillow_codecs",
    "nicbook.evaluation",
    "nicbook.exercises",
)
HEAVY = ("torch", "matplotlib")

#: Modules the package maps do not name yet (reported); remove one here once its map names it.
def module_name(path: Path) -> str:
    """``nicbook/codec/latents.py`` -> ``nicbook.codec.latents``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def run_fresh(code: str, *args: str) -> str:
    """What ``code`` prints in a fresh interpreter (arguments in ``sys.argv[1:]``)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# --------------------------------------------------------------------------- what importing loads

_LOADED_BY_EACH = """
import importlib, json, sys
heavy = ("torch", "matplotlib")
found = {}
for name in sys.argv[1:]:
    importlib.import_module(name)
    found[name] = [module for module in heavy if module in sys.modules]
import nicbook.cli
nicbook.cli.build_parser()
found["nicbook.cli.build_parser()"] = [module for module in heavy if module in sys.modules]
print(json.dumps(found))
"""


def test_light_modules_and_the_command_line_parser_load_neither_torch_nor_matplotlib():
    found = json.loads(run_fresh(_LOADED_BY_EACH, *LIGHT_MODULES))
    culprits = {name: loaded for name, loaded in found.items() if loaded}
    assert not culprits, f"first import that loaded {HEAVY}: {next(iter(culprits.items()))}"


def test_loading_a_shipped_model_does_not_import_the_training_loop():
    code = "import sys\nfrom nicbook import codec, zoo\nzoo.load('factorized', 4)\nprint(sorted(m for m in sys.modules if m.startswith('nicbook.nn')))"
    loaded = run_fresh(code).strip()
    assert "nicbook.nn.models" in loaded and "nicbook.nn.training" not in loaded, loaded


# --------------------------------------------------------------------------- the import graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(statements: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in function bodies nor under ``if TYPE_CHECKING``."""
    for statement in statements:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            yield statement
        elif isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from module_level_imports(statement.body)
            yield from module_level_imports(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, *(h.body for h in statement.handlers), statement.orelse, statement.finalbody):
                yield from module_level_imports(block)
        elif isinstance(statement, (ast.With, ast.ClassDef)):
            yield from module_level_imports(statement.body)


def imported_modules(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The nicbook modules ``node`` in module ``name`` runs: ``from nicbook.x import y`` runs
    ``nicbook.x``, and ``nicbook.x.y`` too when ``y`` is a submodule."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    if source not in MODULES:
        return set()
    return {source} | {f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES}


def import_graph() -> dict[str, set[str]]:
    """Module -> the nicbook modules its import runs, with the packages above them (a module's own
    enclosing packages are being imported already when it runs, so they are left out)."""
    graph = {}
    for name, path in MODULES.items():
        own = {name.rsplit(".", depth)[0] for depth in range(name.count(".") + 1)}
        targets = set()
        for node in module_level_imports(ast.parse(path.read_text(), str(path)).body):
            for target in imported_modules(name, node):
                parts = target.split(".")
                targets |= {".".join(parts[:end]) for end in range(1, len(parts) + 1)} - own
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                components.append(set(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for component in components:
        start = min(component)
        paths = {start: [start]}  # shortest paths from start, breadth first
        frontier = [start]
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    frontier.append(successor)
        closing = min((node for node in paths if start in graph[node]), key=lambda node: (len(paths[node]), node))
        found.append(paths[closing] + [start])
    return found


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"a"}}
    assert cycles(graph) == [["a", "d", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_what_modules_import():
    graph = import_graph()
    assert {"nicbook.codec.adaptive", "nicbook.codec.latents", "nicbook.zoo"} <= graph["nicbook.codec"]
    assert "nicbook.entropy" in graph["nicbook.codec.latents"]  # the package above a module it imports
    assert "nicbook.codec" not in graph["nicbook.codec.adaptive"]  # its own package
    assert "nicbook.nn.models" in graph["nicbook.nn.checkpoints"]
    assert "nicbook.nn.training" not in graph["nicbook.cli"]  # imported inside a function only
    graph["nicbook.nn.models"].add("nicbook.zoo")  # as if the models imported the zoo
    assert ["nicbook.nn.checkpoints", "nicbook.nn.models", "nicbook.zoo", "nicbook.nn.checkpoints"] in cycles(graph)


def test_module_level_imports_inside_nicbook_have_no_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_only_the_command_line_module_imports_argparse():
    importers = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(imported.split(".")[0] == "argparse" for imported in names):
                importers.append(name)
    assert sorted(set(importers)) == ["nicbook.cli"]


# --------------------------------------------------------------------------- the package maps


def docstring(package: str) -> str:
    return ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""


@pytest.mark.parametrize("name", [name for name in MODULES if name != "nicbook" and not name.endswith(".__main__")])
def test_every_module_is_named_in_a_package_map(name):
    """``nicbook/__init__.py`` or the docstring of the module's own package names it."""
    parent = name.rpartition(".")[0]
    pattern = re.escape(name) + r"(?!\w|\.\w)"
    assert any(re.search(pattern, docstring(package)) for package in {"nicbook", parent}), (
        f"{name} is named neither in the docstring of nicbook/__init__.py nor in that of {parent}"
    )
