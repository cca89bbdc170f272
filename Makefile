# FloriSense developer commands. `make demo` runs the product; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's bin must be on PATH: `mlflow run` and `mlflow models serve` start sub-processes by name.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup test test-unit test-integration lint train clean

setup: $(VENV)/.installed  ## create .venv with the pinned dependencies (quick when up to date)

# Re-installs only when pyproject.toml (the one place versions are pinned) changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

test: setup  ## the whole suite: unit, integration against a real MLflow server, real-data training
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest -m "not integration and not realdata"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

train: setup  ## train, log, register and gate a new version (MLFLOW_TRACKING_URI, FLORISENSE_DATA_DIR)
	$(BIN)/mlflow run . --env-manager local

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
