"""Build the student edition of the book: every exercise, no solutions, and nothing leading to them.

    python scripts/student_edition.py             # sources in _build/student, site in _build/student/_build/html
    python scripts/student_edition.py --no-build  # only the sources: the notebooks to hand out
    python scripts/student_edition.py --repository https://github.com/COURSE/NAME --branch main

The book's sources are copied without the instructor guide, every ``{solution}`` directive is
removed from the chapters' markdown cells, the introduction no longer promises folded solutions,
and the copy is built like the book itself.

The main edition's launch (Colab), repository and issue buttons open the book's repository, whose
notebooks hold every solution. The student edition's buttons open ``--repository`` at ``--branch``,
whose root holds these sources: by default the book's own repository at its ``student`` branch,
which the book's workflow rewrites from these sources on every push to ``main``; a course passes
its own repository instead and pushes the written sources there (their ``.gitignore`` leaves out
the build) whenever the chapters change, or the buttons open stale or missing notebooks.

The code cells are unchanged, so the build reuses the main book's execution cache
(``_build/.jupyter_cache``) when it exists instead of running every chapter again. The notebooks in
``_build/student/chapters`` are the ones to give to students.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml  # PyYAML: installed with jupyter-book

ROOT = Path(__file__).resolve().parents[1]
# The licences and the data attributions travel with the sources, which become a repository.
SOURCES = (
    "_config.yml", "_toc.yml", "intro.md", "bibliography.md", "references.bib", "api.md",
    "LICENSE", "LICENSE-CONTENT", "DATA.md",
)  # fmt: skip
FOLDERS = ("chapters", "_ext")
#: The page the student edition leaves out: it lists the exercises and tells how to grade them.
INSTRUCTOR_GUIDE = "instructors"
OPENING = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}")
#: The introduction's sentence about solutions (any line breaks), and the student edition's.
INTRO_WORDING = (
    "Instructors can assign the exercises at the end of each chapter; solutions are folded away under "
    "each one, and the [instructor guide](instructors.md) shows how to hand out a student edition without them.",
    "Each chapter ends with exercises to try on your own; this student edition has no solutions.",
)


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


def student_intro(markdown: str) -> str:
    """The introduction with its sentence about folded solutions in the student edition's words."""
    main, student = INTRO_WORDING
    pattern = r"\s+".join(map(re.escape, main.split()))
    text, count = re.subn(pattern, student, markdown)
    if count != 1:
        raise ValueError(f"intro.md no longer says {main!r}: update INTRO_WORDING")
    return text


def student_toc(toc: dict) -> dict:
    """The table of contents without the instructor guide."""
    parts = [
        {**part, "chapters": [entry for entry in part["chapters"] if entry.get("file") != INSTRUCTOR_GUIDE]}
        for part in toc["parts"]
    ]
    return {**toc, "parts": parts}


def student_config(config: dict, repository: str, branch: str) -> dict:
    """The book's configuration with the edition's title, and the student repository (sources at
    its root) behind the launch, repository and issue buttons."""
    return {
        **config,
        "title": f"{config['title']} (student edition)",
        "repository": {**config["repository"], "url": repository, "branch": branch, "path_to_book": ""},
    }


#: The branch of the book's repository that holds the student edition's sources (see the workflow).
STUDENT_BRANCH = "student"


def default_repository() -> str:
    """The book's repository (from ``_config.yml``), whose ``student`` branch holds the student sources."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


def write_sources(out: Path, repository: str, branch: str = "main") -> None:
    """Write the student edition's sources into ``out``: the book's, without the instructor guide
    or any solution, pointing at ``repository`` and ``branch``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, out / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, out / folder, dirs_exist_ok=True)
    # Earlier versions of this script copied the guide: a rerun into the same folder removes it.
    (out / f"{INSTRUCTOR_GUIDE}.md").unlink(missing_ok=True)
    for path in sorted((out / "chapters").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        path.write_text(json.dumps(student_notebook(notebook), indent=1, ensure_ascii=False) + "\n")
    (out / "intro.md").write_text(student_intro((out / "intro.md").read_text()))
    _write_yaml(out / "_toc.yml", student_toc(yaml.safe_load((out / "_toc.yml").read_text())))
    config = yaml.safe_load((out / "_config.yml").read_text())
    _write_yaml(out / "_config.yml", student_config(config, repository, branch))
    (out / ".gitignore").write_text("_build/\nnode_modules\n__pycache__/\n")
    modules = out / "node_modules"
    if not modules.exists() and (ROOT / "node_modules").is_dir():
        modules.symlink_to(ROOT / "node_modules", target_is_directory=True)
    cache = ROOT / "_build" / ".jupyter_cache"
    if cache.is_dir():
        shutil.copytree(cache, out / "_build" / ".jupyter_cache", dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="where to write it")
    parser.add_argument("--no-build", action="store_true", help="write the sources, skip the site")
    parser.add_argument(
        "--repository",
        default=default_repository(),
        help="the student repository the launch, repository and issue buttons open (default: %(default)s)",
    )
    parser.add_argument("--branch", default=STUDENT_BRANCH, help="its branch (default: %(default)s)")
    args = parser.parse_args(argv)
    write_sources(args.out, args.repository, args.branch)
    print(f"student notebooks: {args.out / 'chapters'} (push {args.out} to {args.repository}, branch {args.branch})")
    if args.no_build:
        return 0
    command = ["jupyter-book", "build", str(args.out), "-W", "--keep-going"]
    result = subprocess.run(command, check=False)
    if result.returncode == 0:
        print(f"student site: {args.out / '_build' / 'html' / 'index.html'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
