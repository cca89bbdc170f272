"""The FloriSense stack on one machine, without Docker: services as plain processes, with their
logs and pid files under one run directory, health-checked at start, stopped exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

RUN_DIR = Path(os.environ.get("FLORISENSE_RUN_DIR", "run")).resolve()
BIN = Path(sys.executable).parent
MLFLOW_PORT = int(os.environ.get("FLORISENSE_MLFLOW_PORT", "5050"))


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 90.0

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / "logs" / f"{self.name}.log"


def tracking_server() -> Service:
    """MLflow tracking server: SQL backend store, artifacts proxied by the server itself."""
    data = RUN_DIR / "mlflow"
    data.mkdir(parents=True, exist_ok=True)
    return Service(
        name="mlflow",
        command=[
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(MLFLOW_PORT),
            "--backend-store-uri",
            f"sqlite:///{data / 'mlflow.db'}",
            "--artifacts-destination",
            str(data / "artifacts"),
            "--serve-artifacts",
            # 1 worker and no job runner: 400 MB and 6 s instead of 2.4 GB and 18 s on 2 cores.
            "--workers",
            "1",
        ],
        health_url=f"http://127.0.0.1:{MLFLOW_PORT}/health",
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


def tracking_uri() -> str:
    return f"http://127.0.0.1:{MLFLOW_PORT}"


def running_pid(service: Service) -> int | None:
    """The pid from the service's pid file if that process is still alive."""
    try:
        pid = int(service.pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start(service: Service) -> str:
    """Start the service unless it already runs; wait until its health URL answers."""
    if running_pid(service) is not None and healthy(service.health_url):
        return f"{service.name}: already running ({service.health_url})"
    if healthy(service.health_url):
        raise RuntimeError(
            f"{service.name}: something not started by this stack already answers at "
            f"{service.health_url}; stop it or choose another port"
        )
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    env = (
        dict(os.environ)
        | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        | service.env
    )
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
    service.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    while time.monotonic() - started < service.start_timeout_s:
        if process.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise RuntimeError(
                f"{service.name}: exited with code {process.returncode}; see {service.log_file}"
            )
        if healthy(service.health_url):
            return (
                f"{service.name}: up in {time.monotonic() - started:.1f} s ({service.health_url})"
            )
        time.sleep(0.3)
    stop(service)
    raise RuntimeError(
        f"{service.name}: not healthy after {service.start_timeout_s:.0f} s; see {service.log_file}"
    )


def stop(service: Service, timeout_s: float = 20.0) -> str:
    """Stop the process group the pid file names (the service and its workers)."""
    pid = running_pid(service)
    if pid is None:
        service.pid_file.unlink(missing_ok=True)
        return f"{service.name}: not running"
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    service.pid_file.unlink(missing_ok=True)
    return f"{service.name}: stopped"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def services() -> list[Service]:
    """In start order; `down` stops them in reverse."""
    return [tracking_server()]
