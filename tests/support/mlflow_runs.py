"""`mlflow run . --env-manager local` as a user runs it, and the small training settings that make
it fast enough for tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.project import ROOT
from tests.support.servers import BIN, child_env

# Real backbone weights where the machine has them (CI does), else random: never a download.
WEIGHTS = os.environ.get("FLORISENSE_BASE_WEIGHTS", "").strip() or "none"
SMALL = [
    "-P",
    "image_size=64",
    "-P",
    "epochs=2",
    "-P",
    "fine_tune_epochs=1",
    "-P",
    "batch_size=16",
    "-P",
    "exclusions=none",
    "-P",
    f"base_weights={WEIGHTS}",
]


def mlflow_run(
    tracking_uri: str | None, *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    env = child_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    result = subprocess.run(
        [str(BIN / "mlflow"), "run", str(ROOT), "--env-manager", "local", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout[-3000:], result.stderr[-3000:])
    return result


def summary_of(result: subprocess.CompletedProcess) -> dict:
    """The JSON summary the entry point prints last."""
    text = result.stdout
    return json.JSONDecoder().raw_decode(text, text.rindex("\n{") + 1)[0]
