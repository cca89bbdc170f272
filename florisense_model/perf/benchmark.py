"""Speed and memory of a registered model: in process (the pyfunc's predict against the floor,
preprocessing plus one compiled forward call) and as `mlflow models serve` (cold start, resident
memory). The HTTP lines come from http_load. Figures only: nothing here asserts a time."""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from florisense_model.config import PRODUCTION_MODEL_URI
from florisense_model.model.metrics import Reference, ServingMetrics
from florisense_model.model.preprocessing import preprocess_image
from florisense_model.perf.http_load import photos_request, repeat_request
from florisense_model.perf.timing import summary, time_calls
from florisense_model.photos import encode_file
from florisense_model.stack.serve import serve_command
from florisense_model.stack.settings import BIN, free_port
from florisense_model.stack.supervisor import group_rss_mb, healthy, terminate_group


def benchmark_in_process(
    model_uri: str, images: list[Path], repeats: int = 30, batch: int = 32
) -> dict[str, Any]:
    """The pyfunc's predict against two floors (preprocessing plus one forward call): the
    runtime the model serves with, and TensorFlow's compiled call on model.keras, the runtime
    every version served with before the compiled graph."""
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(model_uri)
    load_s = time.perf_counter() - started
    served = model.unwrap_python_model()
    tensorflow = mlflow.pyfunc.load_model(model_uri, model_config={"runtime": "keras"})
    one = max(images, key=lambda p: p.stat().st_size)  # the largest photo: the slowest decode
    batch_files = [images[i % len(images)] for i in range(batch)]
    one_frame = pd.DataFrame({"image": [encode_file(one)]})
    batch_frame = pd.DataFrame({"image": [encode_file(p) for p in batch_files]})
    one_bytes = one.read_bytes()
    batch_bytes = [p.read_bytes() for p in batch_files]

    def floor(inner: Any, data: list[bytes]) -> Callable[[], Any]:
        def call():
            pixels = [preprocess_image(b, inner.image_size, inner.resize_mode) for b in data]
            return inner._network.forward(np.stack(pixels))

        return call

    few = max(3, repeats // 6)
    keras_inner = tensorflow.unwrap_python_model()
    explain = {"explain": True}
    explained = (
        {
            "pyfunc_one_image_explain": summary(
                time_calls(lambda: model.predict(one_frame, params=explain), repeats)
            ),
            f"pyfunc_batch_{batch}_explain": summary(
                time_calls(lambda: model.predict(batch_frame, params=explain), few), batch
            ),
        }
        if served.can_explain
        else {}
    )
    return {
        "model_uri": model_uri,
        "runtime": served.runtime,
        "image": {"file": one.name, "bytes": len(one_bytes)},
        "load_seconds": round(load_s, 2),
        "tensorflow_floor_one_image": summary(time_calls(floor(keras_inner, [one_bytes]), repeats)),
        "floor_one_image": summary(time_calls(floor(served, [one_bytes]), repeats)),
        "pyfunc_one_image": summary(time_calls(lambda: model.predict(one_frame), repeats)),
        f"tensorflow_floor_batch_{batch}": summary(
            time_calls(floor(keras_inner, batch_bytes), few), batch
        ),
        f"floor_batch_{batch}": summary(time_calls(floor(served, batch_bytes), few), batch),
        f"pyfunc_batch_{batch}": summary(
            time_calls(lambda: model.predict(batch_frame), few), batch
        ),
    } | explained


@contextmanager
def launched_server(
    tracking_uri: str,
    port: int,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    bin_dir: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """`mlflow models serve` for the Production model on 127.0.0.1:`port`, from this environment
    or the one whose scripts are in `bin_dir`; stopped on exit (the whole process group)."""
    scripts = bin_dir or BIN
    env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        serve_command(PRODUCTION_MODEL_URI, "127.0.0.1", port, workers, bin_dir=str(scripts)),
        env=env | (extra_env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        terminate_group(process.pid)


def seconds_until(
    process: subprocess.Popen, started: float, timeout_s: float, answered: Callable[[], bool]
) -> float | None:
    """Seconds from `started` until `answered()`, or None at the timeout or if the server exits."""
    while time.perf_counter() - started < timeout_s and process.poll() is None:
        if answered():
            return time.perf_counter() - started
        time.sleep(0.05)
    return None


def first_answer_s(
    process: subprocess.Popen, port: int, body: bytes, started: float, timeout_s: float = 180.0
) -> float | None:
    """Seconds from `started` to the first 200 from /invocations, or None at the timeout."""

    def predicts() -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            return connection.getresponse().status == 200
        except OSError:
            return False

    return seconds_until(process, started, timeout_s, predicts)


def cold_start(
    tracking_uri: str,
    port: int,
    photo: bytes,
    timeout_s: float = 180.0,
    bin_dir: Path | None = None,
) -> dict:
    """Launch `mlflow models serve` for the Production model (from `bin_dir`'s environment, else
    this one) and time it to /ping and to the first answered prediction; then report its
    resident memory after a few predictions."""
    request = photos_request([photo])
    started = time.perf_counter()
    with launched_server(tracking_uri, port, bin_dir=bin_dir) as process:
        ping = seconds_until(
            process, started, timeout_s, lambda: healthy(f"http://127.0.0.1:{port}/ping")
        )
        first = first_answer_s(process, port, request.body, started, timeout_s)
        if first is None:
            return {"cold_start_s": None, "error": "no answer before the timeout"}
        repeat_request(f"http://127.0.0.1:{port}/invocations", request, 1, 10)
        return {
            "to_ping_s": round(ping, 2) if ping else None,
            "cold_start_s": round(first, 2),
            "rss_mb": group_rss_mb(process.pid),
            "environment": str((bin_dir or BIN).parent),
        }


def metrics_cost(
    tracking_uri: str, photo: bytes, requests: int, rounds: int = 4, bin_dir: Path | None = None
) -> dict:
    """/invocations at concurrency 1 on fresh model servers of the Production version without
    and with the model's metrics (model/metrics.py), alternately, `rounds` times: the cost of the
    metrics on a request, and the run's own noise (the spread between rounds of one setting);
    and the recording itself, timed in process."""
    request = photos_request([photo])
    figures: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(rounds):
        for setting in figures:
            port = free_port()
            metrics_port = str(free_port()) if setting == "with" else ""
            env = {"FLORISENSE_METRICS_PORT": metrics_port, "FLORISENSE_METRICS_HOST": "127.0.0.1"}
            with launched_server(tracking_uri, port, extra_env=env, bin_dir=bin_dir) as process:
                if first_answer_s(process, port, request.body, time.perf_counter()) is None:
                    return {"error": f"the model server ({setting} metrics) did not answer"}
                url = f"http://127.0.0.1:{port}/invocations"
                figures[setting].append(repeat_request(url, request, 1, requests)["p50_ms"])
    without, with_metrics = (float(np.median(figures[s])) for s in ("without", "with"))
    return {
        "record_one_request_us": _recording_cost_us(1),
        "record_32_rows_us": _recording_cost_us(32),
        "invocations_c1_p50_ms_without_metrics": figures["without"],
        "invocations_c1_p50_ms_with_metrics": figures["with"],
        "cost_p50_ms": round(with_metrics - without, 2),
        "requests_per_round": requests,
    }


def _recording_cost_us(rows: int, repeats: int = 2000) -> float:
    """Microseconds to record one request of `rows` answered rows (ServingMetrics.observe, what
    the pyfunc adds to a request), median of `repeats`."""
    recorder = ServingMetrics(["dandelion", "grass"], "0", "", "onnx", Reference())
    answered = [("dandelion", 0.93)] * rows
    samples = time_calls(lambda: recorder.observe(answered, [], rows, 0.01), repeats)
    return round(float(np.median(samples)) * 1e6, 1)
