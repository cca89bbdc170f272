"""Where a /invocations request spends its time, stage by stage, in process.

Each stage is timed with the very function the model server runs (MLflow's scoring server for
JSON, DataFrame, schema and serialisation; our pyfunc's own helpers for base64, decoding, resizing
and the forward call), so the split adds up to what `invocations()` costs. Figures only.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import _validate_prediction_input, scoring_server

from florisense_model.client import request_body
from florisense_model.model.labels import IMAGE_COLUMN, OUTPUT_COLUMNS
from florisense_model.model.preprocessing import fit_image, open_image, to_rgb
from florisense_model.model.pyfunc import decode_image_field
from florisense_model.perf.benchmark import first_answer_s, launched_server
from florisense_model.perf.http_load import photos_request, repeat_request
from florisense_model.perf.timing import time_calls
from florisense_model.stack.supervisor import group_rss_mb


def _p50_ms(call: Callable[[], Any], repeats: int) -> float:
    return round(statistics.median(time_calls(call, repeats, warmup=1)) * 1000, 3)


def profile_request(model_uri: str, images: list[bytes], repeats: int = 20) -> dict[str, Any]:
    """p50 milliseconds of every stage of one request carrying `images`."""
    model = mlflow.pyfunc.load_model(model_uri)
    inner = model.unwrap_python_model()
    schema = model.metadata.get_input_schema()
    body = request_body(images)
    frame = scoring_server.infer_and_parse_data(
        scoring_server._split_data_and_params(body)[0], schema
    )
    fields = frame[IMAGE_COLUMN].tolist()
    raw = [decode_image_field(value) for value in fields]
    rgb = [to_rgb(open_image(data), draft_size=inner.image_size) for data in raw]
    pixels = [np.asarray(fit_image(image, inner.image_size, inner.resize_mode)) for image in rgb]
    probabilities = inner._in_chunks(inner._network.forward, pixels)
    output = inner.predict(None, frame)

    def parse_dataframe():
        data, _ = scoring_server._split_data_and_params(body)
        return scoring_server.infer_and_parse_data(data, schema)

    stages = {
        "json_parse": lambda: scoring_server._decode_json_input(body),
        "dataframe_from_json": parse_dataframe,
        "schema_enforcement": lambda: _validate_prediction_input(
            frame, None, schema, model.metadata.get_params_schema()
        ),
        "base64_decode": lambda: [decode_image_field(value) for value in fields],
        "image_header": lambda: [open_image(data) for data in raw],
        "image_decode": lambda: [
            to_rgb(open_image(data), draft_size=inner.image_size) for data in raw
        ],
        "resize": lambda: [fit_image(image, inner.image_size, inner.resize_mode) for image in rgb],
        "stack_uint8": lambda: np.stack([np.asarray(p) for p in pixels]),
        # As the pyfunc runs it: one call, or chunks side by side for a large batch.
        "forward": lambda: inner._in_chunks(inner._network.forward, pixels),
        "output_frame": lambda: pd.DataFrame(
            [inner._row(p, None) for p in probabilities], columns=list(OUTPUT_COLUMNS), dtype=object
        ),
        "serialise_json": lambda: scoring_server.predictions_to_json(output, io.StringIO()),
    }
    timed = {name: _p50_ms(call, repeats) for name, call in stages.items()}
    # image_decode re-opens the header to decode: report it net.
    timed["image_decode"] = round(max(0.0, timed["image_decode"] - timed["image_header"]), 3)
    whole = _p50_ms(
        lambda: scoring_server.invocations(body, "application/json", model, schema), repeats
    )
    return {
        "images": len(images),
        "request_bytes": len(body),
        "stages_p50_ms": timed,
        "sum_of_stages_ms": round(sum(timed.values()), 3),
        "invocations_in_process_ms": whole,
    }


# Settings of the model server worth comparing on a small CPU machine: uvicorn workers (each a
# full copy of the model) and the runtime's threads per forward call (FLORISENSE_ONNX_THREADS;
# the default is one thread per call, see model/runtimes.py).
SERVER_SETTINGS: dict[str, dict[str, Any]] = {
    "1 worker, 1 thread per call (default)": {"workers": 1, "env": {}},
    "1 worker, 2 threads per call": {"workers": 1, "env": {"FLORISENSE_ONNX_THREADS": "2"}},
    "2 workers, 1 thread per call": {"workers": 2, "env": {}},
}


def compare_server_settings(
    tracking_uri: str,
    one_photo: bytes,
    batch_photos: list[bytes],
    settings: dict[str, dict[str, Any]],
    port: int,
    requests_per_worker: int = 20,
) -> dict[str, Any]:
    """Start `mlflow models serve` once per setting and load /invocations directly: latency at
    concurrency 1, throughput at concurrency 4 and 8, batch throughput, memory."""
    one, batch = photos_request([one_photo]), photos_request(batch_photos, "batch")
    results: dict[str, Any] = {}
    for name, setting in settings.items():
        started = time.perf_counter()
        with launched_server(tracking_uri, port, setting["workers"], setting["env"]) as process:
            first = first_answer_s(process, port, one.body, started)
            if first is None:
                results[name] = {"error": "the server did not answer"}
                continue
            url = f"http://127.0.0.1:{port}/invocations"
            repeat_request(url, one, setting["workers"] * 2, 3)  # every worker warmed up
            results[name] = {
                "workers": setting["workers"],
                "env": setting["env"],
                "start_s": round(first, 2),
                "c1": repeat_request(url, one, 1, requests_per_worker),
                "c4": repeat_request(url, one, 4, requests_per_worker),
                "c8": repeat_request(url, one, 8, requests_per_worker),
                f"batch{len(batch_photos)}_c1": repeat_request(
                    url, batch, 1, max(3, requests_per_worker // 4)
                ),
                "rss_mb": group_rss_mb(process.pid),
            }
    return results
