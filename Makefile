# Two commands do everything on a fresh machine: `make study` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ALFIA := $(VENV)/bin/alfia
STAMP := $(VENV)/.alfia-installed
STUDY ?= study

.PHONY: setup test lint study clean-study

# torch is installed explicitly first, so that no other torch build is pulled in by the dependencies.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check alfia tests scripts

test: lint
	$(PY) -m pytest -q

study: setup
	$(ALFIA) study --out $(STUDY)

clean-study:
	rm -rf $(STUDY)
