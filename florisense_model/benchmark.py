"""In-process speed of a registered model: the pyfunc's predict for one image and for a batch,
against the floor (preprocessing plus one compiled forward call). Figures, never assertions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from florisense_model.model_package import encode_file
from florisense_model.preprocessing import preprocess_image


def _timings(call: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _summary(samples: list[float], images_per_call: int) -> dict[str, float]:
    p50 = statistics.median(samples)
    return {
        "p50_ms": round(p50 * 1000, 2),
        "p95_ms": round(float(np.percentile(samples, 95)) * 1000, 2),
        "p99_ms": round(float(np.percentile(samples, 99)) * 1000, 2),
        "images_per_s": round(images_per_call / p50, 1),
        "calls": len(samples),
    }


def benchmark_in_process(
    model_uri: str, images: list[Path], repeats: int = 30, batch: int = 32
) -> dict[str, Any]:
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(model_uri)
    load_s = time.perf_counter() - started
    inner = model.unwrap_python_model()
    one = max(images, key=lambda p: p.stat().st_size)  # the largest photo: the slowest decode
    batch_files = [images[i % len(images)] for i in range(batch)]
    one_frame = pd.DataFrame({"image": [encode_file(one)]})
    batch_frame = pd.DataFrame({"image": [encode_file(p) for p in batch_files]})
    one_bytes = one.read_bytes()
    batch_bytes = [p.read_bytes() for p in batch_files]

    def floor(data: list[bytes]) -> Callable[[], Any]:
        def call():
            pixels = [preprocess_image(b, inner.image_size, inner.resize_mode) for b in data]
            return inner._forward(np.stack(pixels)).numpy()

        return call

    return {
        "model_uri": model_uri,
        "image": {"file": one.name, "bytes": len(one_bytes)},
        "load_seconds": round(load_s, 2),
        "floor_one_image": _summary(_timings(floor([one_bytes]), repeats), 1),
        "pyfunc_one_image": _summary(_timings(lambda: model.predict(one_frame), repeats), 1),
        f"floor_batch_{batch}": _summary(_timings(floor(batch_bytes), max(3, repeats // 6)), batch),
        f"pyfunc_batch_{batch}": _summary(
            _timings(lambda: model.predict(batch_frame), max(3, repeats // 6)), batch
        ),
    }
