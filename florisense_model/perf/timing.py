"""Timing a call in process: repeated, after a warm-up, summarised as percentiles."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank q-th percentile of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_calls(call: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call of `call`, `repeats` times, after `warmup` untimed calls (imports,
    TensorFlow tracing)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def summary(samples: list[float], images_per_call: int = 1) -> dict[str, float]:
    """p50/p95/p99 in milliseconds and images per second (at the median)."""
    p50 = statistics.median(samples)
    return {
        "p50_ms": round(p50 * 1000, 2),
        "p95_ms": round(percentile(samples, 95) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
        "images_per_s": round(images_per_call / p50, 1),
        "calls": len(samples),
    }
