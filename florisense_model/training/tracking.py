"""What a run records about itself besides the model: parameters, library versions."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import mlflow
from mlflow import MlflowClient

LIBRARIES = (
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "mlflow",
    "numpy",
    "pillow",
    "pandas",
    "scikit-learn",
)


def log_new_params(params: dict[str, Any]) -> None:
    """Log params the run does not have yet: `mlflow run` already logged the entry point's
    parameters as given, and MLflow refuses to change a logged value."""
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in existing})


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
