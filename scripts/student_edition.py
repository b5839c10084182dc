"""Build the student edition of the book: every exercise, no solutions.

    python scripts/student_edition.py            # sources in _build/student, site in _build/student/_build/html
    python scripts/student_edition.py --no-build # only the solution-free notebooks, to hand out

The book's sources are copied, every ``{solution}`` directive is removed from the chapters'
markdown cells, and the copy is built like the book itself. The code cells are unchanged, so the
build reuses the main book's execution cache (``_build/.jupyter_cache``) when it exists instead of
running every chapter again. The notebooks in ``_build/student/chapters`` are the ones to give to
students.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("_config.yml", "_toc.yml", "intro.md", "bibliography.md", "references.bib", "instructors.md", "api.md")
FOLDERS = ("chapters", "_ext")
OPENING = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}")


def strip_solutions(markdown: str) -> str:
    """Remove every ``{solution}`` directive (backtick or colon fence, any length) from markdown."""
    kept: list[str] = []
    closing: str | None = None
    for line in markdown.splitlines(keepends=True):
        if closing is None:
            match = OPENING.match(line)
            if match:
                fence = match.group("fence")
                closing = fence
                continue
            kept.append(line)
        elif line.strip() and set(line.strip()) == {closing[0]} and len(line.strip()) >= len(closing):
            closing = None
    if closing is not None:
        raise ValueError("a {solution} directive is never closed")
    return re.sub(r"\n{3,}", "\n\n", "".join(kept))


def student_notebook(notebook: dict) -> dict:
    """A copy of a notebook with its solutions removed (and markdown cells left empty dropped)."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = strip_solutions("".join(cell["source"]))
            if not text.strip():
                continue
            cell = {**cell, "source": text.splitlines(keepends=True)}
        cells.append(cell)
    return {**notebook, "cells": cells}


def write_sources(out: Path) -> None:
    """Copy the book's sources into ``out`` with every chapter's solutions removed."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, out / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, out / folder, dirs_exist_ok=True)
    for path in sorted((out / "chapters").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        path.write_text(json.dumps(student_notebook(notebook), indent=1, ensure_ascii=False) + "\n")
    config = (out / "_config.yml").read_text()
    config = re.sub(r'^title: "(.*)"$', r'title: "\1 (student edition)"', config, count=1, flags=re.MULTILINE)
    (out / "_config.yml").write_text(config)
    modules = out / "node_modules"
    if not modules.exists() and (ROOT / "node_modules").is_dir():
        modules.symlink_to(ROOT / "node_modules", target_is_directory=True)
    cache = ROOT / "_build" / ".jupyter_cache"
    if cache.is_dir():
        shutil.copytree(cache, out / "_build" / ".jupyter_cache", dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="where to write it")
    parser.add_argument("--no-build", action="store_true", help="write the notebooks, skip the site")
    args = parser.parse_args(argv)
    write_sources(args.out)
    print(f"student notebooks: {args.out / 'chapters'}")
    if args.no_build:
        return 0
    command = ["jupyter-book", "build", str(args.out), "-W", "--keep-going"]
    result = subprocess.run(command, check=False)
    if result.returncode == 0:
        print(f"student site: {args.out / '_build' / 'html' / 'index.html'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
