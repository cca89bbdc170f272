"""Metrics and plots for a set of predictions: what the run logs and the promotion gate compares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics

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


def plot_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], path: Path
) -> Path:
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    figure, axes = plt.subplots(figsize=(4.5, 4))
    metrics.ConfusionMatrixDisplay(matrix, display_labels=list(classes)).plot(
        ax=axes, cmap="Greens", colorbar=False
    )
    axes.set_title("Test split: confusion matrix")
    return _save(figure, path)


def plot_roc_curve(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], path: Path
) -> Path:
    figure, axes = plt.subplots(figsize=(4.5, 4))
    metrics.RocCurveDisplay.from_predictions(
        y_true, probabilities[:, 1], pos_label=1, name=f"{classes[1]} vs {classes[0]}", ax=axes
    )
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set_title("Test split: ROC curve")
    return _save(figure, path)


def plot_training_curves(history: dict[str, list[float]], phase_boundary: int, path: Path) -> Path:
    """Loss and accuracy per epoch across both phases, with the fine-tuning start marked."""
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    for axes, key in ((loss_axes, "loss"), (acc_axes, "accuracy")):
        for series, style in ((key, "-"), (f"val_{key}", "--")):
            values = history.get(series, [])
            axes.plot(range(1, len(values) + 1), values, style, label=series)
        if 0 < phase_boundary < len(history.get(key, [])):
            axes.axvline(phase_boundary + 0.5, color="grey", linestyle=":", label="fine-tuning")
        axes.set_xlabel("epoch")
        axes.set_title(key)
        axes.legend()
    return _save(figure, path)


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    path: Path,
    names: Sequence[str] | None = None,
    limit: int = 24,
) -> Path:
    """A grid of the misclassified images, each titled with its file, true label, prediction and
    confidence."""
    all_wrong = np.flatnonzero(probabilities.argmax(axis=1) != y_true)
    wrong = all_wrong[:limit]
    columns = 6
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    figure, grid = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for axes in grid.ravel():
        axes.axis("off")
    for axes, index in zip(grid.ravel(), wrong, strict=False):
        predicted = int(probabilities[index].argmax())
        axes.imshow(images[index])
        name = f"{names[index]}\n" if names is not None else ""
        axes.set_title(
            f"{name}true {classes[y_true[index]]}\npred {classes[predicted]} "
            f"{probabilities[index, predicted]:.0%}",
            fontsize=8,
        )
    if len(wrong) == 0:
        grid[0, 0].text(0, 0.5, "no misclassified test image", fontsize=11)
    figure.suptitle(f"Misclassified test images: {len(all_wrong)} of {len(y_true)}")
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
