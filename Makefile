# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs the library with the AutoGen and local-model extras, and runs
#               the main job (a two-agent AutoGen team with personas on the embedded model)
#   make test   creates .venv, installs the development extras, and runs lint, types and all tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: demo test lint format typecheck bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --progress-bar off -e ".[autogen,local,otel]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --progress-bar off -e ".[dev]"
	touch $@ $(VENV)/.demo-installed

# llama-cpp-python is compiled on install with the CPU flags of the machine that built it, and pip
# reuses that wheel from its cache on any machine that shares the cache. Check once per install that
# the build runs the embedded model on this CPU (in a child process); if it crashes, rebuild it for a
# portable CPU baseline (4 to 25 minutes on 2 cores) and check again.
$(VENV)/.llama-checked: $(VENV)/.demo-installed
	$(BIN)/python -m persona_plugins.integrations.llama_cpp check --repair
	touch $@

# Arize Phoenix, for the observability test (tests/integrations/test_phoenix.py), gets a venv of
# its own so that its heavy dependencies stay out of $(VENV).
.venv-phoenix/.installed:
	$(PYTHON) -m venv .venv-phoenix
	.venv-phoenix/bin/python -m pip install --quiet --upgrade pip
	.venv-phoenix/bin/python -m pip install --progress-bar off "arize-phoenix>=20.26,<21"
	touch $@

demo: $(VENV)/.demo-installed $(VENV)/.llama-checked
	$(BIN)/persona-plugins demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint typecheck $(VENV)/.llama-checked .venv-phoenix/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run_all.py

# 10,000 turns per configuration on a seeded faulty model with random cancellation (outside
# `make test`, which runs 500 of them): writes its table to benchmarks/RESULTS.md.
soak: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_faults.py --turns 10000

clean:
	rm -rf $(VENV) .venv-phoenix build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
