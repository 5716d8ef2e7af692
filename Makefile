# kubestream — every target sets up its own virtual environment from the package registries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test-only S3 tooling (moto server, boto3 admin client) lives in its own virtualenv: botocore
# pins python-dateutil<3, which the agent's pinned kubernetes client cannot live with.
S3_VENV  := .venv-s3
S3_STAMP := $(S3_VENV)/.installed
S3_REQS  := tests/sinks/s3-tools-requirements.txt
# Azurite (Microsoft's Azure Storage emulator) for the azure sink tests, from the npm registry into
# a project-local folder; 3.35 is the last release whose engines accept the machine's Node 20.
TOOLS_DIR        := .tools
AZURITE_VERSION  := 3.35.0
AZURITE_STAMP    := $(TOOLS_DIR)/.azurite-$(AZURITE_VERSION)
# `make demo` on a fresh clone: only the runtime and the simulator (the `sim` extra), not the
# lint/type/test tools of `.[dev]`; a full .venv made by `make setup` is used when it exists.
DEMO_VENV  := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: setup browser demo test lint typecheck unit bench bench-tools soak sim clean

setup: $(STAMP) $(S3_STAMP) $(AZURITE_STAMP) browser

# tests/query render `kubestream timeline --html` pages in Debian's headless chromium (they fail,
# never skip, without it).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(S3_STAMP): $(S3_REQS)
	$(PYTHON) -m venv $(S3_VENV)
	echo '*' > $(S3_VENV)/.gitignore
	$(S3_VENV)/bin/pip install --quiet --upgrade pip
	$(S3_VENV)/bin/pip install --quiet -r $(S3_REQS)
	touch $(S3_STAMP)

$(AZURITE_STAMP):
	mkdir -p $(TOOLS_DIR)
	echo '*' > $(TOOLS_DIR)/.gitignore
	npm install --prefix $(TOOLS_DIR) --no-audit --no-fund --no-save --loglevel=error azurite@$(AZURITE_VERSION)
	touch $(AZURITE_STAMP)

## The main job against the embedded simulated cluster.
demo:
	@if [ -f $(STAMP) ]; then $(BIN)/kubestream demo; \
	else $(MAKE) --no-print-directory -s $(DEMO_STAMP) && $(DEMO_VENV)/bin/kubestream demo; fi

$(DEMO_STAMP): pyproject.toml
	@echo "installing the demo's runtime (kubestream and its simulator, no dev tools) into $(DEMO_VENV) ..."
	$(PYTHON) -m venv $(DEMO_VENV)
	echo '*' > $(DEMO_VENV)/.gitignore
	$(DEMO_VENV)/bin/pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/pip install --quiet -e '.[sim]'
	touch $(DEMO_STAMP)

## Lint, types, layering contracts, then the whole suite.
test: setup lint typecheck unit

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q -p no:cacheprovider

## Benchmarks: print ratios against baselines measured in the same run.
bench: setup bench-tools
	$(BIN)/python -m bench

# bench_logs compares against rsyslog (Debian's package); skipped by the benchmark when absent.
bench-tools:
	@command -v rsyslogd >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog) || \
		echo "rsyslogd not installed: bench_logs will skip its rsyslog baseline"; }

## Long soak and chaos runs (not part of CI).
soak: setup
	$(BIN)/pytest -q -m soak -p no:cacheprovider

## The simulated cluster on 127.0.0.1:8001 (point kubectl or the agent at it).
sim: $(STAMP)
	$(BIN)/kubestream sim

clean:
	rm -rf $(VENV) $(S3_VENV) $(DEMO_VENV) $(TOOLS_DIR) build dist src/*.egg-info kubestream-demo
