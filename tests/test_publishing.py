"""What publishing the book and the package rests on: licences, data attributions, citation metadata,
the changelog, the GitHub workflows that build, deploy and release, and the wheel's size.

The version is written in ``pyproject.toml`` and repeated in ``CITATION.cff`` and ``CHANGELOG.md``;
these tests keep the three equal (RELEASING.md lists every place a release changes).
"""

from __future__ import annotations

import datetime
import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import yaml  # PyYAML: installed with the book's tools (jupyter-book needs it)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CC_BY_URL = "https://creativecommons.org/licenses/by/4.0/"
# PyPI's default limit on one uploaded file; the wheel carries the shipped weights.
PYPI_FILE_LIMIT = 100_000_000


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def version() -> str:
    return pyproject()["project"]["version"]


def citation() -> dict:
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert isinstance(data, dict), "CITATION.cff must be a YAML mapping"
    return data


def repository_url() -> str:
    """The repository URL from its one home, ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def changelog_releases() -> list[tuple[str, str | None]]:
    """``(version, date)`` of every ``## [...]`` heading of CHANGELOG.md, newest first."""
    text = (ROOT / "CHANGELOG.md").read_text()
    return [
        (match["version"], match["date"])
        for match in re.finditer(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?\s*$", text, re.MULTILINE)
    ]


# --- licences and attributions -------------------------------------------------------------------


def test_code_licence_is_mit_for_the_nicbook_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 The nicbook authors" in text
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    # The package metadata says the same (a table or, since PEP 639, an SPDX string).
    declared = pyproject()["project"]["license"]
    assert (declared.get("text") if isinstance(declared, dict) else declared) == "MIT"


def test_content_licence_is_cc_by_for_text_and_figures():
    text = (ROOT / "LICENSE-CONTENT").read_text()
    assert "CC BY 4.0" in text and "Creative Commons" in text
    assert CC_BY_URL in text
    assert "The nicbook authors" in text
    assert "text" in text and "figures" in text
    assert "LICENSE" in text and "DATA.md" in text, "it must say what it does not cover, and where that is"


def test_data_attributions_name_every_image_source():
    text = (ROOT / "DATA.md").read_text()
    for needed in [
        "Kodak",  # evaluation
        "evaluation only",
        "BSDS500",  # training, with the citation its authors ask for
        "Arbeláez",
        "Sun",
        "Hays",
        "ICCP",
        "kodim23",  # the default image, shipped with the package, with its credit and source
        "Steve Kelly",
        "sporco==0.2.2.post1",
        "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f",
        "Grace Hopper",  # the training stand-in when there are no training photos
        "nicbook/weights",  # which artefacts the training photos stand behind
    ]:
        assert needed in text, f"DATA.md does not mention {needed!r}"


# --- citation, changelog, version ----------------------------------------------------------------

# The top-level keys of Citation File Format 1.2.0; its schema allows no others.
CFF_KEYS = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
    "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
    "repository-artifact", "repository-code", "title", "type", "url", "version",
}


def test_citation_cff_is_valid_cff_1_2_0():
    data = citation()
    assert data.get("cff-version") == "1.2.0"
    assert {"authors", "cff-version", "message", "title"} <= data.keys()
    assert set(data) <= CFF_KEYS, f"keys CFF 1.2.0 does not know: {sorted(set(data) - CFF_KEYS)}"
    assert isinstance(data["message"], str) and data["message"].strip()
    assert isinstance(data["title"], str) and data["title"].strip()
    assert isinstance(data["authors"], list) and data["authors"]
    for author in data["authors"]:
        assert isinstance(author, dict)
        assert author.get("name") or author.get("family-names") or author.get("given-names"), author
    assert {"name": "The nicbook authors"} in data["authors"]
    assert data.get("type", "software") == "software"
    assert data.get("license") == "MIT"
    if "repository-code" in data:
        assert data["repository-code"] == repository_url()


def test_citation_names_the_package_version_and_its_release_date():
    data = citation()
    assert isinstance(data.get("version"), str), "quote the version in CITATION.cff (1.10 is not 1.1)"
    assert data["version"] == version()
    released = str(data.get("date-released"))  # a quoted string, or a date when left unquoted
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", released), released
    datetime.date.fromisoformat(released)
    assert dict(changelog_releases()).get(version()) == released, "CITATION.cff and CHANGELOG.md disagree on the date"


def test_changelog_starts_with_the_current_version():
    releases = changelog_releases()
    assert releases, "CHANGELOG.md has no '## [version] - date' headings"
    if releases[0][0] == "Unreleased":
        releases = releases[1:]
    assert releases and releases[0][0] == version(), f"the newest release in CHANGELOG.md is not {version()}"
    for name, date in releases:
        assert date and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), f"release {name} has no date"
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"[{version()}]: " in text, "the version's heading needs its link at the bottom"


def test_release_checklist_covers_every_place_the_version_lives():
    text = (ROOT / "RELEASING.md").read_text()
    for needed in ["pyproject.toml", "CHANGELOG.md", "CITATION.cff", "install cell", "git tag", "vX.Y.Z"]:
        assert needed in text, f"RELEASING.md does not mention {needed!r}"



def test_the_site_shows_the_current_version_if_any():
    """Wherever ``_config.yml`` states a version (the footer, Sphinx's ``release``), it is pyproject's."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    footer = (config.get("html") or {}).get("extra_footer") or ""
    release = ((config.get("sphinx") or {}).get("config") or {}).get("release")
    shown = re.findall(r"\bnicbook v?(\d+(?:\.\d+)+(?:(?:a|b|rc|\.dev|\.post)\d+)?)", footer)
    shown += [str(release)] if release else []
    for value in shown:
        assert value == version(), f"_config.yml shows version {value}, pyproject.toml says {version()}"


# --- GitHub workflows ------------------------------------------------------------------------------

WORKFLOW_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
JOB_KEYS = {
    "name", "needs", "permissions", "if", "runs-on", "environment", "concurrency", "outputs", "env",
    "defaults", "steps", "timeout-minutes", "strategy", "continue-on-error", "container", "services",
}
STEP_KEYS = {
    "id", "if", "name", "uses", "run", "shell", "with", "env", "continue-on-error", "timeout-minutes",
    "working-directory",
}
PERMISSION_LEVELS = {"read", "write", "none"}


def load_workflow(name: str) -> dict:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    text = path.read_text()
    assert text.count("${{") == text.count("}}"), f"{name}: unbalanced ${{{{ }}}} expressions"
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{name} must be a YAML mapping"
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true; GitHub reads it as "on".
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(workflow: dict) -> dict:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def actions(steps: list[dict]) -> set[str]:
    """The actions some steps use, without their versions."""
    return {step["uses"].split("@")[0] for step in steps if "uses" in step}


def uses(workflow: dict) -> set[str]:
    """The actions a workflow uses."""
    return actions(steps(workflow))


def run_text(workflow: dict) -> str:
    return "\n".join(step["run"] for step in steps(workflow) if "run" in step)


@pytest.mark.parametrize("name", ["book.yml", "release.yml"])
def test_workflow_has_the_structure_github_requires(name):
    workflow = load_workflow(name)
    assert set(workflow) <= WORKFLOW_KEYS, f"{name}: unknown keys {sorted(set(workflow) - WORKFLOW_KEYS)}"
    assert workflow.get("on"), f"{name}: no triggers ('on')"
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict) and jobs, f"{name}: no jobs"
    for job_id, job in jobs.items():
        where = f"{name}: job {job_id}"
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", job_id), f"{where}: invalid job id"
        assert isinstance(job, dict) and set(job) <= JOB_KEYS, f"{where}: unknown keys {sorted(set(job) - JOB_KEYS)}"
        assert job.get("runs-on"), f"{where}: no runs-on"
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            assert need in jobs and need != job_id, f"{where}: needs unknown job {need!r}"
        for scope in [workflow, job]:
            permissions = scope.get("permissions", {})
            if isinstance(permissions, dict):
                assert set(permissions.values()) <= PERMISSION_LEVELS, f"{where}: bad permission level"
        assert isinstance(job.get("steps"), list) and job["steps"], f"{where}: no steps"
        for index, step in enumerate(job["steps"]):
            assert isinstance(step, dict) and set(step) <= STEP_KEYS, f"{where}, step {index}: {step}"
            assert ("uses" in step) != ("run" in step), f"{where}, step {index}: needs exactly one of uses/run"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[\w.-]+", step["uses"]), f"{where}: bad uses {step['uses']!r}"
            else:
                assert isinstance(step["run"], str) and step["run"].strip()
                assert "with" not in step, f"{where}, step {index}: 'with' belongs to 'uses' steps"


def readme_build_command() -> str:
    """The README's one-line command that installs everything and builds the book."""
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in readme.splitlines() if "jupyter-book build" in line and "pip install" in line]
    assert len(commands) == 1, "the README should hold one build command"
    return commands[0]


def test_book_workflow_builds_with_the_readme_command_and_deploys_pages():
    workflow = load_workflow("book.yml")
    on = triggers(workflow)
    assert "pull_request" in on
    assert "main" in (on.get("push") or {}).get("branches", []), "the book must build on pushes to main"
    run = run_text(workflow)
    assert readme_build_command() in run, "the workflow must run the README's build command unchanged"
    assert "scripts/student_edition.py" in run and (ROOT / "scripts" / "student_edition.py").is_file()
    assert {"actions/upload-pages-artifact", "actions/deploy-pages"} <= uses(workflow)
    python = [step["with"]["python-version"] for step in steps(workflow) if step.get("uses", "").startswith("actions/setup-python@")]
    assert python == ["3.11"]
    assert any(step.get("uses", "").startswith("actions/setup-node@") for step in steps(workflow))

    deploying = [job for job in workflow["jobs"].values() if any("actions/deploy-pages@" in step.get("uses", "") for step in job["steps"])]
    assert len(deploying) == 1
    deploy = deploying[0]
    assert deploy.get("permissions", {}).get("pages") == "write"
    assert deploy.get("permissions", {}).get("id-token") == "write"
    assert "refs/heads/main" in deploy.get("if", "") and "push" in deploy["if"], "only pushes to main deploy"
    assert deploy.get("needs"), "the deployment waits for the build"
    assert deploy.get("environment", {}).get("name") == "github-pages"
    assert "concurrency" in deploy or "concurrency" in workflow


def test_release_workflow_builds_the_distributions_on_version_tags():
    workflow = load_workflow("release.yml")
    on = triggers(workflow)
    tags = (on.get("push") or {}).get("tags", [])
    assert tags and any(fnmatch.fnmatchcase(f"v{version()}", pattern) for pattern in tags)
    assert not (on.get("push") or {}).get("branches"), "releases come from tags only"
    run = run_text(workflow)
    assert "python -m build" in run
    assert "twine check" in run
    assert "actions/upload-artifact" in uses(workflow)
    releasing = [job for job in workflow["jobs"].values() if "softprops/action-gh-release" in actions(job["steps"])]
    assert releasing and releasing[0].get("permissions", {}).get("contents") == "write"


def test_the_embedded_sample_image_is_package_data():
    """sample_image() reads nicbook/images/kodim23.png: a wheel or `pip install git+...` must hold it."""
    package_data = pyproject()["tool"]["setuptools"]["package-data"]["nicbook"]
    shipped = [path.relative_to(ROOT / "nicbook").as_posix() for path in (ROOT / "nicbook" / "images").iterdir()]
    assert "images/kodim23.png" in shipped and "images/README.md" in shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in package_data), f"{name} is not package data"


def test_wheel_with_the_shipped_weights_fits_pypi_default_limit():
    """The weights are package data, so the wheel holds them; saved weights barely compress."""
    package_data = pyproject()["tool"]["setuptools"]["package-data"]["nicbook"]
    assert "weights/*" in package_data
    weights = sorted((ROOT / "nicbook" / "weights").glob("*.pt"))
    assert weights, "no shipped weights found"
    total = sum(path.stat().st_size for path in weights)
    # 5 MB of room for the code and metadata, and for the little that compression may add.
    assert total < PYPI_FILE_LIMIT - 5_000_000, (
        f"the shipped weights total {total / 1e6:.1f} MB: the wheel would exceed PyPI's default "
        "100 MB per file; fetch the weights on first use instead, or ask PyPI for a larger limit"
    )
