"""Serve the deployments (one process, `prefect` in .venv-orchestrate): `retrain/florisense`,
started by new photos, a drift alert, a person or (when set) a schedule, one run at a time; and
`watch-photos/florisense`, the bucket watcher on an interval.

One retraining at a time: a trigger while one runs is CANCELLED, not queued. A queued run would
train on nearly the same photos right after; the watcher announces the next dataset anyway.
"""

from __future__ import annotations

import json
import os

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger

from florisense_model.pipeline.alert_receiver import DRIFT_EVENT
from florisense_model.pipeline.flows import retrain
from florisense_model.pipeline.watcher import PHOTOS_EVENT, watch_photos

DEPLOYMENT_NAME = "florisense"


def retrain_deployment():
    # MLproject parameters every triggered run trains with (tests: a tiny model), as JSON.
    train_params = json.loads(os.environ.get("FLORISENSE_RETRAIN_PARAMS") or "{}")
    cron = os.environ.get("FLORISENSE_RETRAIN_CRON", "").strip()  # off unless set
    triggers = [
        DeploymentEventTrigger(
            name="new photos",
            expect={PHOTOS_EVENT},
            parameters={"reason": "new photos in the bucket", "train_params": train_params},
        ),
        DeploymentEventTrigger(
            name="drift",
            expect={DRIFT_EVENT},
            parameters={
                "reason": {
                    "__prefect_kind": "jinja",
                    "template": "drift alert {{ event.payload.alertname }}",
                },
                "train_params": train_params,
            },
        ),
    ]
    return retrain.to_deployment(
        name=DEPLOYMENT_NAME,
        cron=cron or None,
        triggers=triggers,
        parameters={"train_params": train_params},
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        description="Snapshot the dataset, train with `mlflow run .`, let the gate decide.",
    )


def watcher_deployment():
    interval = float(os.environ.get("FLORISENSE_WATCH_INTERVAL", "300"))
    return watch_photos.to_deployment(
        name=DEPLOYMENT_NAME,
        interval=interval,
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
    )


def main() -> None:
    serve(retrain_deployment(), watcher_deployment())


if __name__ == "__main__":
    main()
