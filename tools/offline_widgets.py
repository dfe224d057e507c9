"""Sphinx extension: render the notebooks' saved ipywidgets from the book's own ``_static`` folder.

By default MyST-NB loads RequireJS and the widget manager from CDNs, so a page with a
widget shows only "Loading..." without internet. This extension points MyST-NB's
``nb_ipywidgets_js`` at ``_static/jupyter-widgets/embed.js`` instead: the standalone
bundle of ``@jupyter-widgets/html-manager`` (the built-in ipywidgets controls, no
RequireJS needed), vendored in ``tools/vendor/jupyter-widgets`` with its icon fonts.
A widget in the HTML shows the state it was saved with; moving a slider there does not
re-run Python (launch the page on Binder, Colab or Thebe for that).
"""

from __future__ import annotations

import shutil
from pathlib import Path

VENDOR = Path(__file__).parent / "vendor" / "jupyter-widgets"


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dst = Path(app.outdir) / "_static" / "jupyter-widgets"
    dst.mkdir(parents=True, exist_ok=True)
    for f in VENDOR.iterdir():
        if f.suffix in {".js", ".woff2", ".txt"}:
            shutil.copy2(f, dst / f.name)


def _use_local_bundle(app, config) -> None:
    # assets-path.js first: the bundle finds its fonts through the global it sets.
    config.nb_ipywidgets_js = {"jupyter-widgets/assets-path.js": {}, "jupyter-widgets/embed.js": {}}


def setup(app):
    if not (VENDOR / "embed.js").exists():
        raise FileNotFoundError(f"{VENDOR / 'embed.js'} is missing; see {VENDOR / 'README.md'} to restore it")
    app.connect("config-inited", _use_local_bundle)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
