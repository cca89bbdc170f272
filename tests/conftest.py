"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import make_dataset

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The test stack's nginx cuts off a client that stops sending its body after 3 s (20 s by default),
# so the slow-client test is short. The follower, a child process, inherits it.
SLOW_BODY_TIMEOUT_S = 3
os.environ["FLORISENSE_NGINX_BODY_TIMEOUT"] = f"{SLOW_BODY_TIMEOUT_S}s"


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "photos")


@pytest.fixture(scope="session")
def serving_stack(tmp_path_factory):
    """The whole no-Docker stack on free ports, started for real: MLflow tracking server, a small
    model trained with `mlflow run` and promoted, `mlflow models serve`, nginx."""
    from florisense_model import stack
    from tests.helpers import make_dataset
    from tests.integration.test_mlflow_run import SMALL, mlflow_run
    from tests.servers import free_port

    root = tmp_path_factory.mktemp("stack")
    config = stack.StackConfig(
        run_dir=root / "run",
        mlflow_port=free_port(),
        model_port=free_port(),
        web_port=free_port(),
        s3_port=free_port(),
        model_alt_port=free_port(),
        follow_interval_s=2.0,
    )
    photos = make_dataset(root / "photos", per_class=20)
    try:
        list(stack.up(config, only={"s3", "mlflow"}))
        trained = mlflow_run(config.tracking_uri, "-P", f"data_dir={photos}", *SMALL)
        assert trained.returncode == 0, trained.stderr[-2000:]
        list(stack.up(config))
        yield config, photos
    finally:
        stack.down(config)
