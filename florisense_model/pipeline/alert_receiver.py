"""Alertmanager's webhook -> a Prefect event: the drift alerts start the retraining flow.

Prefect's open-source server has no inbound webhooks (a Prefect Cloud feature) and Alertmanager
0.25's webhook body is fixed, so this small receiver translates. Only firing `ConfidenceDrift`
and `LabelMixDrift` become events (Alertmanager routes only those here; the check is repeated so
a misrouted alert never retrains). Prefect's 503s are retried; when Prefect stays unreachable
the receiver answers 503 so that Alertmanager retries the notification itself.
"""

from __future__ import annotations

import argparse
import json
import os
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from florisense_model.cli import first_line, log
from florisense_model.pipeline.prefect_api import PrefectAPI

DRIFT_ALERTS = frozenset({"ConfidenceDrift", "LabelMixDrift"})
DRIFT_EVENT = "florisense.drift.detected"
PATH = "/alertmanager"
MAX_BODY_BYTES = 1 << 20


def drift_events(notification: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(resource id, payload) of each firing drift alert in an Alertmanager notification."""
    events = []
    for alert in notification.get("alerts", []):
        name = alert.get("labels", {}).get("alertname", "")
        if alert.get("status") == "firing" and name in DRIFT_ALERTS:
            payload = {
                "alertname": name,
                "labels": alert.get("labels", {}),
                "annotations": alert.get("annotations", {}),
                "startsAt": alert.get("startsAt", ""),
            }
            events.append((f"florisense.alert.{name}", payload))
    return events


class Handler(BaseHTTPRequestHandler):
    api: PrefectAPI

    def do_POST(self) -> None:
        if self.path != PATH:
            return self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST {PATH} only"})
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": "body missing or over 1 MB"})
        try:
            notification = json.loads(self.rfile.read(length))
            events = drift_events(notification)
        except (ValueError, AttributeError, TypeError):
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": "not an Alertmanager webhook"})
        try:
            for resource, payload in events:
                self.api.emit(DRIFT_EVENT, resource, payload)
                log(f"alert-receiver: {payload['alertname']} firing: event {DRIFT_EVENT} sent")
        except (ConnectionError, ValueError) as exc:
            log(f"alert-receiver: could not reach Prefect: {first_line(exc)}")
            return self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "Prefect unreachable"})
        self._answer(HTTPStatus.OK, {"events": len(events)})

    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self._answer(HTTPStatus.OK, {"status": "ok"})
        self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST {PATH} only"})

    def _answer(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # one line per event instead
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("FLORISENSE_ALERT_RECEIVER_PORT", "9095"))
    )
    args = parser.parse_args(argv)
    Handler.api = PrefectAPI()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    log(f"alert-receiver: listening on {args.host}:{args.port}{PATH}")
    server.serve_forever()


if __name__ == "__main__":
    main()
