"""The built site in a real browser, as a reader without internet sees it, and its exercise numbers.

Headless Chromium (Debian's ``chromium`` package, driven by Playwright with ``executable_path``)
opens every HTML page of ``_build/html`` from a loopback HTTP server, with every request to another
host blocked. A page fails on a JavaScript error or console error, an image that did not load, an
empty main content area, an empty cell output, math that MathJax did not typeset (raw ``\\(``
left in the text), a Markdown table printed as text, or an animation without its controls. A
screenshot of each page is saved in ``_build/screenshots/``.

The exercises of chapter N are numbered N.1, N.2, ... (``_ext/nicbook_site.py``), and every
reference to one reads "Exercise N.k": prose that writes "Exercise" before a ``{ref}`` to an
exercise would show "Exercise Exercise N.k".

The site tests need a built book; they skip (with the reason) when it is absent or no Chromium is
installed, unless ``NICBOOK_REQUIRE_BROWSER=1`` (set by CI), which turns those skips into failures.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site without logging every request."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def _unavailable(reason: str) -> None:
    if os.environ.get("NICBOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _pages() -> list[str]:
    if not (SITE / "index.html").is_file():
        return []
    skipped = {"_static", "_sources", "_images", "_sphinx_design_static"}
    return sorted(
        path.relative_to(SITE).as_posix()
        for path in SITE.rglob("*.html")
        if not skipped & set(path.relative_to(SITE).parts) and not _is_redirect(path)
    )


def _is_redirect(path: Path) -> bool:
    """Whether the page only forwards the reader elsewhere (the site's index.html does)."""
    return 'http-equiv="Refresh"' in path.read_text(errors="replace")[:500]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def site_url():
    if not _pages():
        _unavailable("the book is not built: run `jupyter-book build . -W --keep-going` first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def _markdown_sources() -> dict[str, str]:
    """The Markdown of the top-level ``.md`` files and of the chapters' Markdown cells, by file name."""
    sources = {path.name: path.read_text() for path in ROOT.glob("*.md")}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        sources[path.name] = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    return sources


def test_prose_does_not_repeat_the_word_exercise_before_a_reference():
    """A ``{ref}`` to an exercise already reads "Exercise 4.5"; "Exercises {numref}`%s <label>`" is
    the way to word a plural."""
    for name, text in _markdown_sources().items():
        repeated = re.findall(r"[Ee]xercises?\s+\{(?:ref|numref)\}`[^`]*`", text)
        assert not repeated, f"{name}: {repeated}"


def test_exercises_are_numbered_per_chapter():
    if not _pages():
        _unavailable("the book is not built: run `jupyter-book build . -W --keep-going` first")
    chapters = sorted((SITE / "chapters").glob("*.html"))
    assert chapters
    for page in chapters:
        text = page.read_text()
        chapter = re.search(r"<h1>(\d+)\. ", text)[1]
        numbers = re.findall(r'class="caption-number">Exercise (\S+) ', text)
        assert numbers == [f"{chapter}.{k}" for k in range(1, len(numbers) + 1)], f"{page.name}: {numbers}"
    for page_path in _pages():
        text = (SITE / page_path).read_text()
        plain = " ".join(re.sub(r"<[^>]+>", "", text).split())
        assert not re.search(r"Exercises? Exercise", plain), f"{page_path} says 'Exercise Exercise'"
        references = re.findall(r'class="[^"]*std-numref[^"]*">([^<]*)<', text)
        wrong = [ref for ref in references if not re.fullmatch(r"(Exercises? )?\d+\.\d+", ref)]
        assert not wrong, f"{page_path}: references {wrong}"


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost")


@pytest.mark.browser
@pytest.mark.parametrize("page_path", _pages() or ["index.html"])
def test_page_renders(page_path, site_url, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", lambda route: route.continue_() if _is_local(route.request.url) else route.abort())
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and script_errors.append(message.text))
    try:
        response = page.goto(site_url + page_path, wait_until="load", timeout=60_000)
        assert response is not None and response.ok, f"{page_path}: HTTP {response and response.status}"
        has_math = page.query_selector(".math") is not None
        if has_math:
            page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
        page.wait_for_timeout(300)
        broken_images = page.eval_on_selector_all(
            "img",
            "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)",
        )
        local_broken = [src for src in broken_images if _is_local(src)]
        main_text = page.eval_on_selector("main", "m => m.innerText.trim()") if page.query_selector("main") else ""
        empty_outputs = page.eval_on_selector_all(
            ".cell_output",
            "outs => outs.filter(o => !o.innerText.trim() && !o.querySelector('img, svg, canvas, iframe')).length",
        )
        animations = page.eval_on_selector_all(".animation", "a => a.length")
        animation_controls = page.eval_on_selector_all(".animation .anim-buttons button", "b => b.length")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / (page_path.replace("/", "_") + ".png")), full_page=False)
    finally:
        page.close()
    assert not script_errors, f"{page_path}: JavaScript errors {script_errors}"
    assert not local_broken, f"{page_path}: images that did not load {local_broken}"
    assert len(main_text) > 20, f"{page_path}: the main content area is empty"
    assert empty_outputs == 0, f"{page_path}: {empty_outputs} empty cell output(s)"
    assert "\\(" not in main_text and "$$" not in main_text, f"{page_path}: math left untypeset"
    assert not re.search(r"\|\s*(---|—)", main_text), f"{page_path}: a Markdown table left unrendered"
    if animations:
        assert animation_controls >= 3 * animations, f"{page_path}: an animation lacks its controls"
