# The project image: the trainer (`mlflow run . --env-manager local`), the model server (the
# follower with its `mlflow models serve` slots) and the retraining flows, with exactly the pins
# of pyproject.toml.
FROM python:3.11-slim-bookworm
# The dependencies first, from the pins alone: a code change does not reinstall them.
COPY pyproject.toml florisense_model/pins.py /build/
RUN python /build/pins.py /build/pyproject.toml > /build/requirements.txt \
    && pip install --no-cache-dir -r /build/requirements.txt \
    # Prefect in an environment of its own, as .venv-orchestrate (it pins fastapi below ours).
    && python -m venv /opt/orchestrate \
    && python /build/pins.py /build/pyproject.toml prefect mlflow-skinny boto3 \
        > /build/orchestrate.txt \
    && /opt/orchestrate/bin/pip install --no-cache-dir -r /build/orchestrate.txt \
    && useradd --create-home --uid 10001 florisense \
    && mkdir -p /home/florisense/.cache && chown florisense /home/florisense/.cache
WORKDIR /app
COPY pyproject.toml MLproject conda.yaml ./
COPY florisense_model ./florisense_model
COPY scripts ./scripts
# `florisense` as `make setup` installs it (the console script of pyproject.toml), without a
# second copy of the package: PYTHONPATH=/app is the package.
RUN printf '#!/bin/sh\nexec python -m florisense_model.cli.main "$@"\n' >/usr/local/bin/florisense \
    && chmod 755 /usr/local/bin/florisense
USER florisense
# /opt/orchestrate/bin last: `prefect` resolves there, `python` and `mlflow` to the project's,
# where the flows train (FLORISENSE_TRAIN_BIN).
# GIT_PYTHON_REFRESH: no git here, and MLflow need not say so 50 lines a training.
ENV PATH=$PATH:/opt/orchestrate/bin \
    FLORISENSE_TRAIN_BIN=/usr/local/bin \
    GIT_PYTHON_REFRESH=quiet \
    PYTHONPATH=/app \
    MLFLOW_DISABLE_TELEMETRY=true \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
