"""The exercise checker, and the book's exercise conventions (answers ship empty, every check has a solution)."""

import json
from pathlib import Path

import nbformat
import pytest

import kdlib
from exercise_solutions import runnable_exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_check_answer_none_right_wrong(capsys):
    kdlib.check_answer(None, 3.0)
    assert "Not answered yet" in capsys.readouterr().out
    kdlib.check_answer(3.0001, 3.0, rtol=1e-3)
    assert "Correct!" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Hint: think again"):
        kdlib.check_answer(3.1, 3.0, hint="think again")
    with pytest.raises(AssertionError, match="expected a number"):
        kdlib.check_answer("three", 3.0)
    with pytest.raises(AssertionError):
        kdlib.check_answer(float("nan"), 3.0)
    kdlib.check_answer("B", "B")
    assert "Correct!" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        kdlib.check_answer(1e-3, 2e-3)  # relative tolerance, not an absolute one that small values always pass


def test_runnable_exercises_pairs_checks_with_solutions():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("my_a = None"),
                nbformat.v4.new_code_cell("kdlib.check_answer(my_a, 1)"),
                nbformat.v4.new_markdown_cell("::::{solution} ex\n```python\nmy_a = 1\n```\n::::"),
                nbformat.v4.new_code_cell("kdlib.check_answer(my_b, 2)")]
    assert runnable_exercises(nb) == [("my_a", "my_a = 1\n", "kdlib.check_answer(my_a, 1)"),
                                      ("my_b", None, "kdlib.check_answer(my_b, 2)")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_answers_ship_empty_and_every_check_has_a_solution(path):
    nb = nbformat.read(str(path), as_version=4)
    for answer, solution, _ in runnable_exercises(nb):
        assert solution is not None, f"{answer}: no ```python solution block assigns it in a {{solution}} dropdown"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if line.startswith("my_") and "=" in line and not line.split("=", 1)[0].strip().endswith(("[", "(")):
                value = line.split("=", 1)[1].split("#")[0].strip()
                assert value in ("None", "..."), f"{path.name}: answer cell ships filled in: {line.strip()!r}"
