"""The built HTML in a real browser (headless Chromium): pages load, math renders, figures show,
and every interactive figure's slider changes its figure, offline.

Not part of the default suite (it needs Chromium and a built book). Run it with
``make browser-check`` (builds the book, then runs this file); screenshots are written to
``_build/screenshots/``. Install Chromium with ``apt-get install chromium`` (Debian) or
set ``CHROMIUM`` to the browser's path; ``BOOK_HTML`` points at another built book
(default ``_build/html``). The sliders are moved through the DevTools protocol over
Chromium's ``--remote-debugging-pipe``: no WebDriver, no extra Python package.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
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
    "book/part1/loss.html": {"math": True, "figure": True, "widget": True},
    "book/part2/distillation.html": {"math": True, "figure": True},
    "book/part2/temperature.html": {"math": True, "figure": True, "widget": True},
    "book/part3/distillation.html": {"math": True, "figure": True, "widget": True},
    "book/part4/training_speed.html": {"math": False, "figure": True},
    "book/part4/pros_and_cons.html": {"math": True, "figure": True},
    "book/part4/faq.html": {"math": True, "figure": False},
    "book/appendix/performance.html": {"math": False, "figure": False},
}
# Pages with interactive figures (kdlib.plots.frame_slider) and how many each has: the test
# moves every one of their sliders and requires the figure to change. Add a page here when
# you add an interactive figure.
SLIDER_PAGES = {
    "book/part1/principle.html": 1,
    "book/part1/loss.html": 1,
    "book/part2/temperature.html": 1,
    "book/part3/distillation.html": 1,
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


class _DevTools:
    """A minimal Chrome DevTools Protocol client: Chromium with ``--remote-debugging-pipe``
    reads NUL-terminated JSON commands on its fd 3 and writes replies and events on fd 4."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 1000):
        r_cmd, w_cmd = os.pipe()  # we write commands -> browser fd 3
        r_evt, w_evt = os.pipe()  # browser fd 4 -> we read

        def fds():
            os.dup2(r_cmd, 3)
            os.dup2(w_evt, 4)

        flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
        self.proc = subprocess.Popen([_chromium(), *flags, "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(3, 4), preexec_fn=fds)
        os.close(r_cmd)
        os.close(w_evt)
        self._out, self._in, self._buf, self._id, self.session = w_cmd, r_evt, b"", 0, None
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, timeout: float = 60, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _next(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def js(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"still false after {timeout} s: {expression}")

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                      nativeVirtualKeyCode=code)

    def shot(self, clip: dict, path: Path) -> bytes:
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png", clip={**clip, "scale": 1})["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._out)
        os.close(self._in)


# the i-th frame slider's VBox (slider + Stack of frames), as seen in the page
_FIGURES = "[...document.querySelectorAll('.widget-vbox')].filter(b => b.querySelector(':scope > .widget-hslider') && b.querySelector('img.widget-image'))"
_STATE = """(() => {{ const box = {figures}[{i}]; box.scrollIntoView({{block: 'center'}});
  const img = box.querySelector('img.widget-image'), r = img.getBoundingClientRect(), b = box.getBoundingClientRect();
  return {{src: img.src, complete: img.complete && img.naturalWidth > 0, readout: box.querySelector('.widget-readout').textContent,
           clip: {{x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}},
           box: {{x: b.left + window.scrollX, y: b.top + window.scrollY, width: b.width, height: b.height}}}}; }})()"""


@pytest.mark.parametrize("page", list(SLIDER_PAGES))
def test_slider_changes_the_figure(built, page, tmp_path):
    """Press ArrowRight on each frame slider's handle: the frame (image and pixels) and the label change;
    Home brings the first frame back, pixel for pixel. Offline, from the saved widget state alone."""
    browser = _DevTools(tmp_path / "profile")
    try:
        browser.send("Page.navigate", url=(built / page).as_uri())
        n = browser.wait_for(f"{_FIGURES}.length >= {SLIDER_PAGES[page]} && {_FIGURES}.length")
        assert n == SLIDER_PAGES[page], f"{page}: {n} frame sliders rendered, expected {SLIDER_PAGES[page]}"
        for i in range(n):
            name = page.replace("/", "_").replace(".html", f"_slider{i}")
            state = lambda: browser.js(_STATE.format(figures=_FIGURES, i=i))  # noqa: E731
            browser.wait_for(_STATE.format(figures=_FIGURES, i=i) + ".complete")
            before = state()
            png_before = browser.shot(before["clip"], SHOTS / f"{name}_first.png")
            browser.js(f"{_FIGURES}[{i}].querySelector('.noUi-handle').focus()")
            for _ in range(3):
                browser.key("ArrowRight", 39)
            browser.wait_for(f"(() => {{ const s = {_STATE.format(figures=_FIGURES, i=i)}; "
                             f"return s.src !== {json.dumps(before['src'])} && s.complete; }})()")
            after = state()
            png_after = browser.shot(after["clip"], SHOTS / f"{name}_moved.png")
            browser.shot(after["box"], SHOTS / f"{name}_moved_with_slider.png")  # for a person to look at
            assert after["readout"] != before["readout"], f"{page} slider {i}: the label did not change"
            assert png_after != png_before, f"{page} slider {i}: the image element changed but not its pixels"
            browser.key("Home", 36)
            browser.wait_for(f"{_STATE.format(figures=_FIGURES, i=i)}.readout === {json.dumps(before['readout'])}")
            browser.wait_for(_STATE.format(figures=_FIGURES, i=i) + ".complete")
            back = browser.shot(state()["clip"], SHOTS / f"{name}_back.png")
            assert back == png_before, f"{page} slider {i}: Home did not bring the first frame back"
    finally:
        browser.close()
