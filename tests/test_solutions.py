"""Every folded solution's code stands on its own: it imports or defines every name it uses.

A solution is read after the chapter, often in a fresh notebook or a script, so it must not lean on
the chapter's variables. The check is static (no solution runs here): the names a code block reads
at any level must be bound in the block itself or be builtins.
"""

from __future__ import annotations

import builtins
import json
import re
import symtable
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.ipynb"))
SOLUTION = re.compile(r"(`{3,})\{solution\} (\S+)\n(.*?)\n\1(?:\n|$)", re.S)
CODE = re.compile(r"```python\n(.*?)\n```", re.S)


def solution_code(path: Path) -> dict[str, str]:
    """The python code of each solution in a chapter, by exercise label."""
    code = {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for match in SOLUTION.finditer("".join(cell["source"])):
                blocks = CODE.findall(match.group(3))
                if blocks:
                    code[match.group(2)] = "\n".join(blocks) + "\n"
    return code


def unbound_names(source: str) -> set[str]:
    """Names the code reads that it never binds (at module level) and that are not builtins."""
    top = symtable.symtable(source, "<solution>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    unbound = set()

    def visit(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            name = symbol.get_name()
            global_read = symbol.is_referenced() and (table is top or symbol.is_global())
            if global_read and name not in bound and not hasattr(builtins, name):
                unbound.add(name)
        for child in table.get_children():
            visit(child)

    visit(top)
    return unbound


CASES = [(path.name, label, code) for path in CHAPTERS for label, code in solution_code(path).items()]


def test_solutions_are_found():
    assert len(CASES) >= 15


@pytest.mark.parametrize(("chapter", "label", "code"), CASES, ids=[label for _, label, _ in CASES])
def test_solution_code_stands_alone(chapter, label, code):
    compile(code, label, "exec")
    assert not unbound_names(code), f"{chapter}, {label} uses names it does not define: {sorted(unbound_names(code))}"
