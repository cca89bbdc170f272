"""`scripts.stack up/down` starts the real tracking server and stops exactly what it started."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.project import ROOT
from tests.support.servers import child_env, free_port

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


def test_up_without_a_model_says_how_to_train_and_down_stops_everything(tmp_path):
    ports = {name: str(free_port()) for name in ("MLFLOW", "MODEL", "WEB", "S3")}
    env = child_env(
        FLORISENSE_RUN_DIR=str(tmp_path / "run"),
        **{f"FLORISENSE_{name}_PORT": port for name, port in ports.items()},
    )
    mlflow_port = ports["MLFLOW"]
    try:
        up = stack("up", env)
        assert up.returncode == 1
        assert "s3: up in" in up.stdout and "mlflow: up in" in up.stdout
        assert "no Production version of 'florisense'" in up.stderr and "make train" in up.stderr
        assert "Traceback" not in up.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=5) as reply:
            assert reply.status == 200
        pid = int((tmp_path / "run" / "mlflow.pid").read_text())
        again = stack("up", env)
        assert "mlflow: already running" in again.stdout
        assert int((tmp_path / "run" / "mlflow.pid").read_text()) == pid
        assert (tmp_path / "run" / "logs" / "mlflow.log").stat().st_size > 0
    finally:
        down = stack("down", env)
    assert "mlflow: stopped" in down.stdout and "s3: stopped" in down.stdout
    assert not (tmp_path / "run" / "mlflow.pid").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=2)
    assert not processes_mentioning(mlflow_port)
    assert "mlflow: not running" in stack("down", env).stdout
