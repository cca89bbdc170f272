"""The registered model: an mlflow.pyfunc that takes base64 images and answers a verdict per row.

Imports only what serving needs (no training or plotting libraries), so `mlflow models serve`
starts fast and the model's pip_requirements stay small.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from florisense_model.model import request_guard
from florisense_model.model.labels import (
    DEFAULT_LANGUAGE,
    DISPLAY_NAMES,
    IMAGE_COLUMN,
    OUTPUT_COLUMNS,
)
from florisense_model.model.preprocessing import ImageError, preprocess_image

# Larger batches are cut into chunks of this size, forwarded in parallel: bounded memory, and
# measured on 2 cores 4 chunks of 8 beat one call of 32 (98-107 vs 78 images/s).
CHUNK_ROWS = 8
_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def decode_image_field(value: Any) -> bytes:
    """A base64 string (optionally a `data:image/...;base64,` URL) -> bytes, or ImageError."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise ImageError("missing image: expected a base64 string, got null")
    if not isinstance(value, str):
        raise ImageError(f"invalid image: expected a base64 string, got {type(value).__name__}")
    text = value.strip()
    if text[:5].lower() == "data:":
        text = _DATA_URL.sub("", text, count=1)
    if not text:
        raise ImageError("empty image: the base64 string is empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Rare path: wrapped base64 (line breaks every 76 characters). Stripping whitespace up front
    # cost 0.9 ms per 45 KB image, as much as decoding the JPEG itself.
    try:
        return base64.b64decode(_WHITESPACE.sub("", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError("invalid base64 in image") from exc


class FlorisenseModel(mlflow.pyfunc.PythonModel):
    """Loads model.keras and labels.json; predicts with compiled forward calls (a large batch as
    chunks of 8 side by side)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        import tensorflow as tf

        request_guard.install()  # wraps `mlflow models serve`'s JSON step: see request_guard.py
        limit_tensorflow_threads(tf)
        import keras

        config = dict(context.model_config or {})
        with open(context.artifacts["labels"], encoding="utf-8") as handle:
            labels = json.load(handle)
        self.classes: list[str] = list(labels["classes"])
        self.display: dict[str, str] = labels.get("display", DISPLAY_NAMES[DEFAULT_LANGUAGE])
        self.image_size = int(labels["image_size"])
        self.resize_mode = str(labels["resize_mode"])
        self.run_id: str | None = config.get("run_id") or labels.get("run_id")
        model = keras.saving.load_model(context.artifacts["keras_model"], compile=False)
        spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)
        # One traced graph for every batch size: ~5x faster than model.predict per call.
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self._forward(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))  # warm up
        self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="florisense")

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        frame = _as_frame(model_input)
        pixels: list[np.ndarray] = []
        errors: list[str | None] = []
        for value in frame[IMAGE_COLUMN].tolist():
            try:
                image = decode_image_field(value)
                pixels.append(preprocess_image(image, self.image_size, self.resize_mode))
                errors.append(None)
            except ImageError as exc:
                errors.append(str(exc))
        probabilities = self._probabilities(pixels)
        rows, valid = [], iter(probabilities)
        for error in errors:
            rows.append(self._row(None if error else next(valid), error))
        # object dtype: pandas 3 would turn None into NaN, which is not valid JSON for clients.
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS), dtype=object)

    def _probabilities(self, pixels: list[np.ndarray]) -> np.ndarray:
        if not pixels:
            return np.zeros((0, len(self.classes)), np.float32)
        batch = np.stack(pixels)
        if len(batch) <= CHUNK_ROWS:
            return self._forward(batch).numpy()
        # One forward call per chunk, run side by side: each uses one core (see
        # limit_tensorflow_threads), so a 32-image request uses them all.
        chunks = [batch[start : start + CHUNK_ROWS] for start in range(0, len(batch), CHUNK_ROWS)]
        return np.concatenate(list(self._pool.map(lambda c: self._forward(c).numpy(), chunks)))

    def _row(self, probabilities: np.ndarray | None, error: str | None) -> dict[str, Any]:
        if probabilities is None:
            # None (JSON null), never NaN: NaN is not valid JSON for browsers.
            return dict.fromkeys(OUTPUT_COLUMNS[:4]) | {"error": error, "run_id": self.run_id}
        best = int(np.argmax(probabilities))
        label = self.classes[best]
        return {
            "label": label,
            "label_display": self.display.get(label, label),
            "confidence": float(probabilities[best]),
            "probabilities": {
                c: float(p) for c, p in zip(self.classes, probabilities, strict=True)
            },
            "error": None,
            "run_id": self.run_id,
        }


def limit_tensorflow_threads(tf: Any) -> None:
    """One intra-op thread per forward call, unless the operator set TF_NUM_INTRAOP_THREADS.

    Measured on 2 cores: a one-image forward call takes the same ~19 ms with TensorFlow's default
    pool (one thread per core) as with one thread, but the default burns ~30 CPU-ms per image
    instead of ~20 (idle pool threads spin). With one thread, concurrent requests and the chunks
    of a large batch run side by side, one per core.
    """
    if "TF_NUM_INTRAOP_THREADS" in os.environ:
        return
    # RuntimeError: TensorFlow already started in this process (a notebook, a test): leave it.
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(1)


def _as_frame(model_input: Any) -> pd.DataFrame:
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, dict):
        frame = pd.DataFrame(model_input)
    else:
        frame = pd.DataFrame(list(model_input))
    if IMAGE_COLUMN not in frame.columns:
        raise ValueError(f"input must have a column '{IMAGE_COLUMN}' of base64 images")
    return frame
