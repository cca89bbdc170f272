"""scripts/evaluate.py against the real stack: figures, JSON, invalid files listed (not fatal),
and the evaluation run linked to the model version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from florisense_model.training.evaluation import expected_calibration_error
from tests.support.project import ROOT
from tests.support.servers import child_env

pytestmark = pytest.mark.integration


def run_evaluate(config, *args: str) -> subprocess.CompletedProcess:
    """scripts/evaluate.py on the Production model, against the test stack's tracking server."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.evaluate",
            "--model-uri",
            "models:/florisense/Production",
            *args,
        ],
        cwd=ROOT,
        env=child_env(MLFLOW_TRACKING_URI=config.tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_expected_calibration_error():
    y_true = np.array([0, 0, 1, 1])
    perfect = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(y_true, perfect) == pytest.approx(0.0)
    overconfident = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])  # half right
    assert expected_calibration_error(y_true, overconfident) == pytest.approx(0.4)


def test_evaluate_a_registered_version_and_log_it(serving_stack, tmp_path):
    config, photos = serving_stack
    folder = tmp_path / "eval"
    shutil.copytree(photos, folder)
    (folder / "grass" / "notes.jpg").write_text("not a photo")
    report_file = tmp_path / "report.json"
    result = run_evaluate(
        config, "--data-dir", str(folder), "--json", str(report_file), "--log-to-mlflow"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "invalid grass/notes.jpg: not a recognised image" in result.stdout
    report = json.loads(report_file.read_text())
    metrics = report["metrics"]
    assert metrics["samples"] == 40 and metrics["invalid_files"] == 1
    for name in (
        "accuracy",
        "balanced_accuracy",
        "roc_auc",
        "expected_calibration_error",
        "precision_grass",
        "recall_dandelion",
        "f1_grass",
    ):
        assert 0.0 <= metrics[name] <= 1.0, name
    counts = np.array(report["confusion_matrix"]["counts"])
    assert counts.sum() == 40 and counts.trace() / 40 == pytest.approx(metrics["accuracy"])
    assert len(report["misclassified"]) == 40 - counts.trace()

    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    production = client.get_latest_versions("florisense", stages=["Production"])[0]
    run_id = client.get_model_version("florisense", production.version).tags["last_evaluation_run"]
    run = client.get_run(run_id)
    assert run.data.tags["evaluated_model_version"] == production.version
    assert run.data.metrics["balanced_accuracy"] == pytest.approx(metrics["balanced_accuracy"])
    # The figures are logged once (scikit-learn's), with the confusion matrix as a plot.
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {
        "plots/confusion_matrix.png"
    }
    assert {a.path for a in client.list_artifacts(run_id, "evaluation")} == {
        "evaluation/report.json"
    }


def test_evaluate_refuses_a_missing_folder_in_one_line(serving_stack, tmp_path):
    config, _ = serving_stack
    result = run_evaluate(config, "--data-dir", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "florisense: error: data directory not found" in result.stderr
