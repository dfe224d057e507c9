"""The student edition: the book, and its notebooks, without the exercise solutions.

    python tools/student_edition.py book        # HTML without solutions -> _build/student/_build/html
    python tools/student_edition.py notebooks   # notebooks without solution cells -> _build/student-notebooks/

``book`` renders the committed outputs (no execution: the answer cells ship empty anyway)
with sphinx-exercise's ``hide_solutions`` switched on. ``notebooks`` copies every chapter
notebook with its ``{solution}`` cells removed, ready to hand out (``make student-book``
does both).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build"


def student_config(folder: Path) -> Path:
    """Write ``folder/_config.yml``: the book's configuration with solutions hidden and execution off."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"]["hide_solutions"] = True
    config["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in config["sphinx"]["local_extensions"].items()}
    config["bibtex_bibfiles"] = [str(ROOT / f) for f in config["bibtex_bibfiles"]]
    config["title"] = config.get("title", "") + " (student edition)"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def build_book(out: Path = OUT / "student", extra: tuple[str, ...] = ()) -> Path:
    """Build the HTML without solutions into ``out/_build/html``; return that folder."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--config", str(student_config(out)), "--path-output", str(out), *extra]
    subprocess.run(cmd, check=True)
    return out / "_build" / "html"


def strip_notebooks(out: Path = OUT / "student-notebooks") -> list[Path]:
    """Copy every notebook under ``book/`` without its solution cells; return the written paths."""
    written = []
    for src in sorted((ROOT / "book").rglob("*.ipynb")):
        nb = nbformat.read(str(src), as_version=4)
        nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and "{solution}" in c.source)]
        dst = out / src.relative_to(ROOT / "book")
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(dst))
        written.append(dst)
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("book", "notebooks"))
    args = ap.parse_args(argv)
    if args.what == "book":
        print(f"student edition: {build_book() / 'index.html'}")
    else:
        print(f"{len(strip_notebooks())} notebooks without solutions in {OUT / 'student-notebooks'}")


if __name__ == "__main__":
    main()
