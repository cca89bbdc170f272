"""The retraining flow (Prefect): snapshot the dataset, skip when Production was trained on it,
train with the MLflow project (`mlflow run .`, as by hand), let the gate decide, report.

Runs in Prefect's own environment (.venv-orchestrate: Prefect, mlflow-skinny, boto3); training
runs in the project's (.venv), a subprocess whose output streams into the flow run's logs. The
flow never promotes: the gate inside the training run is the only promoter.
"""

from __future__ import annotations

import os
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from florisense_model.pipeline.manifest import DATASET_DIGEST_TAG, Manifest
from florisense_model.pipeline.store import open_store
from florisense_model.registry import current_production

PROJECT = Path(__file__).resolve().parents[2]
# The project's environment, where `mlflow run` trains (TensorFlow is there, not here).
TRAIN_BIN = Path(os.environ.get("FLORISENSE_TRAIN_BIN") or PROJECT / ".venv" / "bin")
COMPARED_METRICS = ("test_balanced_accuracy", "test_accuracy", "test_log_loss")


@dataclass(frozen=True)
class Production:
    version: str
    run_id: str
    digest: str | None
    metrics: dict[str, float]


@task
def snapshot_dataset(run_dir: Path) -> tuple[Manifest, Path]:
    """The bucket's dataset now, written to a file the training run reads (so photos added
    meanwhile do not change what this run trains on)."""
    manifest = open_store().manifest()
    path = run_dir / "pipeline" / "manifests" / f"{manifest.digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json(), encoding="utf-8")
    return manifest, path


@task
def production_now(tracking_uri: str) -> Production | None:
    client = MlflowClient(tracking_uri)
    version = current_production(client)
    if version is None:
        return None
    run = client.get_run(version.run_id)
    return Production(
        version.version, version.run_id, run.data.tags.get(DATASET_DIGEST_TAG), run.data.metrics
    )


@task
def train(manifest_path: Path, params: dict[str, str], tracking_uri: str) -> tuple[int, str]:
    """`mlflow run .` on the snapshot, its output in this run's logs: (exit code, why it
    failed in one line)."""
    logger = get_run_logger()
    command = [str(TRAIN_BIN / "mlflow"), "run", str(PROJECT), "--env-manager", "local"]
    for name, value in {"data_dir": str(manifest_path), **params}.items():
        command += ["-P", f"{name}={value}"]
    # The trainer gets the tracking server and this run's id, not Prefect's secrets.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PATH": f"{TRAIN_BIN}{os.pathsep}{env.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "FLORISENSE_FLOW_RUN_ID": str(flow_run.id),
        "FLORISENSE_FLOW_RUN_URL": str(flow_run.ui_url or ""),
    }
    logger.info("training: %s", " ".join(command))
    tail: deque[str] = deque(maxlen=80)
    with subprocess.Popen(
        command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            logger.info(line)
    return process.returncode, failure_reason(list(tail))


def failure_reason(lines: list[str]) -> str:
    """The one line that says why a training failed: the entry point's own error if it printed
    one, else the last line of the output."""
    for line in reversed(lines):
        if line.startswith("florisense: error:"):
            return line.removeprefix("florisense: error:").strip()
    return next((line for line in reversed(lines) if line.strip()), "no output")


def trained_run(client: MlflowClient, flow_run_id: str):
    """The MLflow run this flow run started (tagged with its id by the training entry point)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`prefect.flow_run_id` = '{flow_run_id}'")
    return runs[0] if runs else None


def report(run, version, production: Production | None, tracking_uri: str) -> str:
    """The flow run's summary (a Markdown artifact too): the version `run` registered (or None),
    the gate's decision, the metrics beside Production's, links."""
    tags = version.tags if version else {}
    # The UI as a browser reaches it (compose: the published port, not the service name).
    ui = os.environ.get("FLORISENSE_MLFLOW_UI_URL") or tracking_uri
    run_url = f"{ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    decision = tags.get("gate.decision", "no gate decision")
    reason = tags.get("gate.reason", "")
    rows = [
        f"| {name} | {run.data.metrics.get(name, float('nan')):.4f} | "
        + (f"{production.metrics.get(name, float('nan')):.4f}" if production else "none")
        + " |"
        for name in COMPARED_METRICS
    ]
    prod = f"version {production.version}" if production else "none"
    markdown = "\n".join(
        [
            f"# Retraining: version {version.version if version else '(none)'}",
            f"Gate: **{decision}** ({reason})",
            f"MLflow run: [{run.info.run_id}]({run_url})",
            f"Dataset: `{run.data.tags.get(DATASET_DIGEST_TAG)}`",
            "",
            f"| metric | new | Production ({prod}) |",
            "|---|---|---|",
            *rows,
        ]
    )
    create_markdown_artifact(markdown, key="retraining-report", description="gate and metrics")
    name = f"version {version.version}" if version else "no version registered"
    return f"{name}: {decision} ({reason}); MLflow run {run.info.run_id}"


def tag_flow_run(tags: list[str]) -> None:
    """Add tags to this flow run (the MLflow run and version it made), for the UI's filters."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        current = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=[*current.tags, *tags])


@flow(name="retrain", description="Snapshot the dataset, train with `mlflow run .`, gate, report.")
def retrain(
    force: bool = False, reason: str = "a person", train_params: dict[str, str] | None = None
) -> State:
    """`force` trains on unchanged data; `reason` says what started the run; `train_params` are
    MLproject parameters (`-P`), e.g. {"epochs": "4"}."""
    logger = get_run_logger()
    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    run_dir = Path(os.environ.get("FLORISENSE_RUN_DIR", PROJECT / "run"))
    logger.info("started by %s", reason)
    manifest, manifest_path = snapshot_dataset(run_dir)
    logger.info("dataset %s: %s", manifest.digest, manifest.counts())
    production = production_now(tracking_uri)
    if production and production.digest == manifest.digest and not force:
        return Completed(
            message=f"skipped: dataset {manifest.digest} is the one Production (version "
            f"{production.version}) was trained on; force=true trains anyway"
        )
    code, why = train(manifest_path, train_params or {}, tracking_uri)
    if code != 0:
        return Failed(message=f"training failed: {why}; nothing was registered or promoted")
    client = MlflowClient(tracking_uri)
    run = trained_run(client, str(flow_run.id))
    if run is None:
        return Failed(message="training ended but no MLflow run carries this flow run's id")
    versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    summary = report(run, versions[0] if versions else None, production, tracking_uri)
    tag_flow_run(
        [f"mlflow-run:{run.info.run_id}"] + [f"model-version:{v.version}" for v in versions]
    )
    logger.info(summary)
    return Completed(message=summary)
