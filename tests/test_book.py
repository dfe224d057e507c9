"""Static checks of the book's notebooks and configuration (no notebook is executed here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _toc_files(entries):
    for e in entries:
        if "file" in e:
            yield e["file"]
        yield from _toc_files(e.get("chapters", []) + e.get("sections", []) + e.get("parts", []))


def test_every_notebook_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"], *_toc_files(toc.get("parts", []))}
    for nb in NOTEBOOKS:
        assert str(nb.relative_to(ROOT).with_suffix("")) in files, f"{nb} is not listed in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_executed_without_errors(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code), f"{path.name} has no outputs: execute it before committing"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was committed with an error output"
    for c in code:
        for o in c.get("outputs", []):
            images = [k for k in o.get("data", {}) if k.startswith("image/")]
            assert all(k == "image/png" for k in images), f"{path.name}: keep images PNG, found {images}"


def test_colab_setup_cells_match_the_repository_url():
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "colab_cell.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
