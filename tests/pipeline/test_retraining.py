"""The retraining loop against real servers: S3 (rclone), the MLflow tracking server, Prefect's
server with the flows served, Alertmanager and the alert receiver, as `make up` starts them.
Each triggered run trains a tiny model (FLORISENSE_RETRAIN_PARAMS) with `mlflow run .`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from mlflow import MlflowClient
from playwright.sync_api import expect, sync_playwright

from florisense_model.perf.retraining import post_alert
from florisense_model.pipeline.manifest import DATASET_DIGEST_TAG
from florisense_model.pipeline.prefect_api import PrefectAPI
from florisense_model.pipeline.store import DataStore
from florisense_model.stack import lifecycle, supervisor
from florisense_model.stack.orchestration import prefect_auth, prefect_server
from florisense_model.stack.s3 import s3_client
from florisense_model.stack.settings import DATA_URI, StackConfig
from tests.support.browser import CHROMIUM_ARGS
from tests.support.http import post_json, records
from tests.support.images import CLASS_COLOURS, encode, make_dataset, photo
from tests.support.mlflow_runs import SMALL
from tests.support.project import ARTIFACTS
from tests.support.servers import BIN, child_env
from tests.support.stack import free_port_config

pytestmark = pytest.mark.integration

LOOP = {"s3", "mlflow", "alertmanager", "prefect", "alert-receiver", "flows"}
MIN_NEW = 20
# SMALL's "-P name=value" pairs as the flow's train_params.
TINY = {pair.split("=", 1)[0]: pair.split("=", 1)[1] for pair in SMALL[1::2]}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    config = free_port_config(root)
    settings = {
        "FLORISENSE_RETRAIN_PARAMS": json.dumps(TINY),
        "FLORISENSE_RETRAIN_MIN_NEW": str(MIN_NEW),
        "FLORISENSE_WATCH_INTERVAL": "5",
        "FLORISENSE_ALERT_GROUP_WAIT": "1s",
        "FLORISENSE_CACHE_DIR": str(root / "cache"),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        print(*lifecycle.up(config, only=LOOP), sep="\n")
        store = DataStore(s3_client(config), DATA_URI)
        photos = make_dataset(root / "photos", per_class=12)
        for label in CLASS_COLOURS:
            store.add(sorted((photos / label).iterdir()), label, CLASS_COLOURS, log=lambda _: 0)
        yield config, store
    finally:
        lifecycle.down(config)
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def api(config: StackConfig) -> PrefectAPI:
    return PrefectAPI(config.prefect_api_url, prefect_auth(config))


def florisense_env(config: StackConfig) -> dict[str, str]:
    return child_env(**config.as_env())


def retrain(config: StackConfig, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "florisense"), "retrain", *args],
        env=florisense_env(config),
        capture_output=True,
        text=True,
        timeout=900,
    )


def runs_of_retrain(config: StackConfig, since: datetime) -> list[dict]:
    return api(config).flow_runs("retrain", since)


def wait_for_runs(config, since, count, final=True, timeout=600) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of_retrain(config, since)
        done = [r for r in runs if r["state"]["type"] in ("COMPLETED", "FAILED", "CANCELLED")]
        if len(runs) >= count and (not final or len(done) == len(runs)):
            return runs
        time.sleep(2)
    raise AssertionError(f"expected {count} retrain runs, got {runs_of_retrain(config, since)}")


def versions(config: StackConfig) -> list:
    return MlflowClient(config.tracking_uri).search_model_versions("name='florisense'")


def test_a_person_retrains_then_unchanged_data_is_skipped(loop):
    config, store = loop
    result = retrain(config, "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "completed: version 1: promoted" in result.stdout, result.stdout
    (version,) = versions(config)
    client = MlflowClient(config.tracking_uri)
    run = client.get_run(version.run_id)
    assert run.data.tags[DATASET_DIGEST_TAG] == store.manifest().digest
    assert version.tags["gate.decision"] == "promoted"
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    assert run.data.tags["prefect.flow_run_url"].endswith(flow_run_id)
    flow_run = api(config).flow_run(flow_run_id)
    assert f"mlflow-run:{run.info.run_id}" in flow_run["tags"]
    assert "model-version:1" in flow_run["tags"]

    again = retrain(config, "--wait")
    assert again.returncode == 0, again.stderr
    assert "completed: skipped: dataset" in again.stdout
    assert len(versions(config)) == 1


def test_a_person_starts_a_run_from_prefects_ui(loop):
    """In Chromium: Prefect's login, the retrain deployment with its two triggers, Run, Quick
    run; the run it starts skips (the person's run above trained on the same photos)."""
    config, _ = loop
    since = datetime.now(UTC) - timedelta(seconds=1)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1200, "height": 700})
        page.goto(f"http://127.0.0.1:{config.prefect_port}/deployments")
        page.get_by_placeholder("admin:pass").fill(prefect_auth(config))
        page.get_by_role("button", name="Login").click()
        row = page.get_by_role("row").filter(has_text="retrain")
        row.get_by_role("link", name="florisense").click()
        page.wait_for_url("**/deployments/deployment/**")
        for trigger in ("new photos", "drift"):
            expect(page.get_by_role("link", name=trigger, exact=True)).to_be_visible()
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Quick run").click()
        # The UI shows its toast twice (one run, one name).
        expect(page.get_by_text("scheduled to start now").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "prefect-quick-run.png"))
        browser.close()
    (run,) = wait_for_runs(config, since, 1, timeout=300)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert "skipped: dataset" in run["state"]["message"]


def served_run_id(config: StackConfig) -> str:
    """The MLflow run of the version that answers /predict through nginx now."""
    image = base64.b64encode(encode(photo(CLASS_COLOURS["dandelion"]))).decode()
    status, _, payload = post_json(f"{config.web_url}/predict", records(image), timeout=60)
    assert status == 200, payload
    return payload["predictions"][0]["run_id"]


def test_a_failed_training_ends_failed_with_its_reason_and_registers_nothing(loop):
    config, _ = loop
    print(*lifecycle.up(config, only={"model-server", "nginx"}), sep="\n")
    served = served_run_id(config)
    before = len(versions(config))
    run = api(config).run_deployment(
        {"force": True, "train_params": TINY | {"image_size": "5"}, "reason": "test"}
    )
    final = api(config).wait(run["id"], timeout_s=300)
    assert final["state"]["type"] == "FAILED"
    message = final["state"]["message"]
    assert "image_size must be between 32 and 512, got 5" in message, message
    assert "\n" not in message
    assert len(versions(config)) == before
    assert served_run_id(config) == served  # serving never noticed


def test_new_photos_start_a_run_by_themselves(loop, tmp_path):
    config, store = loop
    since = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(MIN_NEW):
        path = tmp_path / f"{index}.jpg"
        path.write_bytes(encode(photo(CLASS_COLOURS["grass"], (96, 128), seed=5000 + index)))
        store.add([path], "grass", CLASS_COLOURS, log=lambda _: 0)
    digest = store.manifest().digest
    (run,) = wait_for_runs(config, since, 1)
    assert run["parameters"]["reason"] == "new photos in the bucket"
    assert run["state"]["type"] == "COMPLETED", run["state"]
    newest = max(versions(config), key=lambda v: int(v.version))
    trained = MlflowClient(config.tracking_uri).get_run(newest.run_id)
    assert trained.data.tags[DATASET_DIGEST_TAG] == digest
    assert "gate.decision" in newest.tags
    # The watcher announces a dataset once: no second run for the same photos.
    time.sleep(12)
    assert len(runs_of_retrain(config, since)) == 1


def test_a_drift_alert_starts_a_run_and_target_down_does_not(loop):
    config, _ = loop
    since = datetime.now(UTC) - timedelta(seconds=1)
    assert post_alert(config.alertmanager_url, "TargetDown") == 200
    time.sleep(8)
    assert runs_of_retrain(config, since) == []
    assert post_alert(config.alertmanager_url, "ConfidenceDrift") == 200
    (run,) = wait_for_runs(config, since, 1, final=False, timeout=120)
    assert run["parameters"]["reason"] == "drift alert ConfidenceDrift"


def test_two_triggers_at_once_give_one_training(loop):
    config, _ = loop
    wait_for_runs(config, datetime.now(UTC) - timedelta(hours=1), 0)  # nothing still running
    first = api(config).run_deployment({"force": True, "reason": "first"})
    second = api(config).run_deployment({"force": True, "reason": "second"})
    states = {
        run["id"]: api(config).wait(run["id"], timeout_s=400)["state"] for run in (first, second)
    }
    kinds = sorted(state["type"] for state in states.values())
    assert kinds == ["CANCELLED", "COMPLETED"], states


def test_without_prefect_retrain_says_so_in_one_line(loop):
    config, _ = loop
    server = prefect_server(config)
    supervisor.stop(server)
    try:
        result = retrain(config)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert "cannot reach the Prefect server" in result.stderr
    finally:
        print(supervisor.start(server))
