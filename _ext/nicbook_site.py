"""Sphinx additions for the nicbook site.

- Each page's scripts are listed once: sphinx-thebe and sphinx-togglebutton register their inline
  configuration more than once (as ``None`` and as ``""`` file names), and a repeated ``const``
  declaration is a JavaScript error in the browser.
"""

from __future__ import annotations

from typing import Any


def _script_key(script: Any) -> tuple:
    """Identity of a script: its file (None and "" both mean inline) and its attributes."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((key, str(value)) for key, value in attributes.items())))


def deduplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated entries from the page's ``script_files``, keeping the first of each."""
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
    context["script_files"] = unique


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", deduplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
