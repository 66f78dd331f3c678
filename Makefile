# gapline: two commands on a fresh machine.
#   make demo   venv + install + ingest polygon-demo + backtest + tear sheet
#   make test   venv + install + full test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ZIPLINE_ROOT ?= $(HOME)/.zipline
DEMO_START ?= 2024-10-01
DEMO_END   ?= 2024-12-31
REPORTS    ?= reports

.PHONY: demo test test-slow install bench baselines clean-venv

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zipline -e extension.py ingest -b polygon-demo
	$(BIN)/gapline demo --start $(DEMO_START) --end $(DEMO_END) --out $(REPORTS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/backtest.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/sweep.py

baselines: $(STAMP)
	$(BIN)/zipline -e extension.py ingest -b polygon-demo
	$(BIN)/python -m tests.baseline update

# JupyterLab on notebooks/ with the demo bundle ingested (once) into $(ZIPLINE_ROOT)
.PHONY: notebooks
NOTEBOOKS_STAMP := $(VENV)/.notebooks
JUPYTER_ARGS ?=
$(NOTEBOOKS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	touch $(NOTEBOOKS_STAMP)

notebooks: $(NOTEBOOKS_STAMP)
	@$(BIN)/gapline status -b polygon-demo | grep -q ' ok$$' || $(BIN)/zipline -e extension.py ingest -b polygon-demo
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR)/notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)

clean-venv:
	rm -rf $(VENV)
