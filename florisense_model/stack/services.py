"""The services of the no-Docker stack, each a command line with its health check, in start
order: the S3 server, the MLflow tracking server, the model server (two slots), nginx, mtail,
Alertmanager and Prometheus (monitoring.py), Prefect's server, the alert receiver and the flows
(orchestration.py), the follower. `lifecycle` starts and stops them."""

from __future__ import annotations

import shutil
import sys
from functools import partial
from pathlib import Path

from florisense_model.stack import monitoring, nginx
from florisense_model.stack.auth import auth_environment
from florisense_model.stack.credentials import s3_credentials
from florisense_model.stack.settings import ARTIFACT_BUCKET, BIN, PROJECT, StackConfig
from florisense_model.stack.supervisor import Service


def s3_server(config: StackConfig) -> Service:
    """A real S3 API on 127.0.0.1 (`rclone serve s3`); buckets are folders under run/s3."""
    key, secret = s3_credentials(config)
    return Service(
        name="s3",
        command=[
            str(BIN / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{config.s3_port}",
            "--auth-key",
            f"{key},{secret}",
            # Its Prometheus metrics (transfers, errors) on a port of their own.
            "--metrics-addr",
            f"127.0.0.1:{config.s3_metrics_port}",
            str(config.run_dir / "s3"),
        ],
        health_url=f"{config.s3_url}/",
        run_dir=config.run_dir,
        start_timeout_s=20.0,
        any_status_is_healthy=True,
        keeps_secrets=True,
    )


def tracking_server_command(
    port: int,
    backend_store_uri: str,
    artifacts_destination: str,
    basic_auth: bool = False,
    metrics_dir: Path | None = None,
) -> list[str]:
    """`mlflow server` on 127.0.0.1, proxying artifacts: the one place its command line is built
    (the stack, and the tests' own tracking servers). With `metrics_dir`, it serves Prometheus
    metrics on /metrics (prometheus-flask-exporter, which keeps its counters in that folder)."""
    return [
        str(BIN / "mlflow"),
        "server",
        *(["--app-name", "basic-auth"] if basic_auth else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        # 1 worker (and no job runner, see TRACKING_SERVER_ENV): 400 MB and 6 s instead of
        # 2.4 GB and 18 s on 2 cores.
        "--workers",
        "1",
        *(["--expose-prometheus", str(metrics_dir)] if metrics_dir else []),
    ]


TRACKING_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# MLflow 3.17's tracking server offers presigned S3 URLs for downloads (an S3 store advertises
# it): clients would then fetch artifacts from S3 themselves. Through the proxy, only the
# tracking server talks to S3, as the design says.
PROXIED_ARTIFACTS_ENV = {"MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}


def tracking_server(config: StackConfig) -> Service:
    """MLflow tracking server: SQL backend store; artifacts in S3, proxied by the server itself
    so that clients and the model server need no S3 credentials."""
    key, secret = s3_credentials(config)
    auth = auth_environment(config)
    database = config.run_dir / "mlflow" / "mlflow.db"
    metrics_dir = config.run_dir / "mlflow" / "metrics"
    return Service(
        name="mlflow",
        command=tracking_server_command(
            config.mlflow_port,
            f"sqlite:///{database}",
            f"s3://{ARTIFACT_BUCKET}",
            bool(auth),
            metrics_dir,
        ),
        # Counter files of an earlier server would be added to this one's forever.
        prepare=partial(shutil.rmtree, metrics_dir, ignore_errors=True),
        health_url=f"{config.tracking_uri}/health",
        run_dir=config.run_dir,
        env=TRACKING_SERVER_ENV
        | {
            "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            **auth,
        },
        keeps_secrets=True,
    )


def model_server(config: StackConfig, slot: str = "a", version: str | None = None) -> Service:
    """`mlflow models serve` in slot "a" or "b", loaded via the tracking server: the Production
    stage, or an exact version (what the follower starts, so it serves what it checked)."""
    port = config.slot_port(slot)
    # Waits (with backoff, saying why) until the model can load, then execs
    # `mlflow models serve`, so the pid file names the server itself.
    command = [sys.executable, "-m", "florisense_model.stack.serve"]
    command += ["--host", config.model_host, "--port", str(port)]
    return Service(
        name="model-server" if slot == "a" else "model-server-b",
        command=command + (["--version", version] if version else []),
        health_url=f"http://127.0.0.1:{port}/ping",
        run_dir=config.run_dir,
        env=PROXIED_ARTIFACTS_ENV
        | {
            "MLFLOW_TRACKING_URI": config.tracking_uri,
            "PYTHONPATH": str(PROJECT),
            # The model's own metrics (model/metrics.py), one port per slot.
            "FLORISENSE_METRICS_PORT": str(config.slot_metrics_port(slot)),
            "FLORISENSE_METRICS_HOST": config.model_host,
        },
        start_timeout_s=180.0,
        console_log=config.console_logs,
    )


def nginx_server(config: StackConfig) -> Service:
    return Service(
        name="nginx",
        command=nginx.command(config),
        health_url=f"{config.web_url}/",
        run_dir=config.run_dir,
        start_timeout_s=20.0,
    )


def follower(config: StackConfig) -> Service:
    """Watches the registry and moves the served model to each new Production version."""
    return Service(
        name="follower",
        command=[sys.executable, "-m", "florisense_model.stack.follower"],
        health_url=None,
        run_dir=config.run_dir,
        env=PROXIED_ARTIFACTS_ENV | config.as_env() | {"PYTHONPATH": str(PROJECT)},
        start_timeout_s=5.0,
    )


def all_services(config: StackConfig) -> list[Service]:
    """In start order; `down` stops them in reverse. Slot b is started only by the follower."""
    from florisense_model.stack import orchestration  # it builds on this module's settings

    return [
        s3_server(config),
        tracking_server(config),
        model_server(config, "a"),
        model_server(config, "b"),
        nginx_server(config),
        monitoring.mtail_server(config),
        orchestration.alertmanager(config),
        monitoring.prometheus_server(config),
        orchestration.prefect_server(config),
        orchestration.alert_receiver(config),
        orchestration.flows_server(config),
        follower(config),
    ]
