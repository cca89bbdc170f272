# FloriSense developer commands. `make demo` runs the product; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's bin must be on PATH: `mlflow run` and `mlflow models serve` start sub-processes by name.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Local settings (copy .env.example to .env); never committed.
ifneq (,$(wildcard .env))
include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env)
endif
TRACKING_URI := http://127.0.0.1:$(or $(FLORISENSE_MLFLOW_PORT),5050)

.PHONY: setup test test-unit lint train up down status demo clean

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

up: setup  ## start the stack as plain processes (MLflow tracking server on :5050)
	$(BIN)/python -m scripts.stack up

down:  ## stop exactly what `make up` started
	@test -x $(BIN)/python && $(BIN)/python -m scripts.stack down || echo "nothing to stop (no .venv)"

status:
	$(BIN)/python -m scripts.stack status

train: up  ## train, log, register and gate a new version on $$FLORISENSE_DATA_DIR
	@test -n "$$FLORISENSE_DATA_DIR" || { echo "$(NO_PHOTOS)"; exit 2; }
	MLFLOW_TRACKING_URI=$(TRACKING_URI) $(BIN)/mlflow run . --env-manager local

demo: train  ## setup, start, train, and classify a few photos with models:/florisense/Production
	MLFLOW_TRACKING_URI=$(TRACKING_URI) $(BIN)/python -m scripts.classify --per-folder 3 \
		"$$FLORISENSE_DATA_DIR"/*/
	@echo "MLflow UI (runs, metrics, plots, registry): $(TRACKING_URI)"
	@echo "Stop everything with: make down"

NO_PHOTOS := FloriSense needs labelled photos: set FLORISENSE_DATA_DIR to a folder with one sub-folder \
per class (dandelion/, grass/), e.g. the dandelion-grass set from btphan95/greenr-airflow (data/).

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
