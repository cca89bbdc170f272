"""Package a Keras classifier as the FloriSense pyfunc ("models from code") and log or save it.
The model carries only florisense_model/model/ as its code: nothing else of the package."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import ColSpec, DataType, Map, Schema
from PIL import Image

from florisense_model.model import labels
from florisense_model.pins import serving_requirements

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_DIR = PACKAGE_DIR / "model"
MODEL_CODE = MODEL_DIR / "from_code.py"
ARTIFACT_NAME = "model"

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(DataType.string, "image")]),
    outputs=Schema(
        [
            ColSpec(DataType.string, "label", required=False),
            ColSpec(DataType.string, "label_display", required=False),
            ColSpec(DataType.double, "confidence", required=False),
            ColSpec(Map(DataType.double), "probabilities", required=False),
            ColSpec(DataType.string, "error", required=False),
            ColSpec(DataType.string, "run_id", required=False),
        ]
    ),
)


def input_example() -> pd.DataFrame:
    """A one-row example request: a small green PNG, as the web page would send it."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (60, 140, 50)).save(buffer, format="PNG")
    return pd.DataFrame({"image": [base64.b64encode(buffer.getvalue()).decode("ascii")]})


def labels_document(
    classes: list[str], image_size: int, resize_mode: str, run_id: str | None
) -> dict[str, Any]:
    return {
        "classes": list(classes),
        "display": {c: labels.DISPLAY_NAMES[labels.DEFAULT_LANGUAGE].get(c, c) for c in classes},
        "display_languages": {
            lang: {c: names.get(c, c) for c in classes}
            for lang, names in labels.DISPLAY_NAMES.items()
        },
        "image_size": int(image_size),
        "resize_mode": resize_mode,
        "run_id": run_id,
    }


@contextmanager
def _model_files(
    keras_path: Path, classes: list[str], image_size: int, resize_mode: str, run_id: str | None
) -> Iterator[dict[str, Any]]:
    """The keyword arguments shared by log_model and save_model, with files in a temp folder."""
    with tempfile.TemporaryDirectory(prefix="florisense-model-") as tmp:
        staging = Path(tmp)
        labels_path = staging / "labels.json"
        labels_path.write_text(
            json.dumps(labels_document(classes, image_size, resize_mode, run_id), indent=2)
        )
        code_dir = stage_model_code(staging)
        yield {
            "python_model": str(MODEL_CODE),
            "artifacts": {"keras_model": str(keras_path), "labels": str(labels_path)},
            "code_paths": [str(code_dir)],
            "signature": SIGNATURE,
            "input_example": input_example(),
            "pip_requirements": serving_requirements(),
            "model_config": {"run_id": run_id} if run_id else None,
            "metadata": {
                "classes": list(classes),
                "image_size": int(image_size),
                "resize_mode": resize_mode,
                "training_run_id": run_id,
            },
        }


def stage_model_code(staging: Path) -> Path:
    """A clean copy of the model's own code, importable as florisense_model.model: the package's
    one-line __init__ and model/ (no caches). MLflow puts it first on sys.path when it loads."""
    code_dir = staging / "florisense_model"
    code_dir.mkdir()
    shutil.copy2(PACKAGE_DIR / "__init__.py", code_dir / "__init__.py")
    shutil.copytree(
        MODEL_DIR, code_dir / "model", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return code_dir


class ModelStorageError(ConnectionError):
    """The model's files could not be uploaded: the run fails (one-line CLI error), the registry
    is unchanged."""


def log_pyfunc_model(
    keras_path: Path,
    classes: list[str],
    image_size: int,
    resize_mode: str,
    registered_model_name: str | None,
) -> ModelInfo:
    """Log the model to the active run and (optionally) register it as a new version."""
    run_id = mlflow.active_run().info.run_id
    with _model_files(keras_path, classes, image_size, resize_mode, run_id) as kwargs:
        try:
            return mlflow.pyfunc.log_model(
                name=ARTIFACT_NAME, registered_model_name=registered_model_name, **kwargs
            )
        except Exception as exc:
            # MLflow uploads every file before it registers a version, so a failed upload
            # leaves no version pointing at missing files (tests/serving/test_faults.py).
            raise ModelStorageError(
                f"could not store the model of run {run_id} in the artifact store "
                f"({type(exc).__name__}); no version was registered. Is the S3 server up?"
            ) from exc


def save_pyfunc_model(
    path: Path,
    keras_path: Path,
    classes: list[str],
    image_size: int,
    resize_mode: str,
    run_id: str | None = None,
) -> Path:
    """Save the same pyfunc to a local folder (tests, offline inspection)."""
    with _model_files(keras_path, classes, image_size, resize_mode, run_id) as kwargs:
        mlflow.pyfunc.save_model(path=str(path), **kwargs)
    return path
