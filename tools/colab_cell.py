"""Write the Colab set-up cell at the top of every notebook under book/.

The cell clones the repository named in ``_config.yml`` (``repository.url``, the one place
the URL is set) and installs kdlib when the notebook runs on Google Colab; elsewhere it
does nothing. It carries the tag ``remove-cell`` so the HTML book does not show it.

    python tools/colab_cell.py          # rewrite the notebooks in place
    python tools/colab_cell.py --check  # exit 1 if a notebook lacks the current cell
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
TAG = "colab-setup"


def colab_source(repo_url: str) -> str:
    return (
        "# Running on Google Colab? Fetch the book's code and install kdlib (does nothing elsewhere).\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f"    !git clone --depth 1 {repo_url} /content/kd-book\n"
        '    %pip install --quiet -e /content/kd-book\n'
        '    sys.path.insert(0, "/content/kd-book")'
    )


def repo_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def has_current_cell(nb, source: str) -> bool:
    first = nb.cells[0] if nb.cells else None
    return first is not None and first.cell_type == "code" and first.source == source


def apply(path: Path, source: str) -> bool:
    """Insert or refresh the set-up cell; return True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    if has_current_cell(nb, source):
        return False
    if nb.cells and TAG in nb.cells[0].get("metadata", {}).get("tags", []):
        nb.cells.pop(0)
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG, "remove-cell"]})
    nb.cells.insert(0, cell)
    nbformat.write(nb, path)
    return True


def main(argv: list[str]) -> int:
    source = colab_source(repo_url())
    if "--check" in argv:
        stale = [p for p in notebooks() if not has_current_cell(nbformat.read(p, as_version=4), source)]
        for p in stale:
            print(f"{p.relative_to(ROOT)}: missing or stale Colab set-up cell; run python tools/colab_cell.py")
        return 1 if stale else 0
    for p in notebooks():
        if apply(p, source):
            print(f"updated {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
