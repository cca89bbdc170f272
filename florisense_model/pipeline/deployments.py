"""Serve the deployments (one process, `prefect` in .venv-orchestrate): `retrain/florisense`,
started by new photos, a drift alert, a person or (when set) a schedule, one run at a time; and
`watch-photos/florisense`, the bucket watcher on an interval.

With `--work-pool NAME --image IMAGE` (Kubernetes: the Job register-deployments), the same two
deployments, triggers and limits are registered on a work pool instead, and this process exits:
the pool's worker starts each flow run as a job of IMAGE.

One retraining at a time: a trigger while one runs is CANCELLED, not queued. A queued run would
train on nearly the same photos right after; the watcher announces the next dataset anyway.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from florisense_model.pipeline.alert_receiver import DRIFT_EVENT
from florisense_model.pipeline.flows import retrain
from florisense_model.pipeline.watcher import PHOTOS_EVENT, min_new_from_env, watch_photos

DEPLOYMENT_NAME = "florisense"
# A photo check only lists the bucket: on a work pool its job is small, not the trainer's
# (the pool's defaults: deploy/kubernetes/base/prefect/base-job-template.json).
WATCHER_JOB_VARIABLES = {
    "cpu_request": "50m",
    "cpu_limit": "500m",
    "memory_request": "256Mi",
    "memory_limit": "512Mi",
}


def retrain_deployment(**options: Any) -> RunnerDeployment:
    """`options`: more arguments of `to_deployment` (a work pool's entry point, job variables)."""
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
        **options,
    )


def watcher_deployment(**options: Any) -> RunnerDeployment:
    interval = float(os.environ.get("FLORISENSE_WATCH_INTERVAL", "300"))
    return watch_photos.to_deployment(
        name=DEPLOYMENT_NAME,
        interval=interval,
        parameters={"min_new": min_new_from_env()},
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        **options,
    )


def register(work_pool: str, image: str, image_pull_policy: str = "") -> None:
    """Both deployments on `work_pool`, each flow run a job of `image` (already built: nothing
    is built or pushed), pulled by `image_pull_policy` (default: the pool's). The flows are
    found by module path, so a job finds them through PYTHONPATH whatever its working
    directory."""
    from prefect import deploy
    from prefect.types.entrypoint import EntrypointType

    module = EntrypointType.MODULE_PATH
    pull = {"image_pull_policy": image_pull_policy} if image_pull_policy else {}
    deployments = [
        retrain_deployment(entrypoint_type=module, job_variables=dict(pull)),
        watcher_deployment(entrypoint_type=module, job_variables=WATCHER_JOB_VARIABLES | pull),
    ]
    ids = deploy(
        *deployments,
        work_pool_name=work_pool,
        image=image,
        build=False,
        push=False,
        print_next_steps_message=False,
    )
    # deploy() reports a failed deployment among several without raising.
    if len(ids) != len(deployments):
        raise SystemExit(f"registered {len(ids)} of {len(deployments)} deployments on {work_pool}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve retrain/florisense and watch-photos/florisense (default), or register "
        "them on a work pool, each flow run a job of --image."
    )
    parser.add_argument("--work-pool", help="register on this work pool instead of serving")
    parser.add_argument("--image", help="with --work-pool: the image each flow run's job runs")
    parser.add_argument(
        "--image-pull-policy",
        choices=("IfNotPresent", "Always", "Never"),
        default="",
        help="with --work-pool: how each job gets the image (default: the pool's)",
    )
    args = parser.parse_args(argv)
    if bool(args.work_pool) != bool(args.image):
        parser.error("--work-pool and --image go together")
    if args.work_pool:
        register(args.work_pool, args.image, args.image_pull_policy)
    else:
        serve(retrain_deployment(), watcher_deployment())


if __name__ == "__main__":
    main()
