"""The training run's plots: confusion matrix, ROC curve, training curves, misclassified photos,
heat maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
from PIL.Image import Image
from sklearn import metrics


def plot_confusion_matrix(counts: np.ndarray, classes: Sequence[str], path: Path) -> Path:
    """counts[i, j]: photos of class i predicted as class j."""
    figure, axes = plt.subplots(figsize=(4.5, 4))
    metrics.ConfusionMatrixDisplay(counts, display_labels=list(classes)).plot(
        ax=axes, cmap="Greens", colorbar=False
    )
    axes.set_title("Confusion matrix")
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


def plot_heatmaps(
    overlays: Sequence[Image], titles: Sequence[str], path: Path, columns: int = 4
) -> Path:
    """Test photos with their heat maps drawn over them (overlay.py), each titled."""
    rows = max(1, int(np.ceil(len(overlays) / columns)))
    figure, grid = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for axes in grid.ravel():
        axes.axis("off")
    for axes, image, title in zip(grid.ravel(), overlays, titles, strict=False):
        axes.imshow(image)
        axes.set_title(title, fontsize=8)
    figure.suptitle("Where the model sees the dandelion (magenta: evidence, test photos)")
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
