"""Where the stack listens and keeps its files: read from the environment (.env), with defaults."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# The interpreter's bin folder: mlflow, rclone and python of the same environment.
BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]
# The registered model's own environment (`make serving-env`: no TensorFlow), where versions with
# a compiled graph are served, as in the model-server image. FLORISENSE_SERVING_ENV moves it.
SERVING_ENV = Path(os.environ.get("FLORISENSE_SERVING_ENV") or PROJECT / ".venv-serve")
# Prefect's own environment (`make orchestration-env`): it pins FastAPI below the project's.
ORCHESTRATION_ENV = Path(
    os.environ.get("FLORISENSE_ORCHESTRATION_ENV") or PROJECT / ".venv-orchestrate"
)
ARTIFACT_BUCKET = "mlflow-artifacts"
# The labelled photos (labelled/<class>/<sha256>.<ext>), beside the artifacts: pipeline/store.py.
DATA_BUCKET = "florisense-data"
LABELLED_PREFIX = "labelled/"
DATA_URI = f"s3://{DATA_BUCKET}/{LABELLED_PREFIX}"


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path
    mlflow_port: int = 5050
    model_port: int = 5001
    web_port: int = 8080
    s3_port: int = 9000
    # The follower's second model-server slot (blue/green), and how often it polls the registry.
    model_alt_port: int = 0
    follow_interval_s: float = 10.0
    # Compose: the model server's slots listen on every interface of their container, reach the
    # tracking server by its service name, and log to the container's output.
    model_host: str = "127.0.0.1"
    tracking_server: str = ""  # default: the stack's own, http://127.0.0.1:<mlflow_port>
    console_logs: bool = False
    # Monitoring: Prometheus, nginx's own gauges, mtail (nginx's request metrics), the S3
    # server's metrics, each model-server slot's own metrics port (slot b: the alt port, default
    # slot a's + 1), how often Prometheus scrapes, and the host name Prometheus reaches the slots
    # by (compose: the model-server container's).
    prometheus_port: int = 9090
    nginx_metrics_port: int = 9113
    mtail_port: int = 3903
    s3_metrics_port: int = 9091
    model_metrics_port: int = 9101
    model_alt_metrics_port: int = 0
    scrape_interval_s: float = 15.0
    metrics_target_host: str = "127.0.0.1"
    # The retraining loop (pipeline/): Prefect's server and UI, Alertmanager, the receiver that
    # turns its drift alerts into Prefect events, and the health page of the process that serves
    # the flows (it answers once the deployments are registered).
    prefect_port: int = 4200
    alertmanager_port: int = 9093
    alert_receiver_port: int = 9095
    flows_port: int = 4201

    def slot_port(self, slot: str) -> int:
        return _slot_port(slot, self.model_port, self.model_alt_port)

    def slot_metrics_port(self, slot: str) -> int:
        return _slot_port(slot, self.model_metrics_port, self.model_alt_metrics_port)

    @classmethod
    def on_free_ports(cls, run_dir: Path, **settings: Any) -> StackConfig:
        """A stack under `run_dir` with every service on a port free now (test stacks and
        benchmarks, beside a developer's own stack on the default ports)."""
        ports = {f.name: free_port() for f in fields(cls) if f.name.endswith("_port")}
        return cls(run_dir=run_dir, **(ports | settings))

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            run_dir=Path(os.environ.get("FLORISENSE_RUN_DIR", PROJECT / "run")).resolve(),
            mlflow_port=int(os.environ.get("FLORISENSE_MLFLOW_PORT", "5050")),
            model_port=int(os.environ.get("FLORISENSE_MODEL_PORT", "5001")),
            web_port=int(os.environ.get("FLORISENSE_WEB_PORT", "8080")),
            s3_port=int(os.environ.get("FLORISENSE_S3_PORT", "9000")),
            model_alt_port=int(os.environ.get("FLORISENSE_MODEL_ALT_PORT", "0")),
            follow_interval_s=float(os.environ.get("FLORISENSE_FOLLOW_INTERVAL", "10")),
            model_host=os.environ.get("FLORISENSE_MODEL_HOST", "127.0.0.1"),
            tracking_server=os.environ.get("FLORISENSE_TRACKING_URI", ""),
            console_logs=os.environ.get("FLORISENSE_CONSOLE_LOGS", "").lower() == "true",
            prometheus_port=int(os.environ.get("FLORISENSE_PROMETHEUS_PORT", "9090")),
            nginx_metrics_port=int(os.environ.get("FLORISENSE_NGINX_METRICS_PORT", "9113")),
            mtail_port=int(os.environ.get("FLORISENSE_MTAIL_PORT", "3903")),
            s3_metrics_port=int(os.environ.get("FLORISENSE_S3_METRICS_PORT", "9091")),
            model_metrics_port=int(os.environ.get("FLORISENSE_MODEL_METRICS_PORT", "9101")),
            model_alt_metrics_port=int(os.environ.get("FLORISENSE_MODEL_ALT_METRICS_PORT", "0")),
            scrape_interval_s=float(os.environ.get("FLORISENSE_SCRAPE_INTERVAL", "15")),
            metrics_target_host=os.environ.get("FLORISENSE_METRICS_TARGET_HOST", "127.0.0.1"),
            prefect_port=int(os.environ.get("FLORISENSE_PREFECT_PORT", "4200")),
            alertmanager_port=int(os.environ.get("FLORISENSE_ALERTMANAGER_PORT", "9093")),
            alert_receiver_port=int(os.environ.get("FLORISENSE_ALERT_RECEIVER_PORT", "9095")),
            flows_port=int(os.environ.get("FLORISENSE_FLOWS_PORT", "4201")),
        )

    def as_env(self) -> dict[str, str]:
        """The environment from which `from_env` rebuilds this configuration (child processes)."""
        return {
            "FLORISENSE_RUN_DIR": str(self.run_dir),
            "FLORISENSE_MLFLOW_PORT": str(self.mlflow_port),
            "FLORISENSE_MODEL_PORT": str(self.model_port),
            "FLORISENSE_WEB_PORT": str(self.web_port),
            "FLORISENSE_S3_PORT": str(self.s3_port),
            "FLORISENSE_MODEL_ALT_PORT": str(self.slot_port("b")),
            "FLORISENSE_FOLLOW_INTERVAL": str(self.follow_interval_s),
            "FLORISENSE_MODEL_HOST": self.model_host,
            "FLORISENSE_TRACKING_URI": self.tracking_server,
            "FLORISENSE_CONSOLE_LOGS": str(self.console_logs).lower(),
            "FLORISENSE_PROMETHEUS_PORT": str(self.prometheus_port),
            "FLORISENSE_NGINX_METRICS_PORT": str(self.nginx_metrics_port),
            "FLORISENSE_MTAIL_PORT": str(self.mtail_port),
            "FLORISENSE_S3_METRICS_PORT": str(self.s3_metrics_port),
            "FLORISENSE_MODEL_METRICS_PORT": str(self.model_metrics_port),
            "FLORISENSE_MODEL_ALT_METRICS_PORT": str(self.slot_metrics_port("b")),
            "FLORISENSE_SCRAPE_INTERVAL": f"{self.scrape_interval_s:g}",
            "FLORISENSE_METRICS_TARGET_HOST": self.metrics_target_host,
            "FLORISENSE_PREFECT_PORT": str(self.prefect_port),
            "FLORISENSE_ALERTMANAGER_PORT": str(self.alertmanager_port),
            "FLORISENSE_ALERT_RECEIVER_PORT": str(self.alert_receiver_port),
            "FLORISENSE_FLOWS_PORT": str(self.flows_port),
        }

    @property
    def tracking_uri(self) -> str:
        return self.tracking_server or f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


def _slot_port(slot: str, port_a: int, port_b: int) -> int:
    """Slot a's port, or slot b's: its own if set, else slot a's + 1."""
    return port_a if slot == "a" else port_b or port_a + 1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (test stacks, benchmark servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
