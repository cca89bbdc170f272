"""Supervise plain processes: start one in its own process group with a pid file and a log, wait
until it is healthy, stop exactly that group. Process state comes from psutil."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from florisense_model.stack.credentials import without_server_secrets
from florisense_model.stack.settings import BIN


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None  # None: healthy while the process runs
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 90.0
    # The S3 server answers an anonymous GET with an error: any HTTP answer means it is up.
    any_status_is_healthy: bool = False
    # Services that may see the S3 credentials; every other one starts without them.
    keeps_secrets: bool = False
    # Output to this process's own (a container's log), not to a file under the run directory.
    console_log: bool = False
    # Run just before the process starts (not when it already runs): files it needs, a clean slate.
    prepare: Callable[[], None] | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"


def require_tool(tool: str) -> None:
    """Refuse to start a service whose program (a Debian package of that name) is missing."""
    if shutil.which(tool) is None:
        raise RuntimeError(
            f"{tool} is not installed: run `make system-deps` (Debian package {tool})"
        )


def running_pid(service: Service) -> int | None:
    """The pid from the service's pid file if that process is still alive (not a zombie)."""
    try:
        pid = int(service.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    _reap(pid)
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _reap(pid: int) -> None:
    """Collect the exit status of a service this process started (a test, `make` runs a new
    process each time): otherwise it stays a zombie and looks alive."""
    with contextlib.suppress(ChildProcessError):  # not our child: its parent or init reaps it
        os.waitpid(pid, os.WNOHANG)


def healthy(url: str, any_status: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return any_status and exc.code < 500
    except OSError:
        return False


def is_healthy(service: Service) -> bool:
    if service.health_url is None:
        return running_pid(service) is not None
    return healthy(service.health_url, service.any_status_is_healthy)


def service_environment(service: Service) -> dict[str, str]:
    """The caller's environment, this environment's tools first on PATH, the service's own
    settings; secrets only for the services that keep them."""
    env = (
        dict(os.environ)
        | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        | service.env
    )
    return env if service.keeps_secrets else without_server_secrets(env)


def start(service: Service) -> str:
    """Start the service unless it already runs; wait until its health URL answers."""
    if running_pid(service) is not None and is_healthy(service):
        return f"{service.name}: already running ({service.health_url})"
    if is_healthy(service):
        raise RuntimeError(
            f"{service.name}: something not started by this stack already answers at "
            f"{service.health_url}; stop it or choose another port"
        )
    stop(service)  # a stale process from an earlier failed start
    if service.prepare is not None:
        service.prepare()
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        log = None if service.console_log else files.enter_context(service.log_file.open("ab"))
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            env=service_environment(service),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            cwd=service.run_dir,
        )
    service.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    while time.monotonic() - started < service.start_timeout_s:
        if process.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise RuntimeError(
                f"{service.name}: exited with code {process.returncode}; see {_log_of(service)}"
            )
        if service.health_url is None and time.monotonic() - started > 1.0:
            return f"{service.name}: running (pid {process.pid})"
        if service.health_url is not None and is_healthy(service):
            return (
                f"{service.name}: up in {time.monotonic() - started:.1f} s ({service.health_url})"
            )
        time.sleep(0.3)
    stop(service)
    raise RuntimeError(
        f"{service.name}: not healthy after {service.start_timeout_s:.0f} s; see {_log_of(service)}"
    )


def _log_of(service: Service) -> str:
    return "the log above" if service.console_log else str(service.log_file)


def stop(service: Service, timeout_s: float = 20.0) -> str:
    """Stop the process group the pid file names (the service and its workers)."""
    pid = running_pid(service)
    if pid is None:
        service.pid_file.unlink(missing_ok=True)
        return f"{service.name}: not running"
    terminate_group(pid, timeout_s)
    service.pid_file.unlink(missing_ok=True)
    return f"{service.name}: stopped"


def terminate_group(pgid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM a process group (a server and its workers), SIGKILL what is left after the
    timeout; reaps the leader if this process started it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and group_alive(pgid):
        _reap(pgid)
        time.sleep(0.2)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    _reap(pgid)


def process_group(pgid: int) -> list[psutil.Process]:
    """Every process of a process group (a server and its workers)."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):  # it ended meanwhile
            if os.getpgid(process.pid) == pgid:
                members.append(process)
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: a service started by a
    process that outlives it (a test run, the follower) stays one until that process reaps it."""
    return any(_alive(process.pid) for process in process_group(pgid))


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group (the server and its workers)."""
    total = 0
    for process in process_group(pgid):
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return round(total / 2**20, 1)
