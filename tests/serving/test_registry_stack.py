"""The stack's registry and S3 storage, for real: artifacts are objects in the bucket, the model
server works without S3 credentials, a promotion reaches /predict, and a full stop and start
loses nothing. Runs after the nginx tests (it changes the served version)."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from florisense_model.stack import lifecycle, s3, services, settings, slots, supervisor
from tests.support.http import post_json, records
from tests.support.mlflow_runs import SMALL, mlflow_run, summary_of

pytestmark = pytest.mark.integration
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ACCESS_KEY", "S3_SECRET_KEY")


def client(config) -> MlflowClient:
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def served_run_id(config, photos: Path) -> str:
    image = base64.b64encode(next(photos.glob("grass/*.jpg")).read_bytes()).decode()
    status, _, payload = post_json(f"{config.web_url}/predict", records(image))
    assert status == 200, payload
    return payload["predictions"][0]["run_id"]


def bucket_keys(config) -> list[str]:
    bucket = s3.s3_client(config)
    pages = bucket.get_paginator("list_objects_v2").paginate(Bucket=settings.ARTIFACT_BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_run_artifacts_and_the_model_are_objects_in_the_bucket(serving_stack):
    config, _ = serving_stack
    production = client(config).get_latest_versions("florisense", stages=["Production"])[0]
    keys = bucket_keys(config)
    run_keys = [k for k in keys if f"/{production.run_id}/artifacts/" in k]
    for name in ("dataset/report.json", "dataset/test.csv", "plots/confusion_matrix.png"):
        assert any(k.endswith(name) for k in run_keys), name
    model_keys = [k for k in keys if "/models/" in k]
    for name in (
        "MLmodel",
        "artifacts/model.keras",
        "artifacts/labels.json",
        "code/florisense_model/model/pyfunc.py",
        "requirements.txt",
    ):
        assert any(k.endswith(name) for k in model_keys), name


def test_model_server_runs_without_s3_credentials(serving_stack):
    config, photos = serving_stack
    pid = supervisor.running_pid(services.model_server(config))
    assert pid is not None
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [pid, *map(int, children)]:
        environment = process_environment(process)
        assert not set(CREDENTIAL_NAMES) & set(environment), process
        assert "MLFLOW_S3_ENDPOINT_URL" not in environment
        assert environment["MLFLOW_TRACKING_URI"] == config.tracking_uri
    tracking = process_environment(supervisor.running_pid(services.tracking_server(config)))
    assert tracking["AWS_ACCESS_KEY_ID"]  # only the tracking server talks to S3
    assert served_run_id(config, photos)


def test_the_served_model_follows_a_promotion_without_dropping_requests(serving_stack):
    config, photos = serving_stack
    before = served_run_id(config, photos)
    result = mlflow_run(
        config.tracking_uri,
        "-P",
        f"data_dir={photos}",
        *SMALL,
        "-P",
        "promote=skip",
        "-P",
        "seed=7",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    new = summary_of(result)
    assert served_run_id(config, photos) == before  # registered, not promoted: nothing changes

    statuses: list[int] = []
    runs: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:  # a client that never stops while the model changes under it
        image = base64.b64encode(next(photos.glob("grass/*.jpg")).read_bytes()).decode()
        while not stop.is_set():
            status, _, payload = post_json(f"{config.web_url}/predict", records(image))
            statuses.append(status)
            if status == 200:
                runs.append(payload["predictions"][0]["run_id"])
            time.sleep(0.05)

    client_thread = threading.Thread(target=keep_asking)
    client_thread.start()
    try:
        promoted = mlflow_run(
            config.tracking_uri, "-e", "promote", "-P", f"version={new['version']}"
        )
        assert promoted.returncode == 0, promoted.stderr[-2000:]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (not runs or runs[-1] != new["run_id"]):
            time.sleep(1)
        time.sleep(8)  # past the old slot's drain and stop
    finally:
        stop.set()
        client_thread.join(timeout=60)
    assert runs and runs[-1] == new["run_id"] != before
    assert runs[0] == before
    assert set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"
    assert slots.active_slot(config) == {"slot": "b", "version": new["version"]}
    assert (
        supervisor.running_pid(services.model_server(config, "a")) is None
    )  # the old slot is gone
    log = (config.run_dir / "logs" / "follower.log").read_text()
    assert f"nginx now sends /predict to slot b (version {new['version']})" in log


def test_stop_and_start_of_the_whole_stack_loses_nothing(serving_stack):
    config, photos = serving_stack
    registry = client(config)
    versions = {
        v.version: (v.run_id, v.current_stage)
        for v in registry.search_model_versions("name='florisense'")
    }
    alias = registry.get_model_version_by_alias("florisense", "production").version
    runs = {
        r.info.run_id: r.data.metrics.get("test_accuracy")
        for r in registry.search_runs(experiment_ids=["0"])
    }
    keys = set(bucket_keys(config))
    served = served_run_id(config, photos)

    lifecycle.down(config)
    assert all(supervisor.running_pid(service) is None for service in services.all_services(config))
    list(lifecycle.up(config))

    registry = client(config)
    assert {
        v.version: (v.run_id, v.current_stage)
        for v in registry.search_model_versions("name='florisense'")
    } == versions
    assert registry.get_model_version_by_alias("florisense", "production").version == alias
    assert {
        r.info.run_id: r.data.metrics.get("test_accuracy")
        for r in registry.search_runs(experiment_ids=["0"])
    } == runs
    assert keys <= set(bucket_keys(config))
    mlflow.set_tracking_uri(config.tracking_uri)
    local = mlflow.artifacts.download_artifacts(f"models:/florisense/{alias}")
    assert (Path(local) / "artifacts" / "model.keras").stat().st_size > 100_000
    assert served_run_id(config, photos) == served
