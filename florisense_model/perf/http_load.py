"""The one HTTP load loop (benchmark, load test, chaos): bounded clients on 127.0.0.1, each with
one keep-alive connection, cycling through request kinds; every answer is checked against what
its kind should get.

Why not Locust: its reports are per endpoint, not per request kind with a verdict on each body;
it needs gevent (monkey-patching) and a second process model for what is a 100-line loop here;
and it adds a dependency chain to a tool whose figures must be exactly reproducible.
"""

from __future__ import annotations

import http.client
import itertools
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from florisense_model.client import request_body
from florisense_model.perf.timing import percentile

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class RequestKind:
    name: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    expected_status: int = 200
    rows: int = 0  # for 200 answers: how many predictions must come back
    row_errors: int = 0  # ... and how many of them must carry a per-row error


def photos_request(
    photos: list[bytes], name: str = "valid-photo", explain: bool = False
) -> RequestKind:
    """A request with these photos: 200 and one verdict per photo (with heat maps if
    `explain`)."""
    return RequestKind(name, request_body(photos, explain), rows=len(photos))


def verdict(kind: RequestKind, status: int, raw: bytes) -> str | None:
    """None if the answer is right for the kind, else what was wrong."""
    if status >= 500:
        return f"http {status}"
    if status == 429:
        try:
            return None if "too many requests" in json.loads(raw)["error"] else "429 without JSON"
        except (ValueError, KeyError, TypeError):
            return "429 without JSON"
    if status != kind.expected_status:
        return f"http {status} (expected {kind.expected_status})"
    try:
        document = json.loads(raw)
    except ValueError:
        return "answer is not JSON"
    if status != 200:
        return None if isinstance(document, dict) and document.get("error") else "no error field"
    rows = document.get("predictions", [])
    if len(rows) != kind.rows:
        return f"{len(rows)} rows for {kind.rows} photos"
    if sum(1 for row in rows if row.get("error")) != kind.row_errors:
        return "wrong per-row errors"
    return None


def run_load(
    url: str,
    mix: list[RequestKind],
    concurrency: int,
    duration_s: float = 60.0,
    requests_per_client: int | None = None,
) -> dict[str, Any]:
    """`concurrency` clients cycle through `mix` until `duration_s` has passed (or each has sent
    `requests_per_client`). Latency percentiles, throughput, and every answer by kind."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"load is only sent to 127.0.0.1, not {parts.hostname}")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    images = 0
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def client(offset: int) -> None:
        nonlocal images
        connection, used = connect(), 0
        kinds = itertools.islice(itertools.cycle(mix), offset, None)
        for kind in itertools.islice(kinds, requests_per_client):
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            for attempt in (1, 2):
                try:
                    connection.request("POST", parts.path, kind.body, kind.headers)
                    response = connection.getresponse()
                    status, raw = response.status, response.read()
                    problem = verdict(kind, status, raw)
                    used += 1
                    break
                except (OSError, http.client.HTTPException) as exc:
                    status, problem = 0, f"lost: {type(exc).__name__}"
                    connection.close()
                    stale, connection, used = used > 0, connect(), 0
                    if not (stale and attempt == 1):
                        break
                    # A kept-alive connection the server closed while idle (nginx reloading):
                    # retried once on a new one, as browsers and HTTP libraries do.
                    with lock:
                        statuses["stale keep-alive connection, retried"] += 1
            elapsed = time.perf_counter() - started
            with lock:
                statuses[f"{kind.name} {status}"] += 1
                if problem:
                    unexpected[f"{kind.name}: {problem}"] += 1
                if status and status != 429:
                    latencies.append(elapsed)
                if status == 200 and not problem:
                    images += kind.rows
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    retried = statuses.pop("stale keep-alive connection, retried", 0)
    total = sum(statuses.values())
    return {
        "url": url,
        "concurrency": concurrency,
        "duration_s": round(wall, 1),
        "requests": total,
        "images_per_request": max(kind.rows for kind in mix),
        "requests_per_s": round(total / wall, 1),
        "answered_per_s": round(len(latencies) / wall, 1),
        "images_per_s": round(images / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "rate_limited": sum(n for key, n in statuses.items() if key.endswith(" 429")),
        "server_errors": sum(n for key, n in statuses.items() if int(key.rsplit(" ", 1)[1]) >= 500),
        "lost": sum(n for key, n in unexpected.items() if ": lost" in key),
        "stale_connections_retried": retried,
        "by_kind_and_status": dict(sorted(statuses.items())),
        "unexpected": dict(unexpected),
    }


def repeat_request(
    url: str, request: RequestKind, concurrency: int, requests_per_client: int
) -> dict[str, Any]:
    """The same request, `requests_per_client` times from each of `concurrency` clients."""
    return run_load(url, [request], concurrency, requests_per_client=requests_per_client)
