# FloriSense developer commands. `make demo` runs the product; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's bin must be on PATH: `mlflow run` and `mlflow models serve` start sub-processes by name.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
# Artifacts through the tracking server's proxy, never from S3 directly (README, "Storage").
export MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD := false
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Local settings (copy .env.example to .env); never committed.
ifneq (,$(wildcard .env))
include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env)
endif
TRACKING_URI := http://127.0.0.1:$(or $(FLORISENSE_MLFLOW_PORT),5050)
WEB_URL := http://127.0.0.1:$(or $(FLORISENSE_WEB_PORT),8080)

.PHONY: setup system-deps orchestration-env docs-ui test test-unit chaos lint train up down status demo serving-env compose-test clean

setup: system-deps $(VENV)/.installed .venv-serve/.installed .venv-orchestrate/.installed docs-ui  ## Debian packages if missing, .venv with the pinned deps, .venv-serve (the model's own), .venv-orchestrate (Prefect's), Swagger UI for /docs

system-deps:  ## nginx + njs, chromium, make, venv: installs what is missing (needs root)
	@bash scripts/system_deps.sh

# Re-installs only when pyproject.toml (the one place versions are pinned) changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[stack,batch,dev]"
	touch $@

# Swagger UI for /docs: the files of the npm package pinned and locked (with its integrity hash)
# in nginx/docs-ui/, installed with `npm ci --ignore-scripts` (no install scripts run: the
# package's analytics dependency has one), and only the bundle, its CSS and licences copied into
# nginx/html/docs/swagger-ui/ (not committed), which both stacks serve (compose mounts nginx/html).
DOCS_UI := nginx/html/docs/swagger-ui
DOCS_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE

docs-ui: $(DOCS_UI)/swagger-ui-bundle.js  ## Swagger UI files for /docs, from the pinned npm package (needs npm)

$(DOCS_UI)/swagger-ui-bundle.js: nginx/docs-ui/package.json nginx/docs-ui/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing (Swagger UI for /docs): run make system-deps, or apt-get install npm" >&2; exit 1; }
	cd nginx/docs-ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(DOCS_UI).tmp && mkdir -p $(DOCS_UI).tmp
	cd nginx/docs-ui/node_modules/swagger-ui-dist && cp $(DOCS_UI_FILES) $(CURDIR)/$(DOCS_UI).tmp/
	rm -rf $(DOCS_UI) && mv $(DOCS_UI).tmp $(DOCS_UI)

test: setup  ## the whole suite: unit, integration against a real MLflow server, real-data training
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest -m "not integration and not realdata"

chaos: setup  ## long scenarios on a fresh test stack (~5 min): 60 s load at c8, model server killed under traffic
	$(BIN)/pytest -m chaos -s tests/chaos

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

up: setup  ## start the stack: MLflow :5050, model server :5001, nginx :8080 (needs a Production model)
	$(BIN)/python -m scripts.stack up

down:  ## stop exactly what `make up` started
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m scripts.stack down; else echo "nothing to stop"; fi

status:
	$(BIN)/python -m scripts.stack status

# The photos: $$FLORISENSE_DATA_DIR, else the original product's (downloaded once, verified);
# offline without photos, one line says what to do. Resolved before `mlflow run`, whose own
# failure would end in a stack trace.
PHOTOS = $(BIN)/python -m florisense_model.training.sources

train: setup  ## train, log, register and gate a new version on the data bucket (seeded once from $$FLORISENSE_DATA_DIR, else the default photos)
	$(BIN)/python -m scripts.stack up --only s3 --only mlflow
	$(BIN)/florisense data seed
	MLFLOW_TRACKING_URI=$(TRACKING_URI) $(BIN)/mlflow run . --env-manager local -P data_dir=s3://florisense-data/labelled/

demo: train  ## setup, start, train, then serve the new Production model and print the URLs
	$(BIN)/python -m scripts.stack restart --only model-server --only nginx
	$(BIN)/python -m scripts.stack up  # the rest: mtail and Prometheus (monitoring)
	@photos=$$($(PHOTOS) 2>/dev/null) && $(BIN)/python -m scripts.predict --per-folder 2 "$$photos"/*/
	@echo
	@echo "Web page:  $(WEB_URL)   (drop a photo, read the verdict)"
	@echo "API:       curl -s -H 'Content-Type: application/json' -d @request.json $(WEB_URL)/predict"
	@echo "MLflow UI: $(TRACKING_URI)"
	@echo "Prometheus: http://127.0.0.1:$(or $(FLORISENSE_PROMETHEUS_PORT),9090)/consoles/florisense.html"
	@echo "Prefect UI: http://127.0.0.1:$(or $(FLORISENSE_PREFECT_PORT),4200)/deployments   (retrain/florisense; login: run/secrets/prefect-auth)"
	@echo "Retrain:   .venv/bin/florisense retrain --wait   (or add photos: .venv/bin/florisense data add PHOTO... --label dandelion)"
	@echo "Stop everything with: make down"

# The registered model's own environment (its requirements.txt: no TensorFlow), as in the
# model-server image: `make up` serves versions with a compiled graph from it (stack/serve.py).
serving-env: .venv-serve/.installed  ## .venv-serve: mlflow-skinny, onnxruntime, pillow, numpy, pandas (pinned)

.venv-serve/.installed: pyproject.toml $(VENV)/.installed
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python .venv-serve
	$(BIN)/python -c 'from florisense_model.pins import serving_requirements as r; print(*r(), sep="\n")' > .venv-serve/requirements.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python .venv-serve/bin/python -r .venv-serve/requirements.txt
	touch $@

# Prefect's own environment: it pins FastAPI below the project's, so it never enters .venv. The
# flows need only Prefect, the MLflow client and boto3 (pinned in pyproject.toml), and the tests
# prefect-kubernetes (they build the Kubernetes work pool's Jobs with its own code); training
# runs in .venv (`mlflow run`), and the package comes from the source tree (PYTHONPATH).
orchestration-env: .venv-orchestrate/.installed  ## .venv-orchestrate: prefect, prefect-kubernetes, mlflow-skinny, boto3 (pinned)

.venv-orchestrate/.installed: pyproject.toml $(VENV)/.installed
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python .venv-orchestrate
	$(BIN)/python florisense_model/pins.py pyproject.toml prefect prefect-kubernetes mlflow-skinny boto3 > .venv-orchestrate/requirements.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python .venv-orchestrate/bin/python -r .venv-orchestrate/requirements.txt
	touch $@

compose-test: setup  ## docker compose on a real engine (started, then stopped), stand-ins for pulled images
	bash scripts/docker_engine.sh start
	status=0; bash docker/standins/build.sh && $(BIN)/pytest -m compose -s tests/compose || status=$$?; \
	bash scripts/docker_engine.sh stop; exit $$status

clean:
	rm -rf $(VENV) .venv-serve .pytest_cache .ruff_cache .hypothesis test-artifacts nginx/docs-ui/node_modules $(DOCS_UI)
