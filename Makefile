# kubestream — every target sets up its own virtual environment from the package registries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench soak sim clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The main job against the embedded simulated cluster.
demo: $(STAMP)
	$(BIN)/kubestream demo

## Lint, types, layering contracts, then the whole suite.
test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

## Benchmarks: print ratios against baselines measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench

## Long soak and chaos runs (not part of CI).
soak: $(STAMP)
	$(BIN)/pytest -q -m soak -p no:cacheprovider

## The simulated cluster on 127.0.0.1:8001 (point kubectl or the agent at it).
sim: $(STAMP)
	$(BIN)/kubestream sim

clean:
	rm -rf $(VENV) build dist src/*.egg-info kubestream-demo
