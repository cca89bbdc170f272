"""The registered model: an mlflow.pyfunc that takes base64 images and answers a verdict per row.

Imports only what serving needs (no training or plotting libraries), so `mlflow models serve`
starts fast and the model's pip_requirements stay small.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from florisense_model.model import metrics, request_guard
from florisense_model.model.heatmaps import DANDELION, TILES_PER_SIDE, Grid, photo_heatmaps
from florisense_model.model.labels import (
    DEFAULT_LANGUAGE,
    DISPLAY_NAMES,
    EXPLAIN_PARAM,
    HEATMAP_COLUMN,
    IMAGE_COLUMN,
    OUTPUT_COLUMNS,
)
from florisense_model.model.preprocessing import (
    ImageError,
    PhotoRegion,
    preprocess_image,
    preprocess_tiles,
)
from florisense_model.model.runtimes import Forward, default_runtime, load_network

# Larger batches are cut into chunks of this size, forwarded in parallel: bounded memory, and
# measured on 2 cores (int8, one thread a call) 4 chunks of 8 beat one call of 32 (224 and 236
# vs 131 and 216 images/s, two runs).
CHUNK_ROWS = 8
_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def decode_image_field(value: Any) -> bytes:
    """A base64 string (optionally a `data:image/...;base64,` URL) -> bytes, or ImageError."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise ImageError("missing image: expected a base64 string, got null", "missing")
    if not isinstance(value, str):
        raise ImageError(
            f"invalid image: expected a base64 string, got {type(value).__name__}", "not_base64"
        )
    text = value.strip()
    if text[:5].lower() == "data:":
        text = _DATA_URL.sub("", text, count=1)
    if not text:
        raise ImageError("empty image: the base64 string is empty", "empty")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Rare path: wrapped base64 (line breaks every 76 characters). Stripping whitespace up front
    # cost 0.9 ms per 45 KB image, as much as decoding the JPEG itself.
    try:
        return base64.b64decode(_WHITESPACE.sub("", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError("invalid base64 in image", "not_base64") from exc


class FlorisenseModel(mlflow.pyfunc.PythonModel):
    """Loads labels.json and the network (the compiled ONNX graph, or model.keras: see
    runtimes.py); predicts with one forward call per request, a large batch as chunks of 8 side
    by side. With the param `explain`, each row also gets a heat map (class_maps.py)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        request_guard.install()  # wraps `mlflow models serve`'s JSON step: see request_guard.py
        config = dict(context.model_config or {})
        with open(context.artifacts["labels"], encoding="utf-8") as handle:
            labels = json.load(handle)
        self.classes: list[str] = list(labels["classes"])
        self.display: dict[str, str] = labels.get("display", DISPLAY_NAMES[DEFAULT_LANGUAGE])
        self.image_size = int(labels["image_size"])
        self.resize_mode = str(labels["resize_mode"])
        self.run_id: str | None = config.get("run_id") or labels.get("run_id")
        self.runtime = str(config.get("runtime") or default_runtime(context.artifacts))
        self._network = load_network(self.runtime, context.artifacts, self.image_size)
        self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="florisense")
        # Only in a model server the stack started (FLORISENSE_METRICS_PORT): see metrics.py.
        self._metrics = metrics.serve_from_environment(
            self.classes,
            self.run_id or "",
            self.runtime,
            metrics.Reference.load(context.artifacts.get("reference")),
        )

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        started = time.perf_counter()
        try:
            rows, columns, error_kinds = self._answer(model_input, params)
        except Exception:  # refused or failed: counted, then MLflow answers it
            if self._metrics is not None:
                self._metrics.failed(time.perf_counter() - started)
            raise
        if self._metrics is not None:
            answered = [(row["label"], row["confidence"]) for row in rows if row["label"]]
            self._metrics.observe(answered, error_kinds, len(rows), time.perf_counter() - started)
        # object dtype: pandas 3 would turn None into NaN, which is not valid JSON for clients.
        return pd.DataFrame(rows, columns=columns, dtype=object)

    def _answer(
        self, model_input: pd.DataFrame, params: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
        """(one answer per row, the columns, the kinds of the row errors)."""
        explain = self._explain_asked(params)
        frame = _as_frame(model_input)
        pixels: list[np.ndarray] = []
        tiles: list[tuple[np.ndarray, PhotoRegion]] = []
        errors: list[str | None] = []
        error_kinds: list[str] = []
        for value in frame[IMAGE_COLUMN].tolist():
            try:
                image = decode_image_field(value)
                array = preprocess_image(image, self.image_size, self.resize_mode)
                if explain:  # before anything is kept: a row is kept whole or not at all
                    tiles.append(
                        preprocess_tiles(image, self.image_size, self.resize_mode, TILES_PER_SIDE)
                    )
                pixels.append(array)
                errors.append(None)
            except ImageError as exc:
                errors.append(str(exc))
                error_kinds.append(exc.kind)
        probabilities = self._in_chunks(self._network.forward, pixels)
        heatmaps = self._heatmaps(tiles) if explain else []
        rows, valid = [], iter(range(len(pixels)))
        for error in errors:
            index = None if error else next(valid)
            row = self._row(None if index is None else probabilities[index], error)
            if explain:
                row[HEATMAP_COLUMN] = None if index is None else heatmaps[index]
            rows.append(row)
        columns = [*OUTPUT_COLUMNS, HEATMAP_COLUMN] if explain else list(OUTPUT_COLUMNS)
        return rows, columns, error_kinds

    @property
    def can_explain(self) -> bool:
        return self._network.class_maps is not None and DANDELION in self.classes

    def _explain_asked(self, params: dict[str, Any] | None) -> bool:
        # MLflow has checked the type; an explicit null passes its check and means "no".
        if not (params or {}).get(EXPLAIN_PARAM):
            return False
        if not self.can_explain:
            raise mlflow.exceptions.MlflowException.invalid_parameter_value(
                "this model version cannot draw heat maps (its network does not end in global "
                "pooling and a dense layer): predict without 'explain'"
            )
        return True

    def _heatmaps(self, tiles: list[tuple[np.ndarray, PhotoRegion]]) -> list[Grid]:
        """Each photo's heat map, from the class maps of its tiles (heatmaps.py)."""
        class_maps = self._network.class_maps
        assert class_maps is not None  # checked by _explain_asked
        return photo_heatmaps(
            tiles, partial(self._in_chunks, class_maps), self.classes, self.image_size
        )

    def _in_chunks(self, forward: Forward, pixels: list[np.ndarray]) -> np.ndarray:
        """`forward` on the stacked images: one call, or beyond CHUNK_ROWS one call per chunk,
        run side by side: each uses one core (one thread per call, see runtimes.py), so a
        32-image request uses them all."""
        if not pixels:
            return np.zeros((0, len(self.classes)), np.float32)
        batch = np.stack(pixels)
        if len(batch) <= CHUNK_ROWS:
            return forward(batch)
        chunks = [batch[start : start + CHUNK_ROWS] for start in range(0, len(batch), CHUNK_ROWS)]
        return np.concatenate(list(self._pool.map(forward, chunks)))

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
