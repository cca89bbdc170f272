"""Prefect's REST API over plain HTTP (standard library): what `florisense retrain` and the alert
receiver need, without Prefect itself in their environment (it pins FastAPI below ours).

Prefect on SQLite answers 503 when its database is busy; its own client retries, so this does.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

DEPLOYMENT = "retrain/florisense"
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
RETRIED_STATUSES = (429, 502, 503)


class PrefectAPI:
    """`PREFECT_API_URL` and, when the server has login on, `PREFECT_API_AUTH_STRING`
    (user:password) from the environment, as Prefect's own client reads them."""

    def __init__(self, url: str | None = None, auth: str | None = None, retries: int = 6) -> None:
        self.url = (url or os.environ.get("PREFECT_API_URL", "")).rstrip("/")
        if not self.url:
            raise ValueError("PREFECT_API_URL is not set (the stack sets it: `make up`)")
        self.auth = auth if auth is not None else os.environ.get("PREFECT_API_AUTH_STRING", "")
        self.retries = retries

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data, headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    text = response.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                if exc.code in RETRIED_STATUSES and attempt < self.retries:
                    time.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                detail = exc.read()[:300].decode(errors="replace")
                raise ValueError(f"Prefect {method} {path}: HTTP {exc.code} {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ConnectionError(
                    f"cannot reach the Prefect server at {self.url} ({reason}); "
                    "is the stack up? (`make up`)"
                ) from None
        raise AssertionError("unreachable")

    def deployment_id(self, name: str = DEPLOYMENT) -> str:
        try:
            return self.call("GET", f"/deployments/name/{name}")["id"]
        except ValueError as exc:
            if "HTTP 404" in str(exc):
                raise ValueError(
                    f"no deployment {name} on {self.url}: the flows are served by `make up`"
                ) from None
            raise

    def run_deployment(self, parameters: dict[str, Any], name: str = DEPLOYMENT) -> dict:
        path = f"/deployments/{self.deployment_id(name)}/create_flow_run"
        return self.call("POST", path, {"parameters": parameters})

    def flow_run(self, run_id: str) -> dict:
        return self.call("GET", f"/flow_runs/{run_id}")

    def flow_runs(self, flow_name: str, since: datetime) -> list[dict]:
        """The runs of flow `flow_name` expected to start after `since`, oldest first."""
        body = {
            "flows": {"name": {"any_": [flow_name]}},
            "flow_runs": {"expected_start_time": {"after_": since.isoformat()}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
        return self.call("POST", "/flow_runs/filter", body)

    def wait(self, run_id: str, timeout_s: float, poll_s: float = 2.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.flow_run(run_id)
            if run["state"]["type"] in FINAL_STATES or time.monotonic() > deadline:
                return run
            time.sleep(poll_s)

    def emit(self, event: str, resource_id: str, payload: dict[str, Any]) -> None:
        """One Prefect event (what automations and deployment triggers react to)."""
        from uuid import uuid4

        self.call(
            "POST",
            "/events",
            [
                {
                    "id": str(uuid4()),
                    "occurred": datetime.now(UTC).isoformat(),
                    "event": event,
                    "resource": {"prefect.resource.id": resource_id},
                    "payload": payload,
                }
            ],
        )


def ui_url(api_url: str, run_id: str) -> str:
    """A flow run's page in Prefect's UI (the API's URL without /api)."""
    base = api_url.rstrip("/").removesuffix("/api")
    return f"{base}/runs/flow-run/{run_id}"
