"""The real FloriSense pyfunc around the tiny classifier, saved and loaded once per session."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from florisense_model.model.labels import CLASSES
from florisense_model.training.packaging import save_pyfunc_model
from tests.support.tiny_model import TINY_SIZE, tiny_classifier


@pytest.fixture(scope="session")
def tiny_keras_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    tiny_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pyfunc_dir(tmp_path_factory, tiny_keras_file) -> Path:
    target = tmp_path_factory.mktemp("pyfunc") / "model"
    return save_pyfunc_model(
        target, tiny_keras_file, list(CLASSES), TINY_SIZE, "crop", run_id="0123456789abcdef"
    )


@pytest.fixture(scope="session")
def tiny_pyfunc(tiny_pyfunc_dir):
    return mlflow.pyfunc.load_model(str(tiny_pyfunc_dir))
