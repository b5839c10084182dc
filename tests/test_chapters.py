"""Every chapter executes from top to bottom without an error.

Executions go through the same cache as the book build (``_build/.jupyter_cache``, keyed on the
notebook's code), so building the book and running the tests execute each chapter once: whichever
runs first executes it, and the other checks that recorded, error-free execution of the very same
code. On a clean checkout (as in CI) nothing is cached and every chapter runs here or in the build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CACHE = ROOT / "_build" / ".jupyter_cache"
TIMEOUT_S = 300


def _errors(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_executes(path):
    notebook = nbformat.read(path, as_version=4)
    cache = get_cache(str(CACHE))
    try:
        record = cache.match_cache_notebook(notebook)
    except KeyError:
        record = None
    if record is not None:
        executed = cache.get_cache_bundle(record.pk).nb
        assert not _errors(executed)
        assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
        return
    result = single_nb_execution(
        notebook, cwd=str(path.parent), allow_errors=False, timeout=TIMEOUT_S, meta_override=True
    )
    assert result.err is None, f"{path.name} failed:\n{result.exc_string}"
    assert not _errors(notebook)
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": result.time}),
        check_validity=False,
        overwrite=True,
    )
