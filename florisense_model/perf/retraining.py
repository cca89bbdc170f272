"""Measure the retraining loop on a stack of its own (free ports, a temporary folder): the memory
of the Prefect processes, each trigger's latency to a flow run, and one retraining from a
person's trigger to the follower serving the new version. Prints the figures, writes JSON.

Trainings use small settings (`--train-param`) and `promote=force`, so the time measured is the
loop's own plus a small training; a real training adds its minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from florisense_model.perf.report import write_figures
from florisense_model.pipeline.prefect_api import PrefectAPI
from florisense_model.pipeline.store import DataStore
from florisense_model.stack import lifecycle, supervisor
from florisense_model.stack.orchestration import prefect_auth
from florisense_model.stack.s3 import s3_client
from florisense_model.stack.services import all_services
from florisense_model.stack.settings import DATA_URI, StackConfig
from florisense_model.stack.slots import active_slot

LOOP = {"s3", "mlflow", "alertmanager", "prefect", "alert-receiver", "flows"}
SMALL = {"image_size": "64", "epochs": "2", "fine_tune_epochs": "1", "batch_size": "16"}


def _seconds_until(check: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return round(time.monotonic() - started, 2)
        time.sleep(0.25)
    raise TimeoutError(f"not within {timeout_s:.0f} s")


def _wait_idle(api: PrefectAPI) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    final = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
    _seconds_until(
        lambda: all(r["state"]["type"] in final for r in api.flow_runs("retrain", since)), 900
    )


def post_alert(alertmanager_url: str, name: str) -> int:
    """An alert posted to Alertmanager as Prometheus posts it; the HTTP status."""
    alert = [{"labels": {"alertname": name, "severity": "warning"}, "annotations": {}}]
    request = urllib.request.Request(
        f"{alertmanager_url}/api/v2/alerts",
        json.dumps(alert).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _memory(config: StackConfig) -> dict[str, float]:
    found = {}
    for service in all_services(config):
        pid = supervisor.running_pid(service)
        if service.name in ("prefect", "flows", "alert-receiver", "alertmanager") and pid:
            found[service.name] = supervisor.group_rss_mb(pid)
    return found


def measure(root: Path, photos: Path, train_params: dict[str, str], watch_s: float) -> dict:
    config = StackConfig.on_free_ports(root / "run", follow_interval_s=2.0)
    os.environ.update(
        {
            "FLORISENSE_RETRAIN_PARAMS": json.dumps(train_params | {"promote": "force"}),
            "FLORISENSE_WATCH_INTERVAL": f"{watch_s:g}",
            "FLORISENSE_ALERT_GROUP_WAIT": "1s",
            "FLORISENSE_CACHE_DIR": str(root / "cache"),
        }
    )
    figures: dict = {}
    try:
        started = time.monotonic()
        list(lifecycle.up(config, only=LOOP))
        figures["loop_start_s"] = round(time.monotonic() - started, 1)
        api = PrefectAPI(config.prefect_api_url, prefect_auth(config))
        store = DataStore(s3_client(config), DATA_URI)
        for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
            store.add(sorted(folder.iterdir()), folder.name, [folder.name], log=lambda _: None)
        figures["memory_idle_mb"] = _memory(config)

        # A person: the API call a click or `florisense retrain` makes, to the run running.
        since = datetime.now(UTC) - timedelta(seconds=1)
        run = api.run_deployment({"force": True, "reason": "benchmark"})
        figures["person_to_running_s"] = _seconds_until(
            lambda: api.flow_run(run["id"])["state"]["type"] in ("RUNNING", "COMPLETED"), 120
        )
        figures["memory_training_mb"] = _memory(config)
        final = api.wait(run["id"], 900)
        figures["first_retraining_state"] = final["state"]["type"]
        list(lifecycle.up(config))  # the model server, nginx and the follower now

        # Drift: an alert posted as Prometheus would, to a flow run created.
        _wait_idle(api)
        since = datetime.now(UTC) - timedelta(seconds=1)
        post_alert(config.alertmanager_url, "ConfidenceDrift")
        figures["drift_alert_to_run_s"] = _seconds_until(
            lambda: bool(api.flow_runs("retrain", since)), 120
        )
        _wait_idle(api)

        # A person, to the follower serving the version that run registers.
        served = active_slot(config)["version"]
        run = api.run_deployment({"force": True, "reason": "benchmark"})
        started = time.monotonic()
        _seconds_until(lambda: active_slot(config)["version"] not in (None, served), 900)
        figures["person_to_served_s"] = round(time.monotonic() - started, 1)
        figures["served_version"] = active_slot(config)["version"]
        _wait_idle(api)

        # New photos: the upload to a flow run created (bounded by the watcher's interval).
        since = datetime.now(UTC) - timedelta(seconds=1)
        for label in ("dandelion", "grass"):
            files = sorted((photos / label).iterdir())
            extra = root / "extra" / label
            extra.mkdir(parents=True, exist_ok=True)
            for index, path in enumerate(files[:10]):
                copy = extra / f"{index}{path.suffix}"
                copy.write_bytes(path.read_bytes() + b"\0" * (index + 1))  # new bytes, same photo
            store.add(sorted(extra.iterdir()), label, [label], log=lambda _: None)
        figures["watch_interval_s"] = watch_s
        figures["new_photos_to_run_s"] = _seconds_until(
            lambda: bool(api.flow_runs("retrain", since)), 300
        )
        _wait_idle(api)
    finally:
        lifecycle.down(config)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="a folder of class sub-folders (20+ a class)")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/retraining.json"))
    parser.add_argument("--watch-interval", type=float, default=10.0)
    parser.add_argument(
        "--train-param", action="append", default=[], metavar="NAME=VALUE",
        help="an MLproject parameter for every training (default: small settings)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.train_param) or SMALL
    with tempfile.TemporaryDirectory(prefix="florisense-retraining-") as root:
        figures = measure(Path(root), args.photos, params, args.watch_interval)
    figures |= {"train_params": params, "measured": datetime.now(UTC).isoformat()}
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
