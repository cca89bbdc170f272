"""`scripts.stack up/down` starts the real tracking server and stops exactly what it started."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import child_env, free_port

pytestmark = pytest.mark.integration


def processes_mentioning(word: str) -> list[str]:
    """Command lines of live processes that contain `word` (no procps needed)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if word.encode() in args:
            found.append(b" ".join(args).decode(errors="replace"))
    return found


def stack(action: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", action],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_up_is_healthy_idempotent_and_down_stops_everything(tmp_path):
    port = free_port()
    env = child_env(FLORISENSE_RUN_DIR=str(tmp_path / "run"), FLORISENSE_MLFLOW_PORT=str(port))
    up = stack("up", env)
    try:
        assert up.returncode == 0, up.stderr
        assert "mlflow: up in" in up.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        pid = int((tmp_path / "run" / "mlflow.pid").read_text())
        again = stack("up", env)
        assert "already running" in again.stdout
        assert int((tmp_path / "run" / "mlflow.pid").read_text()) == pid
        assert (tmp_path / "run" / "logs" / "mlflow.log").stat().st_size > 0
    finally:
        down = stack("down", env)
    assert "mlflow: stopped" in down.stdout
    assert not (tmp_path / "run" / "mlflow.pid").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    assert not processes_mentioning(str(port))
    assert "mlflow: not running" in stack("down", env).stdout
