"""Sphinx extension: serve MathJax 3 from the book's own ``_static`` folder.

The built HTML then renders its math without internet (a classroom without network,
a downloaded copy of ``_build/html``, or the headless-browser check). The files come
from the ``django-static-mathjax`` wheel in requirements.txt; only the parts a page
loads are copied: the combined TeX/MathML -> CHTML component, its fonts, the TeX
extensions it autoloads, and the context menu.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PARTS = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y", "sre")


def _source() -> Path:
    import mathjax  # the django-static-mathjax package

    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (src / "tex-mml-chtml.js").exists():
        raise FileNotFoundError(f"MathJax files not found under {src}; pip install django-static-mathjax")
    return src


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src, dst = _source(), Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        s, d = src / part, dst / part
        if not s.exists():
            continue
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)


def setup(app):
    _source()  # fail early with a clear message
    app.config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative: served from _static/
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
