"""Self-checking exercises: one call that tells a reader "not answered yet", "not quite" or "correct".

A runnable exercise in the book has three parts:

1. an answer cell the reader fills in, shipped empty: ``my_answer = None``;
2. a check cell that computes the reference and calls :func:`check_answer`;
3. the solution, inside the exercise's ``{solution}`` dropdown, as a ``python`` code block
   that assigns the answer (``my_answer = ...``).

The test suite runs every solution's code through its check cell in the notebook's own
kernel after nbval has run the notebook (``tests/conftest.py``), so the shipped notebook
(empty answers) and the solutions are both kept honest.
"""

from __future__ import annotations

import math
from typing import Any

__all__: list[str] = ["check_answer"]


def check_answer(answer: Any, expected: Any, *, rtol: float = 1e-3, atol: float = 1e-8, hint: str = "") -> None:
    """Compare a reader's ``answer`` with ``expected`` and print the verdict.

    ``None`` means not answered yet (printed, no error, so the shipped notebook runs). A
    number is right when ``|answer - expected| <= tol * max(1, |expected|)``; anything else
    must compare equal (``==``). A wrong answer raises ``AssertionError`` with ``hint``.
    """
    if answer is None:
        print("Not answered yet: replace None in the cell above with your answer, then run this cell.")
        return
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise AssertionError(f"Not quite: expected a number, got {type(answer).__name__}. {hint}") from None
        right = math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)
    else:
        right = bool(answer == expected)
    if not right:
        raise AssertionError(f"Not quite: {answer!r} is not the answer. Hint: {hint}" if hint else
                             f"Not quite: {answer!r} is not the answer.")
    print("Correct!")
