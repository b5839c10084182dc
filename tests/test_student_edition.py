"""The student edition keeps every exercise and no solution text."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)


def _markdown(notebook: dict) -> str:
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")


def _plain(text: str) -> str:
    """Text without markup, HTML tags or repeated spaces, to compare markdown with rendered HTML."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(re.sub(r"[*_`$\\]", "", text).split())


def _solution_lines(text: str) -> list[str]:
    """Distinctive lines (over 40 characters) from the bodies of the solutions in ``text``."""
    lines, inside = [], None
    for line in text.splitlines():
        if inside is None:
            match = student_edition.OPENING.match(line)
            inside = match.group("fence") if match else None
        elif line.strip() == inside:
            inside = None
        elif len(line.strip()) > 40 and not line.startswith(":"):
            lines.append(_plain(line))
    return lines


def test_strip_solutions_handles_nested_fences():
    text = "before\n\n````{solution} ex\n:class: dropdown\n```python\nsecret()\n```\n````\n\nafter\n"
    assert student_edition.strip_solutions(text) == "before\n\nafter\n"
    with pytest.raises(ValueError, match="never closed"):
        student_edition.strip_solutions("```{solution} ex\nunfinished\n")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_student_chapter_keeps_exercises_and_drops_solutions(path):
    notebook = json.loads(path.read_text())
    original = _markdown(notebook)
    secrets = _solution_lines(original)
    assert secrets, f"{path.name}: no solution text found to remove"
    student = _markdown(student_edition.student_notebook(notebook))
    assert "{solution}" not in student
    assert student.count("{exercise}") == original.count("{exercise}")
    assert len(student) < len(original) - sum(len(line) for line in secrets)
    code = [cell["source"] for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code == [cell["source"] for cell in student_edition.student_notebook(notebook)["cells"] if cell["cell_type"] == "code"]


@pytest.mark.slow
def test_student_site_has_no_solutions(tmp_path):
    if not (ROOT / "_build" / ".jupyter_cache").is_dir():
        reason = "the book is not built: the student site reuses its executions"
        if os.environ.get("NICBOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path / "student"
    assert student_edition.main(["--out", str(out)]) == 0
    pages = list((out / "_build" / "html" / "chapters").glob("*.html"))
    assert len(pages) == len(CHAPTERS)
    notebooks = [json.loads(path.read_text()) for path in CHAPTERS]
    public = _plain(" ".join(
        "".join(cell["source"]) for notebook in notebooks for cell in student_edition.student_notebook(notebook)["cells"]
    ))
    secrets = [line for notebook in notebooks for line in _solution_lines(_markdown(notebook)) if line not in public]
    for page in pages:
        html = page.read_text()
        assert 'class="solution' not in html, f"{page.name} renders a solution"
        assert len(re.findall(r'class="exercise', html)) >= 3, f"{page.name} lost its exercises"
    site = _plain(" ".join(page.read_text() for page in pages))
    leaked = [line for line in secrets if line in site]
    assert not leaked, f"solution text in the student site: {leaked[:2]}"
    assert "(student edition)" in (out / "_build" / "html" / "intro.html").read_text()
