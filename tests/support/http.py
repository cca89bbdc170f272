"""HTTP helpers for the serving tests (standard library only: what any client would use)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from florisense_model.stack import settings
from tests.support.project import ROOT
from tests.support.servers import child_env


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict, Any]:
    """(status, headers, parsed JSON or text). http.client adds no Content-Type on its own."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read().decode("utf-8", errors="replace")
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


def post_json(url: str, document: Any, **kwargs) -> tuple[int, dict, Any]:
    headers = {"Content-Type": "application/json"} | kwargs.pop("headers", {})
    return request(url, "POST", json.dumps(document).encode(), headers, **kwargs)


def records(*images: object) -> dict:
    return {"dataframe_records": [{"image": image} for image in images]}


def assert_safe_json_error(status: int, payload: Any, expected_status: int | tuple) -> str:
    """A JSON error with a short message, no stack trace and no server path."""
    allowed = expected_status if isinstance(expected_status, tuple) else (expected_status,)
    assert status in allowed, (status, payload)
    assert isinstance(payload, dict) and set(payload) >= {"error", "request_id"}, payload
    text = json.dumps(payload)
    for leak in ("Traceback", "stack_trace", "site-packages", ".py", "/tmp/", "/work/", "/root/"):
        assert leak not in text, (leak, text)
    assert len(payload["error"]) <= 300
    return payload["error"]


def stack_env(config: settings.StackConfig) -> dict[str, str]:
    """What a child process needs to find this stack (scripts.stack, the benchmark, ...)."""
    return child_env(MLFLOW_TRACKING_URI=config.tracking_uri, **config.as_env())


def run_script(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m scripts.<module> ARGS` from the project root, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", f"scripts.{module}", *args],
        cwd=ROOT,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def restart_model_server(config: settings.StackConfig) -> subprocess.CompletedProcess:
    return run_script(
        "stack", "restart", "--only", "model-server", env=stack_env(config), timeout=300
    )
