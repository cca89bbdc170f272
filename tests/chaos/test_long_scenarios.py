"""Long scenarios on the REAL stack, run by `make chaos` (not `make test`): 60 s of mixed traffic at
concurrency 8, and the model server killed in the middle of traffic. Each writes its figures to
test-artifacts/chaos-*.json; the closing checks are what must hold (no timing is asserted)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from florisense_model.perf.http_load import run_load
from florisense_model.perf.loadtest import request_mix
from florisense_model.stack import nginx, services, slots, supervisor
from tests.support.http import restart_model_server
from tests.support.project import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
ARTIFACTS = ROOT / "test-artifacts"
DURATION_S = float(os.environ.get("FLORISENSE_CHAOS_SECONDS", "60"))


@pytest.fixture
def unlimited_nginx(serving_stack, monkeypatch):
    """The stack's nginx with the per-client rate limit raised: to nginx, the load is one client."""
    config, _ = serving_stack
    monkeypatch.setenv("FLORISENSE_NGINX_RATE_LIMIT", "1000r/s")
    monkeypatch.setenv("FLORISENSE_NGINX_RATE_BURST", "1000")
    monkeypatch.setenv("FLORISENSE_NGINX_CONN_LIMIT", "64")
    nginx.reload(config)
    yield config
    monkeypatch.undo()
    nginx.reload(config)


def photos(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(folder.glob("*/*.jpg"))[:16]]


def write_report(name: str, report: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"chaos-{name}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "by_kind_and_status"}, indent=2))


def test_sixty_seconds_of_mixed_traffic_at_concurrency_8(serving_stack, unlimited_nginx):
    config = unlimited_nginx
    _, folder = serving_stack
    report = run_load(f"{config.web_url}/predict", request_mix(photos(folder)), 8, DURATION_S)
    write_report("load", report)
    assert report["server_errors"] == 0 and report["lost"] == 0
    assert report["unexpected"] == {}
    assert report["requests"] > 0 and report["rate_limited"] == 0


def test_model_server_killed_under_traffic_answers_503_at_once_then_recovers(
    serving_stack, unlimited_nginx
):
    config = unlimited_nginx
    _, folder = serving_stack
    results: dict = {}

    def traffic() -> None:
        results["load"] = run_load(
            f"{config.web_url}/predict", request_mix(photos(folder)), 4, 45.0
        )

    runner = threading.Thread(target=traffic)
    runner.start()
    time.sleep(10)
    slot = str(slots.active_slot(config)["slot"])
    os.killpg(supervisor.running_pid(services.model_server(config, slot)), signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(5)  # five seconds of outage under traffic
    restarted = restart_model_server(config)
    recovered_after_s = time.monotonic() - killed_at
    runner.join()
    report = results["load"] | {"recovered_after_s": round(recovered_after_s, 1)}
    write_report("kill-model-server", report)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert report["lost"] == 0  # every request got an answer, none hung
    outage = {k: v for k, v in report["unexpected"].items() if "http 503" in k}
    assert outage, "no request saw the outage"
    assert set(report["unexpected"]) == set(outage), report["unexpected"]  # 503 only, no other
    assert report["p99_ms"] < 60_000
