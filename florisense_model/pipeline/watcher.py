"""The photo watcher (a Prefect flow on an interval): `rclone serve s3` has no bucket
notifications, so this lists the bucket every few minutes and emits `florisense.photos.arrived`
once at least FLORISENSE_RETRAIN_MIN_NEW photos (read where the deployment is made, so a work
pool's flow runs get it too) are there beyond Production's dataset. Before there is a Production
version it announces nothing: the first version is the trainer's (compose, Kubernetes) or
`make train`'s, and a retraining beside it would train a second one at the same time.

It emits once per dataset digest (kept in a Prefect Variable), so a version the gate rejected
does not set off a retraining every few minutes: only more photos do.
"""

from __future__ import annotations

import os
import tempfile

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.variables import Variable

from florisense_model.pipeline.manifest import Manifest
from florisense_model.pipeline.store import open_store
from florisense_model.registry import current_production

PHOTOS_EVENT = "florisense.photos.arrived"
PHOTOS_RESOURCE = "florisense.data.labelled"
EMITTED_VARIABLE = "florisense-photos-emitted-digest"
DEFAULT_MIN_NEW = 20


def min_new_from_env() -> int:
    return int(os.environ.get("FLORISENSE_RETRAIN_MIN_NEW", str(DEFAULT_MIN_NEW)))


def production_hashes(client: MlflowClient, version: ModelVersion) -> frozenset[str]:
    """The photos Production `version` was trained on (its run's manifest); none without one."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(version.run_id, "dataset/manifest.json", folder)
        except Exception:  # a version trained before datasets were versioned
            return frozenset()
        return Manifest.read(path).hashes


@flow(name="watch-photos", description="Emit florisense.photos.arrived when enough are new.")
def watch_photos(min_new: int = DEFAULT_MIN_NEW) -> int:
    """The number of photos beyond Production's dataset (an event when at least min_new)."""
    logger = get_run_logger()
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    production = current_production(client)
    if production is None:
        logger.info("no Production version yet: the first version is the trainer's")
        return 0
    manifest = open_store().manifest()
    new = len(manifest.hashes - production_hashes(client, production))
    if new < min_new:
        logger.info("%d new photos (a retraining needs %d)", new, min_new)
        return new
    if Variable.get(EMITTED_VARIABLE, default=None) == manifest.digest:
        logger.info("%d new photos, dataset %s already announced", new, manifest.digest)
        return new
    emit_event(
        PHOTOS_EVENT,
        resource={"prefect.resource.id": PHOTOS_RESOURCE},
        payload={"new": new, "digest": manifest.digest, "counts": manifest.counts()},
    )
    Variable.set(EMITTED_VARIABLE, manifest.digest, overwrite=True)
    logger.info("%d new photos in dataset %s: %s emitted", new, manifest.digest, PHOTOS_EVENT)
    return new
