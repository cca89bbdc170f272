"""Bounded HTTP load on 127.0.0.1, cold start and memory of `mlflow models serve`: the serving
side of scripts/benchmark.py. Figures only: nothing here asserts a time."""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from florisense_model.serving import MODEL_URI, serve_command
from florisense_model.stack import process_group, terminate_group

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def load(
    url: str,
    body: bytes,
    concurrency: int,
    requests_per_worker: int,
    images_per_request: int = 1,
    max_seconds: float = 60.0,
) -> dict[str, Any]:
    """`concurrency` workers, each with one keep-alive connection, send `requests_per_worker`
    identical POSTs (or stop at `max_seconds`). Latency percentiles, throughput, errors by kind."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"benchmarks only talk to 127.0.0.1, not {parts.hostname}")
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        for _ in range(requests_per_worker):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            try:
                connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                kind = None if response.status == 200 else f"http {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                kind = type(exc).__name__
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            elapsed = time.perf_counter() - started
            with lock:
                if kind:
                    errors[kind] += 1
                else:
                    latencies.append(elapsed)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ok = len(latencies)
    return {
        "concurrency": concurrency,
        "requests": ok + sum(errors.values()),
        "images_per_request": images_per_request,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if ok else None,
        "p95_ms": round(_percentile(latencies, 95) * 1000, 2) if ok else None,
        "p99_ms": round(_percentile(latencies, 99) * 1000, 2) if ok else None,
        "requests_per_s": round(ok / wall, 2),
        "images_per_s": round(ok * images_per_request / wall, 2),
        "errors": dict(errors),
    }


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group (the server and its workers)."""
    total_kb = 0
    for pid in process_group(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return round(total_kb / 1024, 1)


@contextmanager
def launched_server(
    tracking_uri: str, port: int, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """`mlflow models serve` for the Production model on 127.0.0.1:`port`, stopped on exit
    (the whole process group: uvicorn and its workers)."""
    mlflow = Path(sys.executable).parent / "mlflow"
    env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        serve_command(MODEL_URI, "127.0.0.1", port, workers),
        env=env | (extra_env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        terminate_group(process.pid)


def first_answer_s(
    process: subprocess.Popen, port: int, body: bytes, started: float, timeout_s: float = 180.0
) -> float | None:
    """Seconds from `started` to the first 200 from /invocations, or None at the timeout."""
    while time.perf_counter() - started < timeout_s and process.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    return None


def cold_start(tracking_uri: str, port: int, body: bytes, timeout_s: float = 180.0) -> dict:
    """Launch `mlflow models serve` for the Production model and time it to the first answered
    prediction; then report its resident memory after a few predictions, and stop it."""
    started = time.perf_counter()
    with launched_server(tracking_uri, port) as process:
        first = first_answer_s(process, port, body, started, timeout_s)
        if first is None:
            return {"cold_start_s": None, "error": "no answer before the timeout"}
        load(f"http://127.0.0.1:{port}/invocations", body, 1, 10)
        return {"cold_start_s": round(first, 2), "rss_mb": group_rss_mb(process.pid)}
