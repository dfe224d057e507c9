# Two commands for a fresh machine (see README.md):
#   make book   set up .venv, then build the book (executes every notebook) into _build/html
#   make test   set up .venv, then run the whole test suite (kdlib unit tests + nbval)
# Offline machines: export KDLIB_DATA=/path/to/data (e.g. ../shared/data) first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The committed outputs were computed with torch's AVX2 CPU kernels; pin them so that an AVX-512 CPU
# reproduces them (conftest.py does the same for any pytest run).
ifneq ($(filter x86_64 amd64,$(shell uname -m)),)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_ENABLE_INSTRUCTIONS ?= AVX2
export ONEDNN_MAX_CPU_ISA ?= AVX2
endif

.PHONY: setup book student-book test unit browser-check clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-warn-script-location -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import torch, torchvision, jupyter_book, nbval, sphinx_exercise"
	$(BIN)/python -m pip install --quiet --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import kdlib"
	touch $(STAMP)

book: setup
	$(BIN)/jupyter-book build .
	@echo "HTML: $(CURDIR)/_build/html/index.html"

student-book: setup
	$(BIN)/python tools/student_edition.py book
	$(BIN)/python tools/student_edition.py notebooks

# two pytest workers, one notebook (or test file) each: the notebooks train with one thread,
# so a second worker uses the second core (--dist loadfile keeps a notebook's cells and its
# exercise checks in one kernel, in order). JOBS=1 runs everything in one process.
JOBS ?= 2

test: setup
	env -u MPLBACKEND $(BIN)/python -m pytest -n $(JOBS) --dist loadfile

unit: setup
	$(BIN)/python -m pytest tests

browser-check: book
	$(BIN)/python -m pytest -m browser tests/browser -v
	@echo "screenshots: $(CURDIR)/_build/screenshots/"

clean:
	rm -rf _build
