# The MLflow tracking server: pinned mlflow, boto3 for the S3 artifact store, the PostgreSQL driver,
# Flask-WTF for MLflow's optional basic-auth app (README, "Security").
FROM python:3.11-slim-bookworm
COPY pyproject.toml docker/pins.py /build/
RUN python /build/pins.py /build/pyproject.toml mlflow boto3 psycopg2-binary flask-wtf > /build/requirements.txt \
    && pip install --no-cache-dir -r /build/requirements.txt \
    && useradd --create-home --uid 10001 mlflow
USER mlflow
ENV MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
EXPOSE 5050
