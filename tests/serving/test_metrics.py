"""Monitoring on the REAL stack: nginx's requests counted by mtail, the model server's own metrics,
Prometheus scraping every part (1 s here), the alert rules loaded, and every query of the Grafana
dashboard and the console page answered by that Prometheus. Counts are compared exactly: what
was sent against what the exporters and Prometheus say."""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import json
import re
import time
from pathlib import Path

import pytest

from florisense_model.model.preprocessing import ERROR_KINDS
from florisense_model.stack import lifecycle, monitoring, services, supervisor
from florisense_model.stack.slots import active_slot
from tests.support.http import post_json, records, request
from tests.support.metrics import api as prometheus_api
from tests.support.metrics import delta, query, scrape, value, wait_until
from tests.support.project import ROOT

pytestmark = pytest.mark.integration
DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana" / "dashboards" / "florisense.json"
JOBS = {"prometheus", "nginx", "nginx-log", "model", "mlflow", "s3"}


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


@pytest.fixture(scope="module")
def stack(serving_stack):
    config, photos = serving_stack
    slot = str(active_slot(config)["slot"])
    return {
        "config": config,
        "photos": photos,
        "predict": f"{config.web_url}/predict",
        "door": f"http://127.0.0.1:{config.mtail_port}/metrics",
        "model": f"http://127.0.0.1:{config.slot_metrics_port(slot)}/metrics",
        "prometheus": config.prometheus_url,
    }


def prometheus_value(stack: dict, expr: str) -> float | None:
    result = query(stack["prometheus"], expr)
    return float(result[0]["value"][1]) if result else None


def test_counts_move_by_exactly_what_was_sent_by_label_and_by_error(stack):
    predict = stack["predict"]
    photos = sorted(stack["photos"].glob("*/*.jpg"))
    door_before, model_before = scrape(stack["door"]), scrape(stack["model"])

    answers = []
    for photo in photos[:3]:  # three single-photo requests
        status, _, payload = post_json(predict, records(b64(photo)))
        assert status == 200, payload
        answers += payload["predictions"]
    # One batch: five photos, one string that is not base64, one base64 that is not an image.
    batch = [b64(p) for p in photos[3:8]] + [
        "%% not base64 %%",
        base64.b64encode(b"hello").decode(),
    ]
    status, _, payload = post_json(predict, records(*batch))
    assert status == 200, payload
    answers += payload["predictions"]
    # Refused before the model sees them: a misspelt key (400) and a GET (405).
    assert post_json(predict, records(batch[0]) | {"parmas": {}})[0] == 400
    assert request(predict)[0] == 405

    labels = collections.Counter(row["label"] for row in answers if row["label"])
    assert sum(labels.values()) == 8
    model_after = scrape(stack["model"])
    for label in ("dandelion", "grass"):
        moved = delta(model_before, model_after, "florisense_predictions_total", label=label)
        assert moved == labels[label], label
    errors = {"not_base64": 1, "not_an_image": 1}
    for kind in ERROR_KINDS:
        moved = delta(model_before, model_after, "florisense_prediction_errors_total", kind=kind)
        assert moved == errors.get(kind, 0), kind
    assert delta(model_before, model_after, "florisense_request_images_count") == 4
    assert delta(model_before, model_after, "florisense_request_images_sum") == 3 + 7
    assert delta(model_before, model_after, "florisense_prediction_confidence_count") == 8
    assert delta(model_before, model_after, "florisense_inference_seconds_count") == 4

    def door_moved() -> dict | None:
        after = scrape(stack["door"])
        # mtail reads nginx's log a few times a second: wait until it has all six lines.
        count = "florisense_http_request_duration_seconds_count"
        return after if delta(door_before, after, count, route="/predict") >= 6 else None

    door_after = wait_until(door_moved, what="mtail to count the six requests")
    for status, sent in (("200", 4), ("400", 1), ("405", 1), ("429", 0), ("503", 0)):
        moved = delta(
            door_before,
            door_after,
            "florisense_http_requests_total",
            route="/predict",
            status=status,
        )
        assert moved == sent, status
    assert delta(door_before, door_after, "florisense_http_request_duration_seconds_count",
                 route="/predict") == 6  # fmt: skip

    # Prometheus holds the same figures, exactly, once it has scraped (every second here).
    total = sum(value(model_after, "florisense_predictions_total", label=label) for label in labels)
    wait_until(
        lambda: prometheus_value(stack, "sum(florisense_predictions_total)") == total,
        what=f"Prometheus to show {total:g} answers",
    )
    ok = value(door_after, "florisense_http_requests_total", route="/predict", status="200")
    wait_until(
        lambda: prometheus_value(
            stack, 'sum(florisense_http_requests_total{route="/predict",status="200"})'
        ) == ok,
        what="Prometheus to show nginx's count",
    )  # fmt: skip


def test_the_model_names_its_version_and_carries_its_training_reference(stack):
    config = stack["config"]
    samples = scrape(stack["model"])
    info = [labels for (name, labels), v in samples.items() if name == "florisense_model_info"]
    assert len(info) == 1 and samples[("florisense_model_info", info[0])] == 1
    info = dict(info[0])
    assert info["version"] == str(active_slot(config)["version"])
    assert re.fullmatch(r"[0-9a-f]{32}", info["run_id"]) and info["runtime"].startswith("onnx")
    shares = [
        value(samples, "florisense_reference_label_share", label=c) for c in ("dandelion", "grass")
    ]
    assert sum(shares) == pytest.approx(1.0)
    assert 0.0 <= value(samples, "florisense_reference_low_confidence_share") <= 1.0


def test_429_and_5xx_are_counted_apart(stack):
    config, predict = stack["config"], stack["predict"]
    before = scrape(stack["door"])

    def empty_body(_):
        return request(predict, "POST", b"{}", {"Content-Type": "application/json"})[0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = collections.Counter(pool.map(empty_body, range(120)))
    assert statuses[429] > 0, statuses
    time.sleep(3)  # the rate limit's bucket refills
    server = services.model_server(config, str(active_slot(config)["slot"]))
    supervisor.stop(server)
    try:
        for _ in range(2):
            statuses[request(predict, "POST", b"{}", {"Content-Type": "application/json"})[0]] += 1
    finally:
        list(lifecycle.up(config, only={"model-server"}))
    assert statuses[503] == 2, statuses

    sent = sum(statuses.values())
    count = "florisense_http_request_duration_seconds_count"

    def counted() -> dict | None:
        samples = scrape(stack["door"])
        return samples if delta(before, samples, count, route="/predict") >= sent else None

    after = wait_until(counted, what="mtail to count the burst")
    for status, number in statuses.items():
        moved = delta(before, after, "florisense_http_requests_total", route="/predict",
                      status=str(status))  # fmt: skip
        assert moved == number, (status, statuses)
    # The objective's ratio (alerts.yml) sees the 503s and not the 429s.
    five = 'sum(florisense_http_requests_total{route="/predict",status=~"5.."})'
    expected = sum(
        value(after, "florisense_http_requests_total", route="/predict", status=str(s))
        for s in range(500, 600)
    )
    wait_until(lambda: prometheus_value(stack, five) == expected, what="Prometheus's 5xx count")


def test_every_part_is_a_target_and_up_and_the_model_target_follows_the_active_slot(stack):
    config = stack["config"]

    def all_up() -> list | None:
        targets = prometheus_api(stack["prometheus"], "targets")["activeTargets"]
        healthy = targets and all(t["health"] == "up" for t in targets)
        return targets if healthy and {t["labels"]["job"] for t in targets} == JOBS else None

    targets = wait_until(all_up, timeout_s=60, what="every target up")
    model = [t for t in targets if t["labels"]["job"] == "model"]
    slot = str(active_slot(config)["slot"])
    assert [t["labels"]["slot"] for t in model] == [slot]
    assert model[0]["scrapeUrl"].endswith(f":{config.slot_metrics_port(slot)}/metrics")
    assert json.loads(monitoring.model_targets_file(config).read_text())[0]["labels"] == {
        "slot": slot
    }


def test_the_alert_rules_are_loaded_and_none_fires_on_a_healthy_stack(stack):
    groups = prometheus_api(stack["prometheus"], "rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {
        "TargetDown", "PredictErrorRateHigh", "PredictLatencyHigh", "ConfidenceDrift",
        "LabelMixDrift", "florisense:low_confidence_share:1h", "florisense:label_share:1h",
    }  # fmt: skip
    assert all(rule["health"] == "ok" for rule in rules.values()), rules
    firing = [a for a in prometheus_api(stack["prometheus"], "alerts")["alerts"]
              if a["state"] == "firing"]  # fmt: skip
    assert firing == []


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every query of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for panel in dashboard["panels"] for p in [panel, *panel.get("panels", [])]]
    return [
        (panel["title"], target["expr"])
        for panel in panels
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def test_every_dashboard_query_returns_data_from_the_live_prometheus(stack):
    queries = dashboard_queries()
    assert len(queries) >= 10
    # Traffic of every kind first, so that each panel has something to show.
    photo = next(stack["photos"].glob("*/*.jpg"))
    for _ in range(3):
        assert post_json(stack["predict"], records(b64(photo), "not base64"))[0] == 200
    empty = []
    for title, expr in queries:
        expr = expr.replace("$__rate_interval", "1m")
        try:
            wait_until(lambda e=expr: query(stack["prometheus"], e), timeout_s=20, what=title)
        except AssertionError:
            empty.append((title, expr))
    assert empty == []


def test_the_console_page_renders_every_graph_without_a_template_error(stack):
    status, _, page = request(f"{stack['prometheus']}/consoles/florisense.html")
    assert status == 200, page
    assert "error executing template" not in page and "FloriSense" in page
    assert page.count("new PromConsole.Graph") >= 5
