"""What a run records about itself besides the model: parameters, library versions."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import mlflow
from mlflow import MlflowClient

from florisense_model.pipeline.manifest import DATASET_DIGEST_TAG, DATASET_NAME, Manifest

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


def log_dataset(manifest: Manifest, context: str = "training") -> None:
    """The run's dataset with MLflow's own dataset API (the UI's Dataset column): its digest is
    the manifest's, its source the S3 prefix or folder; the manifest itself is an artifact."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    dataset = MetaDataset(
        source=resolve_dataset_source(manifest.source),
        name=DATASET_NAME,
        digest=manifest.digest,
    )
    mlflow.log_input(dataset, context=context, tags={"photos": str(len(manifest.entries))})
    mlflow.log_text(manifest.to_json(), "dataset/manifest.json")
    mlflow.set_tag(DATASET_DIGEST_TAG, manifest.digest)


def flow_run_tags(environ: Mapping[str, str]) -> dict[str, str]:
    """The retraining flow run that started this training (its id and URL), if any."""
    names = {
        "FLORISENSE_FLOW_RUN_ID": "prefect.flow_run_id",
        "FLORISENSE_FLOW_RUN_URL": "prefect.flow_run_url",
    }
    return {tag: environ[name] for name, tag in names.items() if environ.get(name)}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
