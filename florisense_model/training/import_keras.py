"""Register an existing Keras classifier file as the same FloriSense pyfunc (the `import_keras`
entry point; replaces the original product's hand-made upload script)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import mlflow
from keras import layers

from florisense_model.config import DEFAULT_RESIZE_MODE, REGISTERED_MODEL_NAME
from florisense_model.model.labels import CLASSES
from florisense_model.training import data, evaluation, packaging
from florisense_model.training.gate import run_gate
from florisense_model.training.sources import resolve_data_dir
from florisense_model.training.tracking import log_new_params

# How the imported network expects its pixels; the wrapper adds the matching scaling layer so
# the registered model, like every FloriSense model, takes raw uint8 RGB.
PIXEL_SCALINGS = {
    "mobilenet": (1.0 / 127.5, -1.0),  # [-1, 1], keras.applications.mobilenet_v2.preprocess_input
    "unit": (1.0 / 255.0, 0.0),  # [0, 1]
    "none": (1.0, 0.0),  # 0..255: the network scales itself
}


def wrap_classifier(model: keras.Model, num_classes: int, pixel_scaling: str) -> keras.Model:
    """uint8 input -> scaling layer -> the imported network; checks shapes first."""
    if pixel_scaling not in PIXEL_SCALINGS:
        raise ValueError(
            f"pixel_scaling must be one of {sorted(PIXEL_SCALINGS)}, got {pixel_scaling!r}"
        )
    input_shape = tuple(model.input_shape)
    if len(input_shape) != 4 or input_shape[3] != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(f"expected a square RGB image input (None, N, N, 3), got {input_shape}")
    if input_shape[1] is None:
        raise ValueError("the model's input size is not fixed; it must be (None, N, N, 3)")
    output_shape = tuple(model.output_shape)
    if output_shape[-1] != num_classes:
        raise ValueError(f"expected {num_classes} output classes, got output shape {output_shape}")
    scale, offset = PIXEL_SCALINGS[pixel_scaling]
    inputs = keras.Input(shape=input_shape[1:], dtype="uint8", name="image")
    x = layers.Rescaling(scale, offset=offset, name="scale_imported")(inputs)
    return keras.Model(inputs, model(x, training=False), name="florisense_imported")


def import_keras(
    keras_path: str,
    classes: tuple[str, ...] = CLASSES,
    pixel_scaling: str = "mobilenet",
    resize_mode: str = DEFAULT_RESIZE_MODE,
    data_dir: str = "",
    promote: str = "auto",
    seed: int = 42,
    registered_model_name: str = REGISTERED_MODEL_NAME,
) -> dict[str, Any]:
    """Log the file as a pyfunc run, register a version, evaluate and gate if photos are given."""
    source = Path(keras_path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"Keras model file not found: {source}")
    try:
        original = keras.saving.load_model(source, compile=False)
    except Exception as exc:
        raise ValueError(f"{source.name} is not a loadable Keras model: {exc}") from exc
    model = wrap_classifier(original, len(classes), pixel_scaling)
    image_size = int(model.input_shape[1])

    with mlflow.start_run() as run, tempfile.TemporaryDirectory(prefix="florisense-") as tmp:
        mlflow.set_tags({"florisense.entry_point": "import_keras", "source_file": source.name})
        log_new_params(
            {
                "keras_path": str(source),
                "pixel_scaling": pixel_scaling,
                "image_size": image_size,
                "resize_mode": resize_mode,
                "classes": ",".join(classes),
                "promote": promote,
                "seed": seed,
            }
        )
        score, test_files, x = None, [], None
        if data_dir.strip():
            dataset = data.scan_dataset(resolve_data_dir(data_dir), classes=classes)
            test_samples = data.split_dataset(dataset, seed=seed).test
            test_files = [(s.path, s.label) for s in test_samples]
            x, y = data.load_pixels(test_samples, classes, image_size, resize_mode)
            metrics = evaluation.classification_metrics(y, model.predict(x, verbose=0), classes)
            mlflow.log_metrics(metrics)
            mlflow.log_param("dataset_sha256", dataset.content_hash)
            score = metrics[evaluation.GATE_METRIC]
        keras_file = Path(tmp) / "model.keras"
        model.save(keras_file)
        # Compiled to ONNX when the converter can translate it; served through Keras otherwise.
        info = packaging.log_pyfunc_model(
            keras_file,
            list(classes),
            image_size,
            resize_mode,
            registered_model_name,
            check_pixels=x,
            runtime="auto",
        )
        version = str(info.registered_model_version)
        gate = run_gate(registered_model_name, version, promote, score, test_files, list(classes))
        mlflow.set_tags({"registered_version": version, "gate.decision": gate.decision})
    summary = {"run_id": run.info.run_id, "version": version, "gate": asdict(gate)}
    print(json.dumps(summary, indent=2))
    return summary
