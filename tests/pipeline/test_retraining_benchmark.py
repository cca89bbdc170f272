"""perf/retraining.py runs once on generated photos and tiny trainings: every figure it promises
is written to its JSON, and a person's retraining reached the follower. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from florisense_model.perf import retraining
from tests.support.images import make_dataset
from tests.support.mlflow_runs import SMALL

pytestmark = pytest.mark.integration
FIGURES = {
    "loop_start_s", "memory_idle_mb", "person_to_running_s", "memory_training_mb",
    "first_retraining_state", "drift_alert_to_run_s", "person_to_served_s", "served_version",
    "watch_interval_s", "new_photos_to_run_s", "train_params", "measured",
}  # fmt: skip


def test_the_benchmark_measures_every_trigger_and_writes_json(tmp_path, monkeypatch):
    photos = make_dataset(tmp_path / "photos", per_class=20)
    out = tmp_path / "retraining.json"
    # measure() sets the loop's settings in the environment: monkeypatch restores them after.
    for name in ("FLORISENSE_RETRAIN_PARAMS", "FLORISENSE_WATCH_INTERVAL",
                 "FLORISENSE_ALERT_GROUP_WAIT", "FLORISENSE_CACHE_DIR"):  # fmt: skip
        monkeypatch.setenv(name, "")
    params = [f"--train-param={pair}" for pair in SMALL[1::2]]
    retraining.main([str(photos), "--out", str(out), "--watch-interval", "3", *params])
    figures = json.loads(out.read_text())
    assert set(figures) == FIGURES
    assert figures["first_retraining_state"] == "COMPLETED"
    assert figures["served_version"] == "2"  # the person's second run, served by the follower
    assert set(figures["memory_idle_mb"]) == {"prefect", "flows", "alert-receiver", "alertmanager"}
    for name in ("loop_start_s", "person_to_running_s", "drift_alert_to_run_s",
                 "person_to_served_s", "new_photos_to_run_s"):  # fmt: skip
        assert figures[name] > 0, name
