"""The built HTML in a real browser (headless Chromium): pages load, math renders, figures show.

Not part of the default suite (it needs Chromium and a built book). Run it with
``make browser-check`` (builds the book, then runs this file); screenshots are written to
``_build/screenshots/``. Install Chromium with ``apt-get install chromium`` (Debian) or
set ``CHROMIUM`` to the browser's path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-file-access-from-files", "--virtual-time-budget=15000", "--hide-scrollbars",
]
# (page, what it must show)
PAGES = {
    "book/intro.html": {"math": False, "figure": False},
    "book/setup_check.html": {"math": False, "figure": True},
    "book/part1/index.html": {"math": True, "figure": False},
    "book/part1/why_distil.html": {"math": True, "figure": True},
    "book/part1/principle.html": {"math": True, "figure": True, "widget": True, "height": 5200},
    "book/part1/loss.html": {"math": True, "figure": True},
    "book/part2/distillation.html": {"math": True, "figure": True},
    "book/part3/distillation.html": {"math": True, "figure": True},
    "book/part4/training_speed.html": {"math": False, "figure": True},
    "book/part4/pros_and_cons.html": {"math": True, "figure": True},
    "book/part4/faq.html": {"math": True, "figure": False},
    "book/appendix/performance.html": {"math": False, "figure": False},
}


def _chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("Chromium not found: apt-get install chromium, or set CHROMIUM=/path/to/chrome")
    return exe


def _run(args: list[str], tmp_path: Path) -> str:
    res = subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                         capture_output=True, text=True, timeout=120)
    return res.stdout


@pytest.fixture(scope="module")
def built():
    if not (HTML / "index.html").exists():
        pytest.fail("no built book: run `make book` first (or `make browser-check`)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return HTML


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders(built, page, tmp_path):
    url = (built / page).as_uri()
    dom = _run(["--dump-dom", url], tmp_path)
    assert "<main" in dom and "Page not found" not in dom, f"{page} did not load"
    want = PAGES[page]
    if want["math"]:
        assert dom.count("<mjx-container") > 0, f"{page}: MathJax rendered no math"
    if want["figure"]:
        pngs = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
        assert pngs, f"{page}: no PNG figure"
        for src in pngs:
            assert (built / page).parent.joinpath(unquote(src)).resolve().exists(), f"{page}: missing image {src}"
    if want.get("widget"):
        # rendered from the saved widget state by the vendored manager (tools/offline_widgets.py), no CDN
        assert "widget-slider" in dom, f"{page}: the saved ipywidgets slider did not render"
        assert "cdn.jsdelivr.net" not in dom and "cdnjs.cloudflare.com" not in dom, f"{page}: widget JS from a CDN"
    shot = SHOTS / (page.replace("/", "_").replace(".html", ".png"))
    # tall enough to show the page's widget where it has one (scrolling to an anchor gives a blank shot)
    _run([f"--screenshot={shot}", f"--window-size=1280,{want.get('height', 1600)}", url], tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000, f"{page}: screenshot failed"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.links.append(v)


def test_internal_links_resolve(built):
    broken = []
    for page in built.rglob("*.html"):
        if "_static" in page.parts:  # theme templates, not pages
            continue
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        for link in parser.links:
            u = urlparse(link)
            if u.scheme or u.netloc or link.startswith(("#", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(u.path)).resolve()
            if u.path and not target.exists():
                broken.append(f"{page.relative_to(built)} -> {link}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:30])
