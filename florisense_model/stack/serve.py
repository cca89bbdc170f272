"""Start `mlflow models serve` for the Production model (or one version) once it can load: waits,
with backoff, for the tracking server to answer, for a Production version to exist (compose
starts the model server before any training has finished) and for its files to be readable from
the artifact store (S3, through the tracking server). Each wait says what it is waiting for."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

import yaml

from florisense_model.cli import log, run_cli
from florisense_model.config import PRODUCTION_MODEL_URI, REGISTERED_MODEL_NAME
from florisense_model.registry import production_version
from florisense_model.stack.settings import BIN, SERVING_ENV


class ArtifactsUnavailable(RuntimeError):
    """The registry knows the version but its files cannot be read (S3 down or objects missing)."""


def check_artifacts(tracking_uri: str, version: str) -> dict:
    """Read the version's MLmodel file through the tracking server, without MLflow's own minutes
    of retries (this module retries with its own backoff and says why); returns its metadata."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    source = client.get_model_version_download_uri(REGISTERED_MODEL_NAME, version)
    previous = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        with tempfile.TemporaryDirectory(prefix="florisense-probe-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{source}/MLmodel", dst_path=tmp, tracking_uri=tracking_uri
            )
            with open(path, encoding="utf-8") as handle:
                return yaml.safe_load(handle).get("metadata") or {}
    except Exception as exc:
        raise ArtifactsUnavailable(
            f"the files of version {version} cannot be read from the artifact store "
            "(is the S3 server up?)"
        ) from exc
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = previous


def wait_for_production(
    tracking_uri: str,
    log: Callable[[str], None],
    max_wait_s: float | None = None,
    first_delay_s: float = 2.0,
    max_delay_s: float = 30.0,
    version: str | None = None,
) -> tuple[str, dict]:
    """Poll until the Production version (or `version`) exists and its files are readable;
    exponential backoff between polls. Returns the version number and its metadata."""
    started, delay = time.monotonic(), first_delay_s
    while True:
        try:
            found = version or production_version(tracking_uri)
            if found is None:
                log(f"no Production version of {REGISTERED_MODEL_NAME} yet; waiting for training")
            else:
                return found, check_artifacts(tracking_uri, found)
        except (OSError, urllib.error.URLError) as exc:
            log(f"tracking server {tracking_uri} not answering ({exc}); retry in {delay:.0f} s")
        except ArtifactsUnavailable as exc:
            log(f"{exc}; retry in {delay:.0f} s")
        if max_wait_s is not None and time.monotonic() - started + delay > max_wait_s:
            raise TimeoutError(f"the model could not be loaded within {max_wait_s:.0f} s")
        time.sleep(delay)
        delay = min(max_delay_s, delay * 2)


def serve_production(
    host: str, port: int, workers: int = 1, timeout_s: int = 60, version: str | None = None
) -> None:
    """Wait until the Production model (or `version`) can load, then become
    `mlflow models serve` (exec: same pid, so a supervisor sees one process)."""
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith("http"):
        raise ValueError("set MLFLOW_TRACKING_URI to the tracking server (http://host:port)")
    found, metadata = wait_for_production(tracking_uri, log, version=version)
    model_uri = f"models:/{REGISTERED_MODEL_NAME}/{version}" if version else PRODUCTION_MODEL_URI
    # An operator's runtime override (README, "Serving runtime") decides too: keras needs TF.
    override = json.loads(os.environ.get("MLFLOW_PYFUNC_INFERENCE_CONFIG") or "{}")
    bin_dir = serving_bin_dir(str(override.get("runtime") or metadata.get("runtime", "")))
    log(f"serving {model_uri} (version {found}) from {bin_dir}")
    os.environ["FLORISENSE_MODEL_VERSION"] = found  # the model's metrics name it (metrics.py)
    command = serve_command(model_uri, host, port, workers, timeout_s, bin_dir=str(bin_dir))
    # `mlflow models serve --env-manager local` starts uvicorn by name: from the same environment.
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.execv(command[0], command)


def serving_bin_dir(runtime: str, serving_env: Path = SERVING_ENV) -> Path:
    """Where `mlflow models serve` runs a version from: the model's own environment (no
    TensorFlow: 3.2 s to /ping and ~330 MB instead of 5 s and ~500 MB, README "Performance") for
    a compiled graph, when it exists; else this one (Keras-only versions need TensorFlow)."""
    lean = serving_env / "bin"
    if runtime.startswith("onnx") and (lean / "mlflow").exists():
        return lean
    return BIN


def serve_command(
    model_uri: str,
    host: str,
    port: int,
    workers: int = 1,
    timeout_s: int = 60,
    bin_dir: str | None = None,
) -> list[str]:
    """`mlflow models serve` in this environment (or the one whose scripts are in `bin_dir`):
    the one place its command line is built."""
    mlflow = os.path.join(bin_dir or os.path.dirname(sys.executable), "mlflow")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=60, help="seconds per request")
    parser.add_argument(
        "--version",
        default=os.environ.get("FLORISENSE_MODEL_VERSION") or None,
        help="an exact version (default: $FLORISENSE_MODEL_VERSION, else Production)",
    )
    args = parser.parse_args()
    serve_production(args.host, args.port, args.workers, args.timeout, args.version)


if __name__ == "__main__":
    run_cli(main)
