"""Evaluation, one module for every caller: the figures of a set of predictions (scikit-learn),
a registered model scored on photos through its own predict() (the promotion gate, and any model
URI on a folder of class sub-folders), and the evaluation run that records it in MLflow."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn import metrics

from florisense_model import registry
from florisense_model.model import metrics as serving_metrics
from florisense_model.photos import class_folders, encode_file
from florisense_model.training import plots

# The gate compares this one figure: robust to class imbalance, and what users feel.
GATE_METRIC = "test_balanced_accuracy"


def classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], prefix: str = "test_"
) -> dict[str, float]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1, ROC AUC and log loss."""
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    result = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
        "log_loss": metrics.log_loss(y_true, _clipped(probabilities), labels=labels),
        "samples": float(len(y_true)),
    }
    if len(set(y_true.tolist())) == len(classes) == 2:
        result["roc_auc"] = metrics.roc_auc_score(y_true, probabilities[:, 1])
    for index, name in enumerate(classes):
        result[f"precision_{name}"] = precision[index]
        result[f"recall_{name}"] = recall[index]
        result[f"f1_{name}"] = f1[index]
        result[f"support_{name}"] = float(support[index])
    return {f"{prefix}{key}": float(value) for key, value in result.items()}


def _clipped(probabilities: np.ndarray) -> np.ndarray:
    """Away from 0 (log loss would be infinite) and renormalised, so rows still sum to 1."""
    clipped = np.clip(probabilities.astype(np.float64), 1e-7, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def served_reference(probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """What the model answers on the test split, for the served model's drift alerts
    (model/metrics.py): the share of each predicted label, the share of answers under
    LOW_CONFIDENCE, and the confidence distribution (cumulative shares at the serving
    histogram's bounds)."""
    confidence = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    total = max(len(confidence), 1)
    low_confidence = serving_metrics.LOW_CONFIDENCE
    return {
        "samples": len(confidence),
        "label_share": {c: float((predicted == i).sum() / total) for i, c in enumerate(classes)},
        "low_confidence_threshold": low_confidence,
        "low_confidence_share": float((confidence <= low_confidence).sum() / total),
        "confidence_cumulative_share": {
            str(bound): float((confidence <= bound).sum() / total)
            for bound in serving_metrics.CONFIDENCE_BUCKETS
        },
    }


def reference_metrics(reference: dict[str, Any]) -> dict[str, float]:
    """The reference as run metrics (the MLflow UI compares them across runs)."""
    return {
        f"reference_label_share_{label}": share for label, share in reference["label_share"].items()
    } | {"reference_low_confidence_share": reference["low_confidence_share"]}


def probabilities_from(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> np.ndarray:
    """The per-class probability matrix of pyfunc predictions (rows with errors are NaN)."""
    return np.array(
        [
            [row["probabilities"][c] if row["probabilities"] else np.nan for c in classes]
            for row in rows
        ],
        dtype=np.float64,
    )


def predict_files(
    model: mlflow.pyfunc.PyFuncModel, files: Sequence[Path], batch_size: int = 32
) -> list[dict[str, Any]]:
    """The model's own prediction row for every file, in order, `batch_size` files per call."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        frame = pd.DataFrame({"image": [encode_file(path) for path in batch]})
        rows += model.predict(frame).to_dict("records")
    return rows


def score_model_uri(
    model_uri: str, files: Sequence[Path], labels: Sequence[str], classes: Sequence[str]
) -> float:
    """The gate metric of any registered pyfunc on labelled files, through its own predict()."""
    rows = predict_files(mlflow.pyfunc.load_model(model_uri), files)
    probabilities = probabilities_from(rows, classes)
    if np.isnan(probabilities).any():
        raise ValueError("it failed on some test images")
    y_true = np.array([classes.index(label) for label in labels])
    return classification_metrics(y_true, probabilities, classes)[GATE_METRIC]


def evaluate_folder(model_uri: str, data_dir: Path, batch_size: int = 32) -> dict[str, Any]:
    """Every figure of `model_uri` on data_dir/<class>/ files; files the model refuses are
    listed with its reason, not fatal."""
    # Listed before loading the model: a wrong path fails at once.
    files = [(path, label) for label, paths in class_folders(data_dir).items() for path in paths]
    if not files:
        raise ValueError(f"no files under {data_dir}/<class>/")
    model = mlflow.pyfunc.load_model(model_uri)
    rows = predict_files(model, [path for path, _ in files], batch_size)
    invalid = [
        {"file": str(path.relative_to(data_dir)), "error": row["error"]}
        for (path, _), row in zip(files, rows, strict=True)
        if row["error"]
    ]
    valid = [
        (path, label, row)
        for (path, label), row in zip(files, rows, strict=True)
        if not row["error"]
    ]
    if not valid:
        raise ValueError("no valid image to evaluate on")
    classes = sorted(valid[0][2]["probabilities"])
    unknown = sorted({label for _, label, _ in valid} - set(classes))
    if unknown:
        raise ValueError(f"folders {unknown} are not classes of the model {classes}")
    y_true = np.array([classes.index(label) for _, label, _ in valid])
    probabilities = probabilities_from([row for _, _, row in valid], classes)
    figures = classification_metrics(y_true, probabilities, classes, prefix="")
    figures["expected_calibration_error"] = expected_calibration_error(y_true, probabilities)
    figures["invalid_files"] = float(len(invalid))
    predicted = probabilities.argmax(axis=1)
    confusion = metrics.confusion_matrix(y_true, predicted, labels=list(range(len(classes))))
    return {
        "model_uri": model_uri,
        "data_dir": str(data_dir),
        "classes": classes,
        "metrics": figures,
        "confusion_matrix": {
            "rows_true_columns_predicted": classes,
            "counts": confusion.tolist(),
        },
        "misclassified": [
            {
                "file": str(path.relative_to(data_dir)),
                "true": label,
                "predicted": row["label"],
                "confidence": row["confidence"],
            }
            for path, label, row in valid
            if row["label"] != label
        ],
        "invalid": invalid,
    }


def log_evaluation(report: dict[str, Any]) -> str:
    """An MLflow run with the report's figures and confusion matrix, tagged with the model
    version; the version gets the run id as its `last_evaluation_run` tag."""
    version = registry.version_of(MlflowClient(), report["model_uri"])
    with mlflow.start_run(run_name=f"evaluate {report['model_uri']}") as run:
        tags = {
            "florisense.entry_point": "evaluate",
            "evaluated_model_uri": report["model_uri"],
            "evaluation_data_dir": report["data_dir"],
        }
        if version:
            tags |= {"evaluated_model_name": version[0], "evaluated_model_version": version[1]}
        mlflow.set_tags(tags)
        mlflow.log_metrics(report["metrics"])
        mlflow.log_dict(report, "evaluation/report.json")
        with tempfile.TemporaryDirectory(prefix="florisense-") as tmp:
            counts = np.array(report["confusion_matrix"]["counts"])
            plot = plots.plot_confusion_matrix(
                counts, report["classes"], Path(tmp) / "confusion_matrix.png"
            )
            mlflow.log_artifact(str(plot), "plots")
    if version:
        MlflowClient().set_model_version_tag(
            version[0], version[1], "last_evaluation_run", run.info.run_id
        )
    return run.info.run_id
