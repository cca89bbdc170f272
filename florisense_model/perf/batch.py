"""Batch scoring on Spark against the in-process pyfunc, on the same photos in one run: images per
second for each, and where Spark's time goes (its start, the model loaded by each Python worker,
predicting, and the rest: listing, Arrow transfers, scheduling, writing Parquet)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from florisense_model.batch_scoring import resolve_model, score_batch
from florisense_model.photos import encode_file, files_under


def in_process(model_uri: str, photos: list[Path], batch: int = 64) -> dict[str, float]:
    """Load once, then predict every photo in batches (the rows a Spark task's Arrow batch
    holds): the same work without Spark."""
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(model_uri)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        model.predict(pd.DataFrame({"image": [encode_file(p) for p in chunk]}))
    predict_s = time.perf_counter() - started
    return {
        "load_s": round(load_s, 2),
        "predict_s": round(predict_s, 2),
        "images_per_s": round(len(photos) / predict_s, 1),
    }


def compare(model_uri: str, folder: Path, master: str, tracking_uri: str | None) -> dict[str, Any]:
    photos = files_under(folder)
    pinned = resolve_model(model_uri, tracking_uri).uri
    with tempfile.TemporaryDirectory(prefix="florisense-batch-") as tmp:
        spark = score_batch(pinned, str(folder), f"{tmp}/out.parquet", master, say=print)
    local = in_process(pinned, photos)
    # An estimate: each Python worker loads the model once (side by side, so about one load's
    # time) and predicts its share; what is left is Spark's own work.
    rest = spark["scoring_s"] - local["load_s"] - local["predict_s"]
    return {
        "photos": len(photos),
        "model_uri": pinned,
        "spark": spark,
        "in_process": local,
        "spark_vs_in_process": round(spark["images_per_s"] / local["images_per_s"], 2),
        "where_spark_time_goes_s": {
            "spark_start": spark["spark_start_s"],
            "model_load_per_worker": local["load_s"],
            "predict_in_process_equivalent": local["predict_s"],
            "rest_listing_arrow_scheduling_parquet": round(rest, 2),
        },
    }
