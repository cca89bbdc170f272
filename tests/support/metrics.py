"""Reading metrics as Prometheus does: an exporter's /metrics page, and Prometheus's HTTP API."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page: (name, labels) -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample; a labelled series not yet seen counts as 0 (mtail creates it on first use)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def api(prometheus_url: str, path: str, **params: str) -> dict | list:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/{path}{query}", timeout=10) as answer:
        document = json.load(answer)
    assert document["status"] == "success", document
    return document["data"]


def query(prometheus_url: str, expr: str) -> list[dict]:
    """An instant query's result vector (or [] when nothing matches)."""
    data = api(prometheus_url, "query", query=expr)
    return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]


def wait_until(check, timeout_s: float = 30.0, what: str = "condition") -> object:
    """Poll `check()` until it returns a truthy value (Prometheus scrapes every second here)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)
