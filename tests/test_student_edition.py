"""The student edition keeps every exercise and no solution text, and stands alone: its buttons open
the student repository, it has no instructor guide, and its introduction promises no solutions."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# A course's own repository and branch, as an instructor would pass them.
COURSE, BRANCH = "https://github.com/a-course/nicbook-notebooks", "spring"

_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)


def _markdown(notebook: dict) -> str:
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")


def _plain(text: str) -> str:
    """Text without markup, HTML tags or repeated spaces, to compare markdown with rendered HTML."""
    text = html.unescape(re.sub(r"<[A-Za-z/!][^<>]*>", "", text))  # tags, not comparisons in code
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


def test_student_sources_stand_alone(tmp_path):
    """The written sources point at the student repository, at its root, and hold neither the
    instructor guide nor a solution nor the promise of folded solutions."""
    student_edition.write_sources(tmp_path, COURSE, BRANCH)
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert config["repository"] == {"url": COURSE, "path_to_book": "", "branch": BRANCH}
    assert config["title"].endswith("(student edition)")
    assert config["launch_buttons"]["colab_url"] and config["html"]["use_issues_button"]
    assert not (tmp_path / "instructors.md").exists()
    assert "instructors" not in (tmp_path / "_toc.yml").read_text()
    intro = (tmp_path / "intro.md").read_text()
    assert student_edition.INTRO_WORDING[1] in intro
    assert "folded" not in intro and "instructors.md" not in intro
    for path in (tmp_path / "chapters").glob("*.ipynb"):
        assert "{solution}" not in path.read_text(), path.name
    assert {"_build/", "node_modules"} <= set((tmp_path / ".gitignore").read_text().split())


def test_student_edition_defaults_to_the_student_branch_the_workflow_publishes(tmp_path):
    assert student_edition.main(["--out", str(tmp_path), "--no-build"]) == 0
    book = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    student = yaml.safe_load((tmp_path / "_config.yml").read_text())["repository"]
    assert student["url"] == book["url"] and student["branch"] == student_edition.STUDENT_BRANCH != book["branch"]
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert f"HEAD:{student_edition.STUDENT_BRANCH}" in workflow, "the workflow must publish the student branch"


def test_intro_rewording_fails_loudly_when_the_intro_changes():
    with pytest.raises(ValueError, match="INTRO_WORDING"):
        student_edition.student_intro("An introduction that says something else.")


def test_instructor_guide_warns_and_shows_how_to_publish_the_student_edition():
    guide = (ROOT / "instructors.md").read_text()
    warning = re.search(r"```\{warning\}\n(.*?)```", guide, re.DOTALL)
    assert warning and "every solution" in warning[1] and "student edition" in warning[1]
    for needed in ["python scripts/student_edition.py", "--repository", "--branch", "git push", "_build/student/_build/html"]:
        assert needed in guide, f"instructors.md does not mention {needed!r}"


@pytest.mark.slow
def test_student_site_has_no_solutions_and_opens_the_student_repository(tmp_path):
    if not (ROOT / "_build" / ".jupyter_cache").is_dir():
        reason = "the book is not built: the student site reuses its executions"
        if os.environ.get("NICBOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path / "student"
    assert student_edition.main(["--out", str(out), "--repository", COURSE, "--branch", BRANCH]) == 0
    site = out / "_build" / "html"
    pages = list((site / "chapters").glob("*.html"))
    assert len(pages) == len(CHAPTERS)
    notebooks = [json.loads(path.read_text()) for path in CHAPTERS]
    public = _plain(" ".join(
        "".join(cell["source"]) for notebook in notebooks for cell in student_edition.student_notebook(notebook)["cells"]
    ))
    secrets = [line for notebook in notebooks for line in _solution_lines(_markdown(notebook)) if line not in public]
    book = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for page in pages:
        html = page.read_text()
        assert 'class="solution' not in html, f"{page.name} renders a solution"
        assert len(re.findall(r'class="exercise', html)) >= 3, f"{page.name} lost its exercises"
        links = re.findall(r'href="([^"]+)"', html)
        launch = [link for link in links if link.startswith("https://colab.research.google.com/")]
        slug = COURSE.removeprefix("https://github.com/")
        assert launch == [f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/chapters/{page.stem}.ipynb"]
        issues = [link for link in links if "/issues/new" in link]
        assert issues and all(link.startswith(f"{COURSE}/issues/new?") for link in issues), issues
        assert COURSE in links and book not in links, f"{page.name}: the repository button"
        assert not any("instructors" in link for link in links), f"{page.name} links the instructor guide"
    assert not (site / "instructors.html").exists()
    text = _plain(" ".join(page.read_text() for page in pages))
    leaked = [line for line in secrets if line in text]
    assert not leaked, f"solution text in the student site: {leaked[:2]}"
    intro = (site / "intro.html").read_text()
    assert "(student edition)" in intro
    assert _plain(student_edition.INTRO_WORDING[1]) in _plain(intro) and "folded" not in intro
