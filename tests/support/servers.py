"""Start and stop REAL servers for tests (no mocks): the MLflow tracking server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from florisense_model.stack.services import TRACKING_SERVER_ENV, tracking_server_command
from florisense_model.stack.settings import free_port
from florisense_model.stack.supervisor import terminate_group

BIN = Path(sys.executable).parent


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment with the venv's bin first on PATH (mlflow starts tools by name)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server exited with code {process.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def mlflow_tracking_server(workdir: Path):
    """`mlflow server` with a SQLite backend store and proxied local artifacts; yields its URI."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (workdir / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        tracking_server_command(
            port, f"sqlite:///{workdir / 'mlflow.db'}", str(workdir / "artifacts")
        ),
        env=child_env(**TRACKING_SERVER_ENV),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", timeout=90, process=process)
        yield uri
    finally:
        terminate_group(process.pid)
        log.close()
