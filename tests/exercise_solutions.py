"""Prove every exercise solution right, cheaply: run it through its check in nbval's kernel.

nbval runs each notebook as the reader gets it (answers ``None``: the checks print "Not
answered yet"). This plugin adds one test per runnable exercise to the same notebook, after
its last cell: in the kernel that has just run the whole notebook, it executes the solution's
code (the ``python`` block in the exercise's ``{solution}`` dropdown, which assigns the answer
variable) and then the check cell again, and requires the check to print "Correct!".

A check cell is a code cell that calls ``kdlib.check_answer(my_name, ...)``; its solution is
the ``{solution}`` markdown cell whose code block assigns ``my_name``.
"""

from __future__ import annotations

import re
from queue import Empty

import nbformat
import pytest

CODE_BLOCK = re.compile(r"```(?:python|\{code-cell\}[^\n]*)\n(.*?)```", re.S)
ANSWER_NAME = re.compile(r"^(my_\w+)\s*=", re.M)
CHECKED_NAME = re.compile(r"check_answer\(\s*(my_\w+)")


def runnable_exercises(nb) -> list[tuple[str, str, str]]:
    """``(answer name, solution code, check cell source)`` for each runnable exercise of a notebook."""
    solutions = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{solution}" in cell.source:
            for code in CODE_BLOCK.findall(cell.source):
                for name in ANSWER_NAME.findall(code):
                    solutions[name] = code
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            for name in CHECKED_NAME.findall(cell.source):
                out.append((name, solutions.get(name), cell.source))
    return out


class SolutionItem(pytest.Item):
    def __init__(self, *, answer: str, solution: str | None, check: str, **kwargs):
        super().__init__(**kwargs)
        self.answer, self.solution, self.check = answer, solution, check

    def runtest(self):
        if self.solution is None:
            raise AssertionError(f"{self.answer}: its check cell has no solution: add a ```python block assigning "
                                 f"{self.answer} to the exercise's {{solution}} dropdown")
        kernel = self.parent.kernel
        msg_id = kernel.execute_cell_input(self.solution + "\n" + self.check, allow_stdin=False)
        kernel.await_reply(msg_id, timeout=300)
        printed, error = [], None
        while True:
            try:
                msg = kernel.get_message(stream="iopub", timeout=30)
            except Empty:
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        if error or "Correct!" not in "".join(printed):
            raise AssertionError(f"the solution for {self.answer} fails its check: {error or ''.join(printed)}")

    def reportinfo(self):
        return self.path, 0, f"solution of {self.answer}"


def pytest_collection_modifyitems(session, config, items):
    """After each notebook's last nbval cell, insert one SolutionItem per runnable exercise."""
    out, seen = [], set()
    for i, item in enumerate(items):
        out.append(item)
        parent = item.parent
        last_of_file = i + 1 == len(items) or items[i + 1].parent is not parent
        if type(parent).__name__ != "IPyNbFile" or not last_of_file or parent in seen:
            continue
        seen.add(parent)
        nb = nbformat.read(str(parent.path), as_version=4)
        for answer, solution, check in runnable_exercises(nb):
            out.append(SolutionItem.from_parent(parent, name=f"solution::{answer}", answer=answer,
                                                solution=solution, check=check))
    items[:] = out
