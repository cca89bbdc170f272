# The project image: the trainer (`mlflow run . --env-manager local`) and the model server (the
# follower with its `mlflow models serve` slots), with exactly the pins of pyproject.toml.
FROM python:3.11-slim-bookworm
# The dependencies first, from the pins alone: a code change does not reinstall them.
COPY pyproject.toml florisense_model/pins.py /build/
RUN python /build/pins.py /build/pyproject.toml > /build/requirements.txt \
    && pip install --no-cache-dir -r /build/requirements.txt \
    && useradd --create-home --uid 10001 florisense \
    && mkdir -p /home/florisense/.cache && chown florisense /home/florisense/.cache
WORKDIR /app
COPY pyproject.toml MLproject conda.yaml ./
COPY florisense_model ./florisense_model
COPY scripts ./scripts
USER florisense
ENV PYTHONPATH=/app \
    MLFLOW_DISABLE_TELEMETRY=true \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
