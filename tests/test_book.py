"""The book's structure: every chapter is in the ToC, starts with the install cell, has cell ids and no outputs."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def repository_url() -> str:
    """The repository URL, read from the one place it is written: ``_config.yml``."""
    config = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", config, re.MULTILINE)
    assert match, "_config.yml must set repository.url"
    return match.group(1)


def package_version() -> str:
    """The version in ``pyproject.toml``."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def install_cell_source() -> str:
    """The hidden first cell every chapter starts with: install nicbook, at the tag of this version
    (so the package cannot change under an assignment), only where it is missing."""
    return (
        "# Installs nicbook when it is missing (on Colab, for example); does nothing where it is importable.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("nicbook") is None:\n'
        f'    %pip install --quiet "nicbook @ git+{repository_url()}@v{package_version()}"'
    )


def test_there_are_chapters():
    assert len(CHAPTERS) >= 1


def test_toc_lists_exactly_the_chapters():
    toc = (ROOT / "_toc.yml").read_text()
    listed = re.findall(r"file:\s*(chapters/\S+)", toc)
    assert sorted(listed) == sorted(f"chapters/{path.stem}" for path in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_starts_with_the_hidden_install_cell(path):
    first = json.loads(path.read_text())["cells"][0]
    assert first["cell_type"] == "code"
    assert "remove-cell" in first["metadata"].get("tags", [])
    assert "".join(first["source"]) == install_cell_source()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_cells_have_unique_ids(path):
    """nbformat 4.5 gives every cell an id (a missing one will be an error in later versions)."""
    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]
    assert None not in ids and len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_follows_the_lecture_template(path):
    text = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    for heading in ("## Overview", "## Exercises", "## Summary", "## Further reading"):
        assert heading in text, f"{path.name} lacks {heading!r}"
    assert len(re.findall(r"```\{exercise\}", text)) >= 3
    assert len(re.findall(r"```\{solution\}", text)) == len(re.findall(r"```\{exercise\}", text))
    assert "{cite}" in text
    assert "nicbook.exercises.check_" in text, f"{path.name} has no auto-checked exercise"


def test_citations_exist_in_references_bib():
    keys = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "references.bib").read_text()))
    for path in CHAPTERS:
        for group in re.findall(r"\{cite\}`([^`]+)`", path.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, f"{path.name} cites unknown key {key!r}"


def test_instructor_guide_lists_every_exercise():
    guide = (ROOT / "instructors.md").read_text()
    for path in CHAPTERS:
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
        labels = re.findall(r"\{exercise\}[^\n]*\n:label: (\S+)", text)
        assert len(labels) >= 3, f"{path.name}: fewer than three labelled exercises"
        for label in labels:
            assert f"{{ref}}`{label}`" in guide, f"instructors.md does not list {label} ({path.name})"
