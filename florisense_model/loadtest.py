"""Mixed valid and invalid traffic against /predict on 127.0.0.1, bounded in concurrency and time.

Each request kind says which answers are right for it (valid photos: 200 with one verdict per
photo; each kind of junk: its 4xx, or a 200 with per-row errors). Anything else is counted as
unexpected, by kind: a 5xx, a wrong status, an error that is not JSON, a 200 with a missing row,
and "lost" responses (connection errors, timeouts). 429 is the rate limit working, counted apart.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from florisense_model.client import request_body
from florisense_model.load import LOCAL_HOSTS, _percentile

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class RequestKind:
    name: str
    body: bytes
    headers: dict[str, str]
    expected_status: int
    rows: int = 0  # for 200 answers: how many predictions must come back
    row_errors: int = 0  # ... and how many of them must carry a per-row error


def request_mix(photos: list[bytes], invalid_every: int = 4) -> list[RequestKind]:
    """One-photo requests, with one junk request in every `invalid_every` (5 kinds of junk)."""
    if invalid_every < 2:
        raise ValueError("invalid_every must be at least 2 (one junk request in every N)")
    text = base64.b64encode(b"not a photo at all").decode()
    junk = [
        RequestKind("malformed-json", b'{"dataframe_records": [', JSON, 400),
        RequestKind("empty-batch", b'{"dataframe_records": []}', JSON, 400),
        RequestKind(
            "wrong-content-type", request_body(photos[:1]), {"Content-Type": "text/html"}, 415
        ),
        RequestKind(
            "invalid-base64-row",
            json.dumps({"dataframe_records": [{"image": "%%%"}]}).encode(),
            JSON,
            200,
            rows=1,
            row_errors=1,
        ),
        RequestKind(
            "text-as-image-row",
            json.dumps({"dataframe_records": [{"image": text}]}).encode(),
            JSON,
            200,
            rows=1,
            row_errors=1,
        ),
    ]
    valid = [RequestKind("valid-photo", request_body([p]), JSON, 200, rows=1) for p in photos]
    valid_per_junk = invalid_every - 1
    mix: list[RequestKind] = []
    for index in range(max(len(valid), len(junk) * valid_per_junk)):
        mix.append(valid[index % len(valid)])
        if (index + 1) % valid_per_junk == 0:
            mix.append(junk[(index // valid_per_junk) % len(junk)])
    return mix


def _verdict(kind: RequestKind, status: int, raw: bytes) -> str | None:
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
    url: str, mix: list[RequestKind], concurrency: int, duration_s: float
) -> dict[str, Any]:
    """`concurrency` clients, one keep-alive connection each, cycle through `mix` until
    `duration_s` has passed."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"the load test only talks to 127.0.0.1, not {parts.hostname}")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def client(offset: int) -> None:
        connection, used = connect(), 0
        for kind in itertools.islice(itertools.cycle(mix), offset, None):
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            for attempt in (1, 2):
                try:
                    connection.request("POST", parts.path, kind.body, kind.headers)
                    response = connection.getresponse()
                    status, raw = response.status, response.read()
                    problem = _verdict(kind, status, raw)
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
        "requests_per_s": round(total / wall, 1),
        "answered_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(_percentile(latencies, 95) * 1000, 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1) if latencies else None,
        "rate_limited": sum(n for key, n in statuses.items() if key.endswith(" 429")),
        "server_errors": sum(n for key, n in statuses.items() if int(key.rsplit(" ", 1)[1]) >= 500),
        "lost": sum(n for key, n in unexpected.items() if ": lost" in key),
        "stale_connections_retried": retried,
        "by_kind_and_status": dict(sorted(statuses.items())),
        "unexpected": dict(unexpected),
    }
