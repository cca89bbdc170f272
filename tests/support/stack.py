"""The whole no-Docker stack on free ports, started for real for the serving tests: S3, the MLflow
tracking server, a small model trained with `mlflow run` and promoted, the model server, nginx
and the follower."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from florisense_model.stack import lifecycle
from florisense_model.stack.settings import StackConfig
from tests.support.images import make_dataset
from tests.support.mlflow_runs import SMALL, mlflow_run

# The test stack's nginx cuts off a client that stops sending its body after 3 s (20 s by default),
# so the slow-client test is short. The follower, a child process, inherits it.
SLOW_BODY_TIMEOUT_S = 3
# Prometheus scrapes the test stack every second, so counts show there within seconds.
SCRAPE_INTERVAL_S = 1.0


def free_port_config(root: Path, **settings: object) -> StackConfig:
    """A stack under `root` with every service on a free port and a short follow interval."""
    return StackConfig.on_free_ports(root / "run", **({"follow_interval_s": 2.0} | settings))


def running_test_stack(root: Path) -> Iterator[tuple[StackConfig, Path]]:
    """(config, the photos it was trained on) while the stack runs; stopped afterwards."""
    config = free_port_config(root, scrape_interval_s=SCRAPE_INTERVAL_S)
    photos = make_dataset(root / "photos", per_class=20)
    try:
        list(lifecycle.up(config, only={"s3", "mlflow"}))
        trained = mlflow_run(config.tracking_uri, "-P", f"data_dir={photos}", *SMALL)
        assert trained.returncode == 0, trained.stderr[-2000:]
        list(lifecycle.up(config))
        yield config, photos
    finally:
        lifecycle.down(config)
