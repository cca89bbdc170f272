# The project image: the trainer (`mlflow run . --env-manager local`) and the model server
# (`mlflow models serve`), with exactly the pinned dependencies of pyproject.toml.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY florisense_model ./florisense_model
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 florisense
COPY MLproject conda.yaml ./
COPY scripts ./scripts
USER florisense
ENV MLFLOW_DISABLE_TELEMETRY=true \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1
