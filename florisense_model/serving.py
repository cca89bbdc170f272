"""Start `mlflow models serve` for the Production model once there is one: waits, with backoff,
for the tracking server to answer and for a Production version to exist (compose starts the
model server before any training has finished)."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from florisense_model.config import PRODUCTION_STAGE, REGISTERED_MODEL_NAME

MODEL_URI = f"models:/{REGISTERED_MODEL_NAME}/{PRODUCTION_STAGE}"


def production_version(tracking_uri: str) -> str | None:
    """The Production version number, None if there is none yet; raises if the server is down."""
    from mlflow import MlflowClient

    from florisense_model.registry import current_production

    with urllib.request.urlopen(f"{tracking_uri}/health", timeout=5):
        pass  # OSError while the server is down (the MLflow client would retry for minutes)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = current_production(client)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return None
        raise
    return version.version if version else None


def wait_for_production(
    tracking_uri: str,
    log: Callable[[str], None],
    max_wait_s: float | None = None,
    first_delay_s: float = 2.0,
    max_delay_s: float = 30.0,
) -> str:
    """Poll until a Production version exists; exponential backoff between polls."""
    started, delay = time.monotonic(), first_delay_s
    while True:
        try:
            version = production_version(tracking_uri)
            if version is not None:
                return version
            log(f"no Production version of {REGISTERED_MODEL_NAME} yet; waiting for training")
        except (OSError, urllib.error.URLError) as exc:
            log(f"tracking server {tracking_uri} not answering ({exc}); retrying")
        if max_wait_s is not None and time.monotonic() - started + delay > max_wait_s:
            raise TimeoutError(f"no Production model after {max_wait_s:.0f} s")
        time.sleep(delay)
        delay = min(max_delay_s, delay * 2)


def serve_production(host: str, port: int, workers: int = 1, timeout_s: int = 60) -> None:
    """Wait for the Production model, then become `mlflow models serve` (exec: same pid)."""
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith("http"):
        raise ValueError("set MLFLOW_TRACKING_URI to the tracking server (http://host:port)")
    version = wait_for_production(tracking_uri, lambda m: print(m, file=sys.stderr, flush=True))
    print(f"serving {MODEL_URI} (version {version})", file=sys.stderr, flush=True)
    command = serve_command(MODEL_URI, host, port, workers, timeout_s)
    os.execv(command[0], command)


def serve_command(
    model_uri: str, host: str, port: int, workers: int = 1, timeout_s: int = 60
) -> list[str]:
    """`mlflow models serve` in this environment: the one place its command line is built."""
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    return [
        mlflow,
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        host,
        "-p",
        str(port),
        "--workers",
        str(workers),
        "-t",
        str(timeout_s),
    ]
