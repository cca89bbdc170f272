# The model server: the follower and its `mlflow models serve` slots. No TensorFlow: registered
# versions serve their compiled ONNX graph (README, "Serving runtime"), so this image holds only
# the model's own requirements (mlflow-skinny, onnxruntime, pillow, numpy, pandas,
# prometheus-client) and psutil. /var/lib/florisense/prometheus: the slots Prometheus scrapes.
FROM python:3.11-slim-bookworm
COPY pyproject.toml florisense_model/pins.py /build/
RUN python /build/pins.py /build/pyproject.toml --serving psutil > /build/requirements.txt \
    && pip install --no-cache-dir -r /build/requirements.txt \
    && useradd --create-home --uid 10001 florisense \
    && mkdir -p /var/lib/florisense/prometheus && chown -R florisense /var/lib/florisense
WORKDIR /app
COPY florisense_model ./florisense_model
USER florisense
ENV PYTHONPATH=/app \
    MLFLOW_DISABLE_TELEMETRY=true \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
