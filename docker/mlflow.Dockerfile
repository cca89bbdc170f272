# The MLflow tracking server: pinned mlflow, boto3 for the S3 artifact store, the PostgreSQL driver,
# Flask-WTF for MLflow's optional basic-auth app (README, "Security").
FROM python:3.11-slim-bookworm
COPY pyproject.toml florisense_model/pins.py /build/
RUN python /build/pins.py /build/pyproject.toml mlflow boto3 psycopg2-binary flask-wtf \
        prometheus-flask-exporter \
        > /build/requirements.txt \
    && pip install --no-cache-dir -r /build/requirements.txt \
    && useradd --create-home --uid 10001 mlflow \
    && mkdir -p /var/lib/mlflow-auth && chown mlflow /var/lib/mlflow-auth
# MLflow's login keeps its users in the mlflow-auth volume (used only with --app-name basic-auth).
COPY docker/basic_auth.ini /etc/mlflow/basic_auth.ini
USER mlflow
ENV MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini
EXPOSE 5050
