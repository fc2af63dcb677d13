# Protocol Lab: `make lab` opens the labs, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# JupyterLab refuses to run as root (containers often are): allow it there, and only there.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
# e.g. PYTEST_ARGS="-n 2 --dist loadfile": two workers, a notebook's cells kept on one (faster on an
# idle machine; on a loaded one the timing-sensitive cells and tests flake, so it is not the default).
PYTEST_ARGS ?=

.PHONY: lab test notebooks bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lab: $(STAMP)  ## install (first time only) and open JupyterLab on the first notebook
	$(BIN)/jupyter lab $(LAB_ARGS) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/00-start-here.ipynb

test: $(STAMP)  ## lint and type-check, then every test and every notebook
	$(BIN)/ruff check labsupport tests tools
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

notebooks: $(STAMP)  ## re-execute every notebook in place, refreshing its stored outputs
	$(BIN)/python tools/notebooks.py refresh

bench: $(STAMP)  ## measure start-up, latency and memory targets (not part of the tests)
	for script in tools/bench*.py; do $(BIN)/python -m tools.$$(basename $$script .py) || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
