"""Start, stop, restart and show the no-Docker stack (`make up`, `make down`, `make status`):
services in order, each health-checked, the model server only once a Production model exists."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from florisense_model import registry
from florisense_model.cli import first_line
from florisense_model.config import REGISTERED_MODEL_NAME
from florisense_model.stack import monitoring, nginx, services, supervisor
from florisense_model.stack.s3 import ensure_bucket
from florisense_model.stack.settings import DATA_BUCKET, StackConfig
from florisense_model.stack.slots import active_slot, set_active_slot

SERVICE_NAMES = ("s3", "mlflow", "model-server", "nginx", "mtail", "prometheus", "follower")
NO_MODEL_MESSAGE = (
    f"no Production version of '{REGISTERED_MODEL_NAME}' in the registry yet. Train one: "
    "FLORISENSE_DATA_DIR=/path/to/photos make train (or make demo), then make up again"
)


def require_production_version(config: StackConfig) -> str:
    """The Production version number, or a RuntimeError that says what to do."""
    try:
        version = registry.production_version(config.tracking_uri)
    except OSError as exc:
        raise RuntimeError(
            f"the MLflow tracking server at {config.tracking_uri} is not answering: start it "
            "with `make up` (or python -m scripts.stack up --only mlflow)"
        ) from exc
    except Exception as exc:
        raise RuntimeError(
            f"cannot ask the registry at {config.tracking_uri} for a Production model: "
            f"{first_line(exc)}"
        ) from exc
    if version is None:
        raise RuntimeError(NO_MODEL_MESSAGE)
    return version


def up(config: StackConfig, only: set[str] | None = None) -> Iterator[str]:
    """Start the services in order, reporting each as it comes up; the model server only once
    a Production model exists (RuntimeError otherwise, with what is already up left running)."""
    if only and "model-server" in only:
        only = only | {"follower"}  # the follower moves model servers: it comes with them
    (config.run_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    for service in services.all_services(config):
        if (only and service.name not in only) or service.name == "model-server-b":
            continue
        if service.name == "model-server":
            yield from _start_model_server(config)
            continue
        if service.name == "nginx":
            nginx.write_config(config)
        yield supervisor.start(service)
        if service.name == "s3":
            yield ensure_bucket(config)
            yield ensure_bucket(config, DATA_BUCKET)


def _start_model_server(config: StackConfig) -> Iterator[str]:
    """Keep the active slot if it runs; else serve Production in slot a and record its version."""
    slot = str(active_slot(config)["slot"])
    current = services.model_server(config, slot)
    if supervisor.running_pid(current) is not None and supervisor.is_healthy(current):
        monitoring.publish_model_targets(config, [slot])
        yield f"{current.name}: already running ({current.health_url})"
        return
    version = require_production_version(config)
    yield supervisor.start(services.model_server(config, "a"))
    set_active_slot(config, "a", version)
    monitoring.publish_model_targets(config, ["a"])
    if supervisor.is_healthy(services.nginx_server(config)):
        nginx.reload(config)  # it may still point at the other slot (graceful: drops nothing)


def down(config: StackConfig) -> list[str]:
    return [supervisor.stop(service) for service in reversed(services.all_services(config))]


def restart(config: StackConfig, only: set[str] | None = None) -> Iterator[str]:
    """Stop, then start again, every service (or those in `only`)."""
    only = set(only or ())
    if "model-server" in only:
        only.add("follower")  # the follower moves model servers too: not while they restart
    if "model-server" in only or not only:
        monitoring.publish_model_targets(config, [])  # a planned stop is not a target down
    for service in reversed(services.all_services(config)):  # the follower first
        # Restarting the model server restarts whichever slot serves.
        name = service.name.replace("model-server-b", "model-server")
        if not only or name in only:
            yield supervisor.stop(service)
    if not only or "model-server" in only:
        set_active_slot(config, "a", None)
    yield from up(config, only)


def status(config: StackConfig) -> list[str]:
    return [
        f"{service.name}: pid {supervisor.running_pid(service)}, "
        f"{'healthy' if supervisor.is_healthy(service) else 'down'}"
        for service in services.all_services(config)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "restart"])
    parser.add_argument(
        "--only",
        action="append",
        choices=SERVICE_NAMES,
        help="limit `up` or `restart` to these services (repeatable)",
    )
    args = parser.parse_args(argv)
    config = StackConfig.from_env()
    only = set(args.only or [])
    try:
        if args.action in ("up", "restart"):
            steps = up(config, only) if args.action == "up" else restart(config, only)
            for message in steps:
                print(message, flush=True)
            print(
                f"MLflow UI: {config.tracking_uri}   web page: {config.web_url}   "
                f"logs: {config.run_dir / 'logs'}\n"
                f"Prometheus: {config.prometheus_url}   graphs: "
                f"{config.prometheus_url}/consoles/florisense.html   alerts: "
                f"{config.prometheus_url}/alerts"
            )
        else:
            print("\n".join(down(config) if args.action == "down" else status(config)))
    except RuntimeError as exc:
        print(f"florisense: error: {exc}", file=sys.stderr)
        return 1
    return 0
