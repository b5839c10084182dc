"""Sphinx additions for the nicbook site.

- The site serves MathJax, RequireJS and the Jupyter widgets HTML manager itself (copied from the
  npm packages of ``package.json`` into ``_static``), so math, animations and widgets render in a
  classroom without internet as well as online.
- RequireJS is told where the widget manager lives, so its fonts load from the site too.
- Each page's scripts are listed once: sphinx-thebe and sphinx-togglebutton register their inline
  configuration more than once (as ``None`` and as ``""`` file names), and a repeated ``const``
  declaration is a JavaScript error in the browser.
- Exercises (and any other numbered figure, table or code block) are numbered per chapter: 4.3 is
  chapter 4's third. The book's table of contents is not ``numbered`` (that would number every
  heading), so Sphinx would count them across the whole book instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.errors import ExtensionError

#: Folder under ``_static`` -> folder of an npm package (from ``npm ci``) copied there.
OFFLINE_ASSETS = {
    "mathjax": "node_modules/mathjax/es5",
    "requirejs": "node_modules/requirejs",
    "html-manager": "node_modules/@jupyter-widgets/html-manager/dist",
}


def _asset_sources(app) -> dict[str, Path]:
    return {name: Path(app.srcdir) / source for name, source in OFFLINE_ASSETS.items()}


def check_offline_assets(app) -> None:
    """Stop early, with the fix, when the npm packages the site serves are not installed."""
    missing = [str(path) for path in _asset_sources(app).values() if not path.is_dir()]
    if missing and app.builder.format == "html":
        raise ExtensionError(
            f"the site's offline scripts are missing ({', '.join(missing)}): run `npm ci` in the "
            "book's folder first"
        )


def copy_offline_assets(app, exception) -> None:
    """Copy MathJax, RequireJS and the widget manager into the built site's ``_static``."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for name, source in _asset_sources(app).items():
        shutil.copytree(source, static / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.map", "bin"))


def _script_key(script: Any) -> tuple:
    """Identity of a script: its file (None and "" both mean inline) and its attributes."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((key, str(value)) for key, value in attributes.items())))


#: Runs after RequireJS: the widget manager finds its fonts and chunks in the site's own copy
#: instead of a path relative to the page.
_WIDGET_PATHS = (
    'require.config({paths: {"@jupyter-widgets/html-manager/dist": '
    'document.documentElement.dataset.content_root + "_static/html-manager"}});'
)


def arrange_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated entries from the page's ``script_files`` (keeping the first of each), and
    point RequireJS at the local widget manager on pages that load it."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
            if str(getattr(script, "filename", "")).endswith("requirejs/require.js"):
                unique.append(type(script)("", body=_WIDGET_PATHS))
    context["script_files"] = unique


def number_per_chapter(app, env) -> list[str]:
    """Renumber what Sphinx numbered across the book as ``(chapter, k)``, the chapter being the
    page's place in the root page's table of contents and ``k`` its order within the page.

    Runs on ``env-get-updated`` after Sphinx's own numbering, which builds ``env.toc_fignumbers``
    afresh on every build. Sphinx rewrites only the pages whose own numbers changed, but pages
    refer to other pages' exercises (the instructor guide lists them all), so when these numbers
    differ from the last build's every page is written again.
    """
    for chapter, docname in enumerate(env.toctree_includes.get(app.config.root_doc, []), start=1):
        for numbers in env.toc_fignumbers.get(docname, {}).values():
            for k, node_id in enumerate(sorted(numbers, key=numbers.get), start=1):
                numbers[node_id] = (chapter, k)
    if env.toc_fignumbers == getattr(env, "nicbook_fignumbers", None):
        return []
    env.nicbook_fignumbers = env.toc_fignumbers
    return sorted(env.found_docs)


def setup(app) -> dict[str, Any]:
    app.connect("builder-inited", check_offline_assets)
    app.connect("html-page-context", arrange_scripts, priority=900)
    app.connect("build-finished", copy_offline_assets)
    app.connect("env-get-updated", number_per_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
