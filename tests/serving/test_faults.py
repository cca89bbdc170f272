"""Faults on the REAL test stack: the S3 server or the tracking server down, the model server
killed. Nothing is lost, nothing is registered half-way, every wait says what it waits for, and
the stack serves again once the missing piece is back. Every test restores what it stopped."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from florisense_model.registry import current_production
from florisense_model.stack import lifecycle, services, settings, slots, supervisor
from florisense_model.training.packaging import ModelStorageError, log_pyfunc_model
from tests.support.http import (
    assert_safe_json_error,
    post_json,
    records,
    request,
    restart_model_server,
    stack_env,
)
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.project import ROOT
from tests.support.servers import free_port, wait_http

pytestmark = pytest.mark.integration
IMAGE = base64.b64encode(encode(photo(CLASS_COLOURS["grass"], seed=3))).decode()


@pytest.fixture
def stack_tracking(serving_stack):
    """MLflow's fluent API pointed at the test stack for one test, then back."""
    config, _ = serving_stack
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(config.tracking_uri)
    yield config
    mlflow.set_tracking_uri(previous)


def registry_snapshot(tracking_uri: str) -> dict:
    """Every run (status, params, metrics), version (stage, source, tags) and alias."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {
        run.info.run_id: (run.info.status, run.data.params, run.data.metrics)
        for run in client.search_runs(experiments, max_results=1000)
    }
    versions = {
        (v.name, v.version): (v.current_stage, v.source, v.run_id, v.tags)
        for v in client.search_model_versions(max_results=1000)
    }
    aliases = {m.name: m.aliases for m in client.search_registered_models()}
    return {"runs": runs, "versions": versions, "aliases": aliases}


def start_waiting_model_server(
    config: settings.StackConfig, log: Path, version: str | None = None
) -> tuple[subprocess.Popen, int]:
    """The model server's entry point (as compose and the stack run it) on a free port; without
    `version` it looks up Production itself."""
    port = free_port()
    command = [sys.executable, "-m", "florisense_model.stack.serve", "--port", str(port)]
    process = subprocess.Popen(
        command + (["--version", version] if version else []),
        cwd=ROOT,
        env=stack_env(config),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    return process, port


def wait_for_line(log: Path, fragment: str, count: int = 1, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count(fragment) >= count:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{fragment!r} not logged {count} times within {timeout_s} s:\n{text}")


def served_one_image(port: int, process: subprocess.Popen) -> None:
    wait_http(f"http://127.0.0.1:{port}/ping", 120, process)
    status, _, payload = post_json(f"http://127.0.0.1:{port}/invocations", records(IMAGE))
    assert status == 200 and payload["predictions"][0]["error"] is None


@pytest.mark.parametrize("missing", ["s3", "mlflow"])
def test_the_model_server_waits_with_backoff_for_what_is_down_then_serves(
    serving_stack, tmp_path, missing
):
    config, _ = serving_stack
    before = registry_snapshot(config.tracking_uri)
    production = current_production(
        MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    )
    log = tmp_path / "model-server.log"
    service = services.s3_server(config) if missing == "s3" else services.tracking_server(config)
    supervisor.stop(service)
    process = None
    try:
        if missing == "mlflow":
            # The version to serve is looked up while the tracking server is still down.
            process, port = start_waiting_model_server(config, log)
            text = wait_for_line(log, "not answering", count=2)
        else:
            process, port = start_waiting_model_server(config, log, production.version)
            text = wait_for_line(log, "cannot be read from the artifact store", count=2)
        assert "retry in 2 s" in text and "retry in 4 s" in text  # backoff, doubling
        assert "Traceback" not in text
        assert process.poll() is None  # still waiting, not crashed
    finally:
        list(lifecycle.up(config, only={missing}))
    try:
        served_one_image(port, process)
        assert "serving models:/florisense/" in log.read_text()
    finally:
        supervisor.terminate_group(process.pid)
    # A restart of either server loses no run, metric, parameter, version, stage, tag or alias.
    assert registry_snapshot(config.tracking_uri) == before


def stop_s3_at_the_first_model_file(config: settings.StackConfig) -> threading.Thread:
    """Stop the S3 server the moment the first file of a new model lands in the bucket (rclone
    keeps objects as files): the upload is cut in the middle, for real."""
    bucket = config.run_dir / "s3" / settings.ARTIFACT_BUCKET
    before = set(bucket.rglob("*"))

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("models" in path.parts for path in set(bucket.rglob("*")) - before):
                supervisor.stop(services.s3_server(config))
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def model_files(config: settings.StackConfig, model_id: str) -> list[Path]:
    bucket = config.run_dir / "s3" / settings.ARTIFACT_BUCKET
    return [p for p in bucket.rglob("*") if p.is_file() and model_id in p.parts]


@pytest.mark.parametrize("when", ["before-the-upload", "in-the-middle-of-the-upload"])
def test_s3_down_while_a_run_logs_its_model_fails_clearly_and_registers_nothing(
    stack_tracking, tmp_path, monkeypatch, when
):
    from tests.support.tiny_model import TINY_SIZE, tiny_classifier

    config = stack_tracking
    keras_file = tmp_path / "model.keras"
    tiny_classifier().save(keras_file)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail now, not in minutes
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    name = f"fault-s3-{when}"
    if when == "before-the-upload":
        supervisor.stop(services.s3_server(config))
        watcher = None
    else:
        watcher = stop_s3_at_the_first_model_file(config)
    try:
        with pytest.raises(ModelStorageError) as failure, mlflow.start_run() as run:
            mlflow.log_param("note", "S3 goes down")
            log_pyfunc_model(keras_file, ["dandelion", "grass"], TINY_SIZE, "crop", name)
        assert "no version was registered" in str(failure.value)
        assert "Is the S3 server up?" in str(failure.value)
        assert client.get_run(run.info.run_id).info.status == "FAILED"
        assert client.search_model_versions(f"name='{name}'") == []
        assert client.get_run(run.info.run_id).data.params == {"note": "S3 goes down"}  # kept
        failed_model = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
        )
        partial = model_files(config, failed_model[0].model_id) if failed_model else []
    finally:
        if watcher is not None:
            watcher.join()
        list(lifecycle.up(config, only={"s3"}))
    # With S3 back, the same call registers a version whose files are all readable.
    with mlflow.start_run():
        info = log_pyfunc_model(keras_file, ["dandelion", "grass"], TINY_SIZE, "crop", name)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{info.registered_model_version}")
    assert loaded.metadata.get_input_schema().input_names() == ["image"]
    if when == "in-the-middle-of-the-upload":
        complete = model_files(config, info.model_id)
        assert 0 < len(partial) < len(complete), (len(partial), len(complete))
    client.delete_registered_model(name)


def test_a_killed_model_server_gives_json_503_at_once_and_restart_recovers(serving_stack):
    config, _ = serving_stack
    predict = f"{config.web_url}/predict"
    slot = str(slots.active_slot(config)["slot"])
    pid = supervisor.running_pid(services.model_server(config, slot))
    os.killpg(pid, signal.SIGKILL)
    time.sleep(0.5)
    started = time.monotonic()
    status, _, payload = post_json(predict, records(IMAGE), timeout=15)
    assert time.monotonic() - started < 3
    assert "unavailable" in assert_safe_json_error(status, payload, (502, 503))
    restarted = restart_model_server(config)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    status, _, payload = request(f"{config.web_url}/healthz")
    assert status == 200, payload
    status, _, payload = post_json(predict, records(IMAGE))
    assert status == 200 and payload["predictions"][0]["label"] in ("dandelion", "grass")
