"""Self-checking exercises: :func:`check_answer` tells a reader "not answered yet", "not quite" or "correct".

An exercise: an answer cell shipped as ``my_answer = None``, a check cell calling :func:`check_answer`, and a
``{solution}`` dropdown whose ``python`` block assigns ``my_answer`` (``tests/conftest.py`` checks each one).
"""

from __future__ import annotations

import math
from typing import Any

__all__: list[str] = ["check_answer"]


def check_answer(answer: Any, expected: Any, *, rtol: float = 1e-3, atol: float = 1e-8, hint: str = "") -> None:
    """Print the verdict on ``answer``; ``None`` means not answered yet (no error, so the shipped notebook runs).

    A number must be ``math.isclose(answer, expected, rel_tol=rtol, abs_tol=atol)``, anything else ``== expected``.
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
