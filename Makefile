# Protocol Lab: `make lab` opens the labs, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# `make lab PORT=8899 TOKEN=s3cret BROWSER=firefox` (BROWSER=none: open no browser, print the URL).
PORT ?=
TOKEN ?=
BROWSER ?=
# JupyterLab refuses to run as root (containers often are): allow it there, and only there.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
# Settings shipped with the labs (no Jupyter news prompt), read from this repo: the user's own
# JupyterLab settings are neither read over nor written.
LAB_SETTINGS := --LabApp.app_settings_dir=$(CURDIR)/jupyter/lab-settings
# Two workers, each test file (a notebook's cells too) kept on one. PYTEST_ARGS="-n 0" runs
# everything in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile
# `make test LAB=rest`: one lab's tests and notebook only (its package or its tests' slug), the
# slow whole-system ones left out unless SLOW=1; `python -m tools.lab_tests rest` lists them.
LAB ?=
SLOW ?=
LAB_MARK := $(if $(SLOW),,-m "not slow")

.PHONY: lab test quick notebooks bench lint check-env clean

$(STAMP): pyproject.toml  ## what the labs need, and nothing else
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)  ## plus the test tools (pytest, nbval, Playwright, Hypothesis, ruff, mypy)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

lab: $(STAMP)  ## install (first time only) and open JupyterLab on the first notebook
	$(BIN)/jupyter lab $(LAB_ARGS) $(LAB_SETTINGS) --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/notebooks/00-start-here.ipynb \
		$(if $(PORT),--ServerApp.port=$(PORT)) $(if $(TOKEN),--IdentityProvider.token=$(TOKEN)) \
		$(if $(filter none,$(BROWSER)),--no-browser,$(if $(BROWSER),--ServerApp.browser=$(BROWSER)))

check-env: $(STAMP)  ## the pre-flight check: packages, every lab server, Chromium
	$(BIN)/python -m labsupport.preflight

test: $(TEST_STAMP)  ## lint and type-check, then every test and every notebook (LAB=: one lab)
	$(BIN)/ruff check labsupport tests tools
	$(BIN)/mypy
ifeq ($(LAB),)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
else
	files="$$($(BIN)/python -m tools.lab_tests $(LAB))" && \
		$(BIN)/python -m pytest $(PYTEST_ARGS) $(LAB_MARK) $$files
endif

quick: $(TEST_STAMP)  ## lint, type-check, and every test but the slow whole-system ones
	$(BIN)/ruff check labsupport tests tools
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

notebooks: $(TEST_STAMP)  ## re-execute every notebook in place, refreshing its stored outputs
	$(BIN)/python tools/notebooks.py refresh

bench: $(TEST_STAMP)  ## measure start-up, latency and memory targets (not part of the tests)
	for script in tools/bench*.py; do $(BIN)/python -m tools.$$(basename $$script .py) || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
