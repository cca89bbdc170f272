"""Compose's trainer: train and register a first version when the registry has no Production
version yet; otherwise say so and stop, so that `docker compose up` never retrains by itself.
Training again is asked for: `docker compose run --rm trainer mlflow run . --env-manager local`."""

from __future__ import annotations

import os
import sys

from florisense_model import registry
from florisense_model.cli import run_cli
from florisense_model.config import REGISTERED_MODEL_NAME
from florisense_model.training.sources import resolve_data_dir

TRAIN_AGAIN = "docker compose run --rm trainer mlflow run . --env-manager local"


def main() -> None:
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith("http"):
        raise ValueError("set MLFLOW_TRACKING_URI to the tracking server (http://host:port)")
    try:
        version = registry.production_version(tracking_uri)
    except OSError as exc:
        raise ConnectionError(f"the tracking server {tracking_uri} is not answering") from exc
    if version is not None:
        print(
            f"{REGISTERED_MODEL_NAME} version {version} is Production: not training (to train "
            f"a new version: {TRAIN_AGAIN})"
        )
        return
    print(
        f"no Production version of {REGISTERED_MODEL_NAME} yet: training the first one", flush=True
    )
    # The photos first: offline without photos this is one clear line, not mlflow's trace.
    photos = resolve_data_dir("", log=lambda line: print(line, flush=True))
    command = ["mlflow", "run", ".", "--env-manager", "local", "-P", f"data_dir={photos}"]
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    run_cli(main)
