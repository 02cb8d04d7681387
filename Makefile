# vidseg — the README's commands. Every target installs first when needed (fresh clone friendly).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := $(sort $(dir $(wildcard packages/*/pyproject.toml)))
STAMP := $(VENV)/.vidseg-installed
PYTEST_ARGS ?=
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install test test-slow lint bench demo clean help

help:
	@echo "make install    create .venv and install every package (editable) with the pinned constraints"
	@echo "make test       lint + the default test suite (excludes tests marked slow)"
	@echo "make test-slow  only the slow tests"
	@echo "make lint       ruff + import-linter"
	@echo "make bench      every script in benchmarks/ (ops, system) and experiments/*/analysis/ (paper claims) at quick sizes"
	@echo "make demo       train every paper briefly on synthetic data, log to MLflow, then vidseg compare (~5 min after install, 2 idle cores)"

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no slow tests: failing" >&2; exit 1; fi; exit $$rc

bench: install
	@for script in $(filter-out benchmarks/ops_%.py,$(wildcard benchmarks/*.py)) $(wildcard experiments/*/analysis/*.py); do \
		echo "== $$script"; $(PY) $$script --quick || exit $$?; \
	done

demo: install
	$(PY) experiments/demo.py

clean:
	rm -rf dist build .pytest_cache .ruff_cache
