"""Evaluate any model URI on a folder of class sub-folders, through the model's own predict():
metrics, calibration, confusion matrix, misclassified and invalid files; optionally recorded as an
MLflow evaluation run linked to the model version."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from florisense_model.evaluation import classification_metrics
from florisense_model.model_package import encode_file, probabilities_from


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


def folder_files(data_dir: Path) -> list[tuple[Path, str]]:
    """(file, class) for every file under data_dir/<class>/, sorted."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory not found: {root}")
    files = [
        (path, folder.name)
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]
    if not files:
        raise ValueError(f"no files under {root}/<class>/")
    return files


def evaluate_folder(model_uri: str, data_dir: Path, batch_size: int = 32) -> dict[str, Any]:
    files = folder_files(data_dir)  # before loading the model: a wrong path fails at once
    model = mlflow.pyfunc.load_model(model_uri)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        frame = pd.DataFrame({"image": [encode_file(path) for path, _ in batch]})
        rows += model.predict(frame).to_dict("records")
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
    probabilities = probabilities_from(pd.DataFrame([row for _, _, row in valid]), classes)
    metrics = classification_metrics(y_true, probabilities, classes, prefix="")
    metrics["expected_calibration_error"] = expected_calibration_error(y_true, probabilities)
    metrics["invalid_files"] = float(len(invalid))
    predicted = probabilities.argmax(axis=1)
    confusion = pd.crosstab(
        pd.Categorical([classes[i] for i in y_true], categories=classes),
        pd.Categorical([classes[i] for i in predicted], categories=classes),
        dropna=False,
    )
    return {
        "model_uri": model_uri,
        "data_dir": str(data_dir),
        "classes": classes,
        "metrics": metrics,
        "confusion_matrix": {
            "rows_true_columns_predicted": classes,
            "counts": confusion.to_numpy().tolist(),
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
        "_predictions": pd.DataFrame(
            {
                "label": [label for _, label, _ in valid],
                "prediction": [row["label"] for _, _, row in valid],
            }
        ),
    }


def model_version_of(model_uri: str) -> tuple[str, str] | None:
    """(name, version) for models:/name/N, models:/name/Stage and models:/name@alias URIs."""
    match = re.fullmatch(r"models:/([^/@]+)(?:/([^/]+)|@(.+))", model_uri)
    if not match:
        return None
    name, reference, alias = match.groups()
    client = MlflowClient()
    if alias:
        return name, client.get_model_version_by_alias(name, alias).version
    if reference.isdigit():
        return name, reference
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        latest = client.get_latest_versions(name, stages=[reference])
    return (name, latest[0].version) if latest else None


def log_evaluation(report: dict[str, Any]) -> str:
    """An MLflow run with the figures (MLflow's own classifier evaluator adds its metrics and
    confusion matrix), tagged with the model version; the version gets the run id as a tag."""
    version = model_version_of(report["model_uri"])
    name = f"evaluate {report['model_uri']}"
    with mlflow.start_run(run_name=name) as run:
        tags = {
            "florisense.entry_point": "evaluate",
            "evaluated_model_uri": report["model_uri"],
            "evaluation_data_dir": report["data_dir"],
        }
        if version:
            tags |= {"evaluated_model_name": version[0], "evaluated_model_version": version[1]}
        mlflow.set_tags(tags)
        mlflow.log_metrics(report["metrics"])
        mlflow.log_dict(public_report(report), "evaluation/report.json")
        mlflow.models.evaluate(
            data=report["_predictions"],
            targets="label",
            predictions="prediction",
            model_type="classifier",
        )
    if version:
        MlflowClient().set_model_version_tag(
            version[0], version[1], "last_evaluation_run", run.info.run_id
        )
    return run.info.run_id


def public_report(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if not key.startswith("_")}
