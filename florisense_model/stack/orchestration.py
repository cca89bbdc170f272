"""The retraining loop's services in the no-Docker stack: Prefect's server (SQLite under
run/prefect), the process that serves the flows' deployments, Alertmanager (Debian's), and the
receiver that turns drift alerts into Prefect events. Prefect runs from .venv-orchestrate."""

from __future__ import annotations

import os
import secrets
import shutil
from functools import partial
from pathlib import Path

import yaml

from florisense_model.pipeline.alert_receiver import DRIFT_ALERTS, PATH
from florisense_model.stack.credentials import stored_secret
from florisense_model.stack.services import PROXIED_ARTIFACTS_ENV
from florisense_model.stack.settings import ORCHESTRATION_ENV, PROJECT, StackConfig
from florisense_model.stack.supervisor import Service, require_tool

PREFECT_USER = "florisense"
# Compose's copy of Alertmanager's configuration (python -m florisense_model.stack.monitoring
# writes it; a test keeps it equal to what alertmanager_config gives).
COMPOSE_ALERTMANAGER_CONFIG = (
    PROJECT / "deploy" / "monitoring" / "alertmanager" / "alertmanager.compose.yml"
)
COMPOSE_RECEIVER_URL = f"http://alert-receiver:{StackConfig.alert_receiver_port}{PATH}"
# How long Alertmanager gathers alerts of a group before it notifies (tests: a second).
ENV_GROUP_WAIT = "FLORISENSE_ALERT_GROUP_WAIT"
DEFAULT_GROUP_WAIT = "30s"


def prefect_auth(config: StackConfig) -> str:
    """user:password of Prefect's API, made once under run/secrets (0600), or from .env."""
    given = os.environ.get("PREFECT_API_AUTH_STRING", "").strip()
    return given or stored_secret(
        config, "prefect-auth", lambda: f"{PREFECT_USER}:{secrets.token_urlsafe(24)}"
    )


def prefect_client_env(config: StackConfig) -> dict[str, str]:
    """What a Prefect client needs: the API (always set, else Prefect runs flows against a
    hidden temporary server) and its login."""
    return {
        "PREFECT_API_URL": config.prefect_api_url,
        "PREFECT_API_AUTH_STRING": prefect_auth(config),
        "PREFECT_HOME": str(config.run_dir / "prefect"),
        # Offline: no analytics, and the V1 UI (the V2 UI calls an analytics site).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_V2_ENABLED": "false",
    }


def _require_orchestration_env() -> None:
    if not (ORCHESTRATION_ENV / "bin" / "prefect").is_file():
        raise RuntimeError(
            f"Prefect is not installed in {ORCHESTRATION_ENV}: run `make orchestration-env`"
        )


def prefect_server(config: StackConfig) -> Service:
    env = prefect_client_env(config)
    return Service(
        name="prefect",
        command=[
            str(ORCHESTRATION_ENV / "bin" / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(config.prefect_port),
        ],
        health_url=f"{config.prefect_api_url}/health",
        run_dir=config.run_dir,
        env=env | {"PREFECT_SERVER_API_AUTH_STRING": env["PREFECT_API_AUTH_STRING"]},
        start_timeout_s=90.0,
        prepare=_require_orchestration_env,
    )


def _pipeline_module(
    config: StackConfig, name: str, module: str, *args: str, **service: object
) -> Service:
    """`python -m florisense_model.pipeline.<module>` in Prefect's environment, the package
    from the source tree, as a Prefect client."""
    return Service(
        name=name,
        command=[
            str(ORCHESTRATION_ENV / "bin" / "python"),
            "-m",
            f"florisense_model.pipeline.{module}",
            *args,
        ],
        run_dir=config.run_dir,
        env=prefect_client_env(config) | {"PYTHONPATH": str(PROJECT)} | service.pop("env", {}),
        prepare=_require_orchestration_env,
        **service,
    )


def runner_health_env(port: int) -> dict[str, str]:
    """serve()'s own health page (off by default): it answers once the deployments are
    registered, and fails once the runner misses its polls."""
    return {
        "PREFECT_RUNNER_SERVER_ENABLE": "true",
        "PREFECT_RUNNER_SERVER_HOST": "127.0.0.1",
        "PREFECT_RUNNER_SERVER_PORT": str(port),
    }


def flows_server(config: StackConfig) -> Service:
    """`serve()` of retrain/florisense and watch-photos/florisense: runs the flows."""
    return _pipeline_module(
        config,
        "flows",
        "deployments",
        health_url=f"http://127.0.0.1:{config.flows_port}/health",
        env=PROXIED_ARTIFACTS_ENV
        | config.as_env()
        | {"MLFLOW_TRACKING_URI": config.tracking_uri}
        | runner_health_env(config.flows_port),
        start_timeout_s=90.0,
    )


def alert_receiver(config: StackConfig) -> Service:
    return _pipeline_module(
        config,
        "alert-receiver",
        "alert_receiver",
        "--port",
        str(config.alert_receiver_port),
        health_url=f"http://127.0.0.1:{config.alert_receiver_port}/healthz",
        start_timeout_s=20.0,
    )


def alertmanager_config(receiver_url: str, group_wait: str = DEFAULT_GROUP_WAIT) -> dict:
    """Drift alerts to the receiver (they start a retraining); every other alert only on
    Alertmanager's own page."""
    return {
        "route": {
            "receiver": "page",
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                {
                    "receiver": "retrain",
                    "matchers": [f'alertname=~"{"|".join(sorted(DRIFT_ALERTS))}"'],
                }
            ],
        },
        "receivers": [
            {"name": "page"},
            {
                "name": "retrain",
                "webhook_configs": [{"url": receiver_url, "send_resolved": False}],
            },
        ],
    }


def render_alertmanager_config(receiver_url: str, group_wait: str = DEFAULT_GROUP_WAIT) -> str:
    return yaml.safe_dump(alertmanager_config(receiver_url, group_wait), sort_keys=False)


def alertmanager_dir(config: StackConfig) -> Path:
    return config.run_dir / "alertmanager"


def _prepare_alertmanager(config: StackConfig) -> None:
    require_tool("prometheus-alertmanager")
    folder = alertmanager_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    receiver = f"http://127.0.0.1:{config.alert_receiver_port}{PATH}"
    group_wait = os.environ.get(ENV_GROUP_WAIT, DEFAULT_GROUP_WAIT)
    (folder / "alertmanager.yml").write_text(render_alertmanager_config(receiver, group_wait))


def alertmanager(config: StackConfig) -> Service:
    folder = alertmanager_dir(config)
    return Service(
        name="alertmanager",
        command=[
            shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{config.alertmanager_port}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
        health_url=f"{config.alertmanager_url}/-/ready",
        run_dir=config.run_dir,
        start_timeout_s=30.0,
        prepare=partial(_prepare_alertmanager, config),
    )
