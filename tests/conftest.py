"""Fixtures shared by every test folder (their code lives in tests/support/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.images import make_dataset
from tests.support.stack import SLOW_BODY_TIMEOUT_S, running_test_stack

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Clients take artifacts through the tracking server's proxy, as every client of the stacks does.
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
# Set before any stack starts: child processes (the follower) inherit it.
os.environ["FLORISENSE_NGINX_BODY_TIMEOUT"] = f"{SLOW_BODY_TIMEOUT_S}s"


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "photos")


@pytest.fixture(scope="session")
def serving_stack(tmp_path_factory):
    """The whole no-Docker stack on free ports, started for real (tests/support/stack.py)."""
    yield from running_test_stack(tmp_path_factory.mktemp("stack"))
