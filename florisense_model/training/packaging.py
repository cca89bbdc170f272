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
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import Array, ColSpec, DataType, Map, ParamSchema, ParamSpec, Schema
from PIL import Image

from florisense_model.model import labels
from florisense_model.pins import serving_requirements
from florisense_model.training.compile import (
    ONNX_FILE,
    CompiledGraphMismatch,
    compile_and_check,
    sample_pixels,
)
from florisense_model.training.quantize import INT8_FILE, Int8Inputs, check_int8, quantize_int8

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_DIR = PACKAGE_DIR / "model"
MODEL_CODE = MODEL_DIR / "from_code.py"
ARTIFACT_NAME = "model"
# What to register: "onnx" a compiled graph or fail, "auto" a compiled graph if the converter can
# translate the network else Keras only, "keras" Keras only (how versions looked before).
GraphPolicy = Literal["onnx", "auto", "keras"]
GRAPH_POLICIES = ("onnx", "auto", "keras")

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
            # Only when the request's params ask for it (`explain`): rows of [0, 1] floats.
            ColSpec(Array(Array(DataType.double)), labels.HEATMAP_COLUMN, required=False),
        ]
    ),
    params=ParamSchema([ParamSpec(labels.EXPLAIN_PARAM, DataType.boolean, False)]),
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
    keras_path: Path,
    classes: list[str],
    image_size: int,
    resize_mode: str,
    run_id: str | None,
    runtime: GraphPolicy,
    check_pixels: np.ndarray | None,
    int8: Int8Inputs | None = None,
    reference: dict[str, Any] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, float]]]:
    """(the keyword arguments shared by log_model and save_model, the compiled graphs' checks as
    metrics), with the files in a temporary folder."""
    if runtime not in GRAPH_POLICIES:
        raise ValueError(f"runtime must be one of {GRAPH_POLICIES}, not {runtime!r}")
    with tempfile.TemporaryDirectory(prefix="florisense-model-") as tmp:
        staging = Path(tmp)
        labels_path = staging / "labels.json"
        labels_path.write_text(
            json.dumps(labels_document(classes, image_size, resize_mode, run_id), indent=2)
        )
        pixels = check_pixels if check_pixels is not None else sample_pixels(image_size)
        onnx_path, difference = _compiled_graph(keras_path, staging, pixels, runtime)
        artifacts = {"keras_model": str(keras_path), "labels": str(labels_path)}
        if reference is not None:  # what the served model's drift alerts compare with
            reference_path = staging / "reference.json"
            reference_path.write_text(json.dumps(reference, indent=2))
            artifacts["reference"] = str(reference_path)
        checks: dict[str, float] = {}
        if onnx_path is not None:
            artifacts["onnx_model"] = str(onnx_path)
            checks["compiled_max_abs_diff"] = difference
            if int8 is not None:
                if check_pixels is None:
                    raise ValueError("int8 needs the test photos (check_pixels) to be judged on")
                int8_path, int8_checks = _int8_graph(onnx_path, staging / INT8_FILE, pixels, int8)
                checks |= int8_checks
                if int8_path is not None:
                    artifacts["onnx_int8_model"] = str(int8_path)
        served = _served_runtime(artifacts)
        kwargs = {
            "python_model": str(MODEL_CODE),
            "artifacts": artifacts,
            "code_paths": [str(stage_model_code(staging))],
            "signature": SIGNATURE,
            "input_example": input_example(),
            # Served through ONNX Runtime: no TensorFlow or Keras in the model's environment.
            "pip_requirements": serving_requirements(served),
            # Keys present here can be overridden at load time: `runtime: keras` for debugging
            # (load_model(model_config=...) or MLFLOW_PYFUNC_INFERENCE_CONFIG when serving).
            "model_config": {"run_id": run_id or "", "runtime": served},
            "metadata": {
                "classes": list(classes),
                "image_size": int(image_size),
                "resize_mode": resize_mode,
                "training_run_id": run_id,
                "runtime": served,
            },
        }
        yield kwargs, checks


def _served_runtime(artifacts: dict[str, str]) -> str:
    if "onnx_int8_model" in artifacts:
        return "onnx-int8"
    return "onnx" if "onnx_model" in artifacts else "keras"


def _int8_graph(
    float_graph: Path, target: Path, pixels: np.ndarray, int8: Int8Inputs
) -> tuple[Path | None, dict[str, float]]:
    """The int8 graph if it classifies the test split at least as well as Keras, else None (the
    float graph serves); its comparison with Keras as metrics either way."""
    try:
        quantize_int8(float_graph, target, int8.calibration)
    except Exception as exc:  # int8 is optional: the float graph, already checked, serves
        print(f"== int8 graph not made ({type(exc).__name__}): the float graph serves")
        return None, {"int8_accepted": 0.0}
    check = check_int8(target, pixels, int8.test_labels, int8.keras_probabilities)
    verdict = "kept" if check.accepted else "not kept: the float graph serves"
    print(
        f"== int8 graph: balanced accuracy {check.int8_balanced_accuracy:.3f} vs Keras "
        f"{check.keras_balanced_accuracy:.3f} on {len(pixels)} test photos, {verdict}"
    )
    return (target if check.accepted else None), check.metrics()


def _compiled_graph(
    keras_path: Path, staging: Path, pixels: np.ndarray, runtime: GraphPolicy
) -> tuple[Path | None, float | None]:
    """Compile to ONNX and check it ("onnx": any failure stops the run; "auto": a network the
    converter cannot translate is served through Keras instead; "keras": no graph)."""
    if runtime == "keras":
        return None, None
    target = staging / ONNX_FILE
    try:
        return target, compile_and_check(keras_path, target, pixels)
    except CompiledGraphMismatch:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        if runtime == "onnx":
            raise ValueError(f"could not compile the network to ONNX ({reason})") from exc
        print(f"== the network could not be compiled to ONNX ({reason}): it serves through Keras")
        return None, None


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
    check_pixels: np.ndarray | None = None,
    runtime: GraphPolicy = "onnx",
    int8: Int8Inputs | None = None,
    reference: dict[str, Any] | None = None,
) -> ModelInfo:
    """Log the model to the active run and (optionally) register it as a new version. Its
    network is compiled to ONNX and checked on `check_pixels` (the run's test photos) first:
    a difference over 1e-4 stops here, with nothing logged or registered. With `int8` (training
    photos to calibrate on, the test labels and Keras's probabilities), an int8 graph is added
    and served if it classifies the test photos at least as well as Keras. `reference`
    (evaluation.served_reference) goes into the model for its drift metrics."""
    run_id = mlflow.active_run().info.run_id
    files = _model_files(
        keras_path, classes, image_size, resize_mode, run_id, runtime, check_pixels, int8,
        reference,
    )  # fmt: skip
    with files as (kwargs, checks):
        mlflow.log_metrics(checks)
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
    runtime: GraphPolicy = "onnx",
    check_pixels: np.ndarray | None = None,
    int8: Int8Inputs | None = None,
    reference: dict[str, Any] | None = None,
) -> Path:
    """Save the same pyfunc to a local folder (tests, offline inspection)."""
    files = _model_files(
        keras_path, classes, image_size, resize_mode, run_id, runtime, check_pixels, int8,
        reference,
    )  # fmt: skip
    with files as (kwargs, _):
        mlflow.pyfunc.save_model(path=str(path), **kwargs)
    return path
