"""Monitoring for both stacks: the Prometheus configuration (one function writes it: for `make up`,
and the copy compose mounts, which a test keeps equal), the file that tells Prometheus which
model-server slots to scrape (kept by whoever starts and stops slots), and the two services the
no-Docker stack adds: mtail (nginx's request metrics) and Prometheus (Debian packages)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from florisense_model.stack.files import write_atomically
from florisense_model.stack.settings import PROJECT, StackConfig
from florisense_model.stack.supervisor import Service, require_tool

MONITORING = PROJECT / "deploy" / "monitoring"
ALERT_RULES = MONITORING / "prometheus" / "alerts.yml"
COMPOSE_CONFIG = MONITORING / "prometheus" / "prometheus.compose.yml"
MTAIL_PROGRAMS = MONITORING / "mtail"
CONSOLES = MONITORING / "consoles"
# Debian's prometheus package ships the console libraries our page (consoles/) builds on.
CONSOLE_LIBRARIES = Path("/usr/share/doc/prometheus/examples/console_libraries")


@dataclass(frozen=True)
class Targets:
    """Where Prometheus finds each part of one stack."""

    prometheus: str
    nginx: str  # nginx's own /metrics (its connections): is nginx up
    nginx_log: str  # mtail, which reads nginx's metrics log: requests by route and status
    mlflow: str
    s3: str
    s3_metrics_path: str
    model_targets_file: str  # the slots that run, kept up to date (publish_model_targets)
    rule_files: tuple[str, ...]
    # The tracking server's /metrics sits behind its login when that is on: an admin's.
    mlflow_user: str
    mlflow_password_file: str
    # Where alerts go (host:port); none: Prometheus only shows them on its /alerts page.
    alertmanager: str = ""


# Compose: service names on the compose network, files mounted into the Prometheus container.
COMPOSE_TARGETS = Targets(
    prometheus="localhost:9090",
    nginx="web:9113",
    nginx_log="mtail:3903",
    mlflow="mlflow:5050",
    s3="minio:9000",
    s3_metrics_path="/minio/v2/metrics/cluster",
    model_targets_file="/etc/prometheus/targets/model-server.json",
    rule_files=("/etc/prometheus/alerts.yml",),
    mlflow_user="admin",  # docker/basic_auth.ini
    mlflow_password_file="/tmp/mlflow-password",  # written from the environment at start
    alertmanager="alertmanager:9093",
)


def prometheus_config(targets: Targets, scrape_interval_s: float) -> dict:
    """Every part of the stack as a scrape target; the alert rules of deploy/monitoring."""
    interval = f"{scrape_interval_s:g}s"

    def job(name: str, target: str, **extra: object) -> dict:
        return {"job_name": name, "static_configs": [{"targets": [target]}], **extra}

    alerting = (
        {"alerting": {"alertmanagers": [{"static_configs": [{"targets": [targets.alertmanager]}]}]}}
        if targets.alertmanager
        else {}
    )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        **alerting,
        "rule_files": list(targets.rule_files),
        "scrape_configs": [
            job("prometheus", targets.prometheus),
            job("nginx", targets.nginx),
            job("nginx-log", targets.nginx_log),  # mtail: requests by route and status, latency
            {"job_name": "model", "file_sd_configs": [{"files": [targets.model_targets_file]}]},
            job(
                "mlflow",
                targets.mlflow,  # `mlflow server --expose-prometheus`
                basic_auth={
                    "username": targets.mlflow_user,
                    "password_file": targets.mlflow_password_file,
                },
            ),
            job("s3", targets.s3, metrics_path=targets.s3_metrics_path),
        ],
    }


def render(targets: Targets, scrape_interval_s: float) -> str:
    header = (
        "# Written by florisense_model/stack/monitoring.py (prometheus_config): edit it there.\n"
    )
    return header + yaml.safe_dump(prometheus_config(targets, scrape_interval_s), sort_keys=False)


def prometheus_dir(config: StackConfig) -> Path:
    return config.run_dir / "prometheus"


def model_targets_file(config: StackConfig) -> Path:
    return prometheus_dir(config) / "model-server.json"


def local_targets(config: StackConfig) -> Targets:
    return Targets(
        prometheus=f"127.0.0.1:{config.prometheus_port}",
        nginx=f"127.0.0.1:{config.nginx_metrics_port}",
        nginx_log=f"127.0.0.1:{config.mtail_port}",
        mlflow=f"127.0.0.1:{config.mlflow_port}",
        s3=f"127.0.0.1:{config.s3_metrics_port}",
        s3_metrics_path="/metrics",
        model_targets_file=str(model_targets_file(config)),
        rule_files=(str(ALERT_RULES),),
        mlflow_user=os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),  # as auth.py
        mlflow_password_file=str(prometheus_dir(config) / "mlflow-password"),
        alertmanager=f"127.0.0.1:{config.alertmanager_port}",
    )


def write_prometheus_config(config: StackConfig) -> Path:
    """The no-Docker stack's configuration, the admin password file (0600; empty when MLflow's
    login is off), and an empty slot list until a model server runs."""
    folder = prometheus_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    targets = local_targets(config)
    password = Path(targets.mlflow_password_file)
    password.touch(mode=0o600)
    password.write_text(os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", ""))
    if not model_targets_file(config).exists():
        publish_model_targets(config, [])
    target = folder / "prometheus.yml"
    target.write_text(render(targets, config.scrape_interval_s))
    return target


def publish_model_targets(config: StackConfig, slots: list[str]) -> None:
    """Tell Prometheus which model-server slots run (file_sd: it rereads the file by itself).
    During a switch both are listed; a slot leaves the list before it stops, so a planned stop
    is never a target down."""
    entries = [
        {
            "targets": [f"{config.metrics_target_host}:{config.slot_metrics_port(slot)}"],
            "labels": {"slot": slot},
        }
        for slot in slots
    ]
    target = model_targets_file(config)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, json.dumps(entries))
    except OSError as exc:  # monitoring must never stop serving or a switch
        print(f"florisense: Prometheus's model targets not updated: {exc}", file=sys.stderr)


def nginx_metrics_log(config: StackConfig) -> Path:
    return config.run_dir / "logs" / "nginx-metrics.log"


def mtail_server(config: StackConfig) -> Service:
    """mtail over nginx's metrics log: exact request counts by route and status."""
    log = nginx_metrics_log(config)
    return Service(
        name="mtail",
        command=[
            shutil.which("mtail") or "mtail",
            "-progs",
            str(MTAIL_PROGRAMS),
            "-logs",
            str(log),
            "-address",
            "127.0.0.1",
            "-port",
            str(config.mtail_port),
            "-emit_prog_label=false",
            "-logtostderr",
        ],
        health_url=f"http://127.0.0.1:{config.mtail_port}/metrics",
        run_dir=config.run_dir,
        start_timeout_s=20.0,
        prepare=partial(_prepare_mtail, log),
    )


def _prepare_mtail(log: Path) -> None:
    require_tool("mtail")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()  # mtail follows only the files that exist when it starts


def prometheus_server(config: StackConfig) -> Service:
    folder = prometheus_dir(config)
    return Service(
        name="prometheus",
        command=[
            shutil.which("prometheus") or "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{config.prometheus_port}",
            f"--web.console.templates={CONSOLES}",
            f"--web.console.libraries={CONSOLE_LIBRARIES}",
        ],
        health_url=f"{config.prometheus_url}/-/ready",
        run_dir=config.run_dir,
        start_timeout_s=30.0,
        prepare=partial(_prepare_prometheus, config),
    )


def _prepare_prometheus(config: StackConfig) -> None:
    require_tool("prometheus")
    write_prometheus_config(config)


if __name__ == "__main__":
    # `python -m florisense_model.stack.monitoring`: rewrite compose's copies after a change
    # here or in orchestration.alertmanager_config.
    from florisense_model.stack import orchestration

    COMPOSE_CONFIG.write_text(render(COMPOSE_TARGETS, 15.0))
    alertmanager = orchestration.COMPOSE_ALERTMANAGER_CONFIG
    alertmanager.parent.mkdir(parents=True, exist_ok=True)
    alertmanager.write_text(
        orchestration.render_alertmanager_config(orchestration.COMPOSE_RECEIVER_URL)
    )
    for path in (COMPOSE_CONFIG, alertmanager):
        print(f"wrote {path.relative_to(PROJECT)}")
