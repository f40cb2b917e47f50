# Two commands do everything on a fresh machine: `make study` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ALFIA := $(VENV)/bin/alfia
STAMP := $(VENV)/.alfia-installed
STUDY ?= study

ABLATION ?= ablation

.PHONY: setup test lint study ablation bench clean-study

# torch is installed explicitly first, so that no other torch build is pulled in by the dependencies.
# constraints.txt keeps every later install from changing torch or the data stack.
AUTOGLUON := autogluon.common==1.6.3 autogluon.core==1.6.3 autogluon.features==1.6.3 autogluon.tabular==1.6.3

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,baselines]'
	$(PY) -m pip install -q --no-deps $(AUTOGLUON)
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check alfia tests scripts

test: lint
	$(PY) -m pytest -q

study: setup
	$(ALFIA) study --out $(STUDY)

# Not part of the main job: Figure 3's comparisons (pre-trained vs random init, LoRA, N_f, fusion vs mean pooling).
# The default variant is the study's own run (same cohort, quick profile and seed): it is not trained twice.
ablation: setup
	test -f $(STUDY)/p12-a.encoded.parquet || $(ALFIA) study --out $(STUDY)
	test -e $(ABLATION)/default || (mkdir -p $(ABLATION) && cp -r $(STUDY)/alfia-run $(ABLATION)/default)
	$(ALFIA) ablate $(STUDY)/p12-a.encoded.parquet --out $(ABLATION)
	$(ALFIA) report $(STUDY)/alfia-run --ablation $(ABLATION) --out $(STUDY)/report.html

# The speed benchmark (docs/speed.md).
bench: setup
	$(ALFIA) bench --out benchmarks/bench.json

clean-study:
	rm -rf $(STUDY)
