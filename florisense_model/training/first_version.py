"""Compose's trainer (and Kubernetes' train-first-version Job): when the registry has no
Production version yet, seed the data bucket from the photos (once: only while it is empty) and
train and register a first version from the bucket, like every later retraining; otherwise say
so and stop, so that `docker compose up` never retrains by itself. Later versions come from the
retraining flow (`florisense retrain`, or Prefect's UI)."""

from __future__ import annotations

import os
import sys

from florisense_model import registry
from florisense_model.cli import run_cli
from florisense_model.config import REGISTERED_MODEL_NAME
from florisense_model.pipeline.store import open_store, seed
from florisense_model.stack.settings import DATA_URI
from florisense_model.training.sources import resolve_data_dir

# Compose's words (the Kubernetes Job says the same; its README section gives kubectl's).
TRAIN_AGAIN = "docker compose exec flows florisense retrain --force --wait"


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
    # The photos first: offline without photos this is one clear line, not mlflow's trace. No
    # Production yet: the bucket gets every photo of the folder it lacks (a first start, or one
    # whose seeding was cut off), then the first version trains from the bucket.
    photos = resolve_data_dir("", log=lambda line: print(line, flush=True))
    seed(open_store(), photos, log=lambda line: print(line, flush=True), top_up=True)
    command = ["mlflow", "run", ".", "--env-manager", "local", "-P", f"data_dir={DATA_URI}"]
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    run_cli(main)
