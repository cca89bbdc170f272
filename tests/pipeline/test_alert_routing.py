"""Which alerts start a retraining: Alertmanager's routing (checked by its own amtool) and the
receiver's translation of its webhook into Prefect events."""

from __future__ import annotations

import subprocess

import yaml

from florisense_model.pipeline.alert_receiver import DRIFT_ALERTS, drift_events
from florisense_model.stack.orchestration import alertmanager_config

RECEIVER = "http://127.0.0.1:9095/alertmanager"


def notification(*alerts: tuple[str, str]) -> dict:
    """Alertmanager 0.25's webhook body (version 4) for (alertname, status) pairs."""
    return {
        "version": "4",
        "status": "firing",
        "receiver": "retrain",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "severity": "warning"},
                "annotations": {"summary": f"{name} summary"},
                "startsAt": "2026-12-02T09:00:00Z",
            }
            for name, status in alerts
        ],
    }


def test_only_firing_drift_alerts_become_events():
    events = drift_events(
        notification(
            ("ConfidenceDrift", "firing"),
            ("LabelMixDrift", "resolved"),
            ("TargetDown", "firing"),
            ("LabelMixDrift", "firing"),
        )
    )
    assert [resource for resource, _ in events] == [
        "florisense.alert.ConfidenceDrift",
        "florisense.alert.LabelMixDrift",
    ]
    assert events[0][1]["annotations"] == {"summary": "ConfidenceDrift summary"}
    assert drift_events({"alerts": []}) == []
    assert drift_events({}) == []


def test_alertmanager_routes_drift_to_the_receiver_and_the_rest_to_its_page(tmp_path):
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_config(RECEIVER)))
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    def route(alertname: str) -> str:
        result = subprocess.run(
            [
                "amtool",
                "config",
                "routes",
                "test",
                f"--config.file={path}",
                f"alertname={alertname}",
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    for name in DRIFT_ALERTS:
        assert route(name) == "retrain"
    for name in ("TargetDown", "PredictErrorBudget", "ConfidenceDriftish"):
        assert route(name) == "page"
