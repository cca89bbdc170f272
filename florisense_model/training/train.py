"""Training run: data -> two-phase training -> test evaluation -> MLflow logging -> gate."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import confusion_matrix
from sklearn.utils.class_weight import compute_class_weight

from florisense_model.config import ENV_BASE_WEIGHTS, env_or_default
from florisense_model.overlay import overlay
from florisense_model.training import (
    data,
    evaluation,
    explanations,
    network,
    packaging,
    plots,
)
from florisense_model.training.compile import inference_network
from florisense_model.training.config import TrainConfig
from florisense_model.training.gate import run_gate
from florisense_model.training.quantize import Int8Inputs, calibration_sample
from florisense_model.training.sources import resolve_dataset
from florisense_model.training.tracking import (
    flow_run_tags,
    library_versions,
    log_dataset,
    log_new_params,
)


class EpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics to MLflow under the phase's prefix, and keeps a joint history."""

    def __init__(self, phase: str, history: dict[str, list[float]]) -> None:
        super().__init__()
        self.phase = phase
        self.history = history

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        step = len(self.history.get("loss", []))
        mlflow.log_metrics({f"{self.phase}_{k}": v for k, v in logs.items()}, step=step)


def train_and_register(config: TrainConfig) -> dict[str, Any]:
    """The whole `main` entry point. Returns a summary (run id, version, metrics, gate)."""
    config.validate()
    base_weights = network.resolve_base_weights(
        config.base_weights or env_or_default(ENV_BASE_WEIGHTS, "imagenet")
    )
    data_dir, manifest = resolve_dataset(config.data_dir)
    keras.utils.set_random_seed(config.seed)
    started = time.monotonic()

    dataset = data.scan_dataset(data_dir, exclusions=config.exclusions)
    split = data.split_dataset(dataset, seed=config.seed)
    classes = list(dataset.classes)
    report = data.dataset_report(dataset, split, config.seed)
    _print_dataset(report)

    with mlflow.start_run() as run, tempfile.TemporaryDirectory(prefix="florisense-") as tmp:
        out = Path(tmp)
        log_new_params(
            asdict(config)
            | {
                "data_dir_resolved": str(data_dir),
                "base_weights_resolved": str(base_weights),
                "dataset_sha256": dataset.content_hash,
                "classes": ",".join(classes),
            }
            | {f"lib_{k}": v for k, v in library_versions().items()}
        )
        mlflow.set_tags(
            {"florisense.entry_point": "main", "dataset_sha256": dataset.content_hash}
            | flow_run_tags(os.environ)
        )
        log_dataset(manifest)
        mlflow.log_metrics(
            {f"data_{name}_count": float(len(part)) for name, part in split.parts().items()}
            | {"data_dropped_count": float(len(dataset.dropped))}
        )
        mlflow.log_dict(report, "dataset/report.json")
        for name, rows in data.split_rows(dataset, split).items():
            mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), f"dataset/{name}.csv")

        pixels = {
            name: data.load_pixels(part, dataset.classes, config.image_size, config.resize_mode)
            for name, part in split.parts().items()
        }
        model, history, head_epochs = _fit(config, base_weights, classes, pixels)

        test_x, test_y = pixels["test"]
        probabilities = model.predict(test_x, batch_size=config.batch_size, verbose=0)
        test_metrics = evaluation.classification_metrics(test_y, probabilities, classes)
        mlflow.log_metrics(test_metrics)
        mlflow.log_metric("training_seconds", time.monotonic() - started)
        names = [s.relative(dataset.root) for s in split.test]
        _log_plots(out, history, head_epochs, test_x, test_y, probabilities, classes, names)

        reference = evaluation.served_reference(probabilities, classes)
        mlflow.log_metrics(evaluation.reference_metrics(reference))
        mlflow.log_dict(reference, "monitoring/reference.json")

        keras_path = out / "model.keras"
        # A bare functional copy: same layers and weights, no optimizer state in the artifact.
        keras.Model(model.inputs, model.outputs, name=model.name).save(keras_path)
        keras_bytes = keras_path.stat().st_size
        info = packaging.log_pyfunc_model(
            keras_path,
            classes,
            config.image_size,
            config.resize_mode,
            registered_model_name=config.registered_model_name,
            check_pixels=test_x,  # the compiled graph must agree with Keras on these
            int8=Int8Inputs(calibration_sample(pixels["train"][0]), test_y, probabilities),
            reference=reference,
        )
        version = str(info.registered_model_version)
        _log_heatmaps(out, model, split.test, probabilities, classes, config, data_dir)
        gate = run_gate(
            config.registered_model_name,
            version,
            config.promote,
            test_metrics.get(evaluation.GATE_METRIC),
            [(s.path, s.label) for s in split.test],
            classes,
        )
        mlflow.set_tags({"registered_version": version, "gate.decision": gate.decision})

    summary = {
        "run_id": run.info.run_id,
        "registered_model": config.registered_model_name,
        "version": version,
        "gate": asdict(gate),
        "metrics": test_metrics,
        "wall_seconds": round(time.monotonic() - started, 1),
        "model_keras_bytes": keras_bytes,
    }
    print(json.dumps(summary, indent=2))
    return summary


def _fit(
    config: TrainConfig,
    base_weights: str | None,
    classes: list[str],
    pixels: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[keras.Model, dict[str, list[float]], int]:
    train_x, train_y = pixels["train"]
    val = pixels["val"]
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=train_y)
    class_weight = {i: float(w) for i, w in enumerate(weights)}
    model = network.build_model(
        len(classes), config.image_size, base_weights, config.dropout, config.seed
    )
    history: dict[str, list[float]] = {}

    def fit(phase: str, epochs: int, learning_rate: float) -> None:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        )
        model.fit(
            train_x,
            train_y,
            validation_data=val,
            epochs=epochs,
            batch_size=config.batch_size,
            class_weight=class_weight,
            callbacks=[stop, EpochLogger(phase, history)],
            verbose=2,
            shuffle=True,
        )

    print(f"== phase 1: head on a frozen backbone, up to {config.epochs} epochs", flush=True)
    fit("head", config.epochs, config.learning_rate)
    head_epochs = len(history.get("loss", []))
    if config.fine_tune_epochs and config.fine_tune_layers:
        count = network.unfreeze_top(model, config.fine_tune_layers)
        print(
            f"== phase 2: fine-tuning {count} backbone layers, up to "
            f"{config.fine_tune_epochs} epochs at lr {config.fine_tune_learning_rate}",
            flush=True,
        )
        fit("fine_tune", config.fine_tune_epochs, config.fine_tune_learning_rate)
    return model, history, head_epochs


def _log_plots(
    out: Path, history, head_epochs, test_x, test_y, probabilities, classes, names
) -> None:
    counts = confusion_matrix(test_y, probabilities.argmax(1), labels=range(len(classes)))
    files = [
        plots.plot_confusion_matrix(counts, classes, out / "confusion_matrix.png"),
        plots.plot_training_curves(history, head_epochs, out / "training_curves.png"),
        plots.plot_misclassified(
            test_x, test_y, probabilities, classes, out / "misclassified.png", names
        ),
    ]
    if len(set(test_y.tolist())) == 2:
        files.append(plots.plot_roc_curve(test_y, probabilities, classes, out / "roc_curve.png"))
    for plot in files:
        mlflow.log_artifact(str(plot), "plots")
    mlflow.log_dict(history, "plots/history.json")


def _log_heatmaps(out, model, test, probabilities, classes, config, data_dir) -> None:
    """plots/heatmaps.png (test photos with their maps), and the pointing game on the photos with
    hand-checked flower boxes (explanations.py), as metrics."""
    explaining = inference_network(model)
    if not isinstance(explaining.output, dict):
        print("== heat maps: this network has no class maps (no pooled dense head)", flush=True)
        return
    maps = partial(
        explanations.heatmaps,
        explaining,
        classes=classes,
        image_size=config.image_size,
        resize_mode=config.resize_mode,
    )
    shown = explanations.sample_for_plot([s.label for s in test])
    overlays, titles = [], []
    for index, heatmap in zip(shown, maps([test[i].path for i in shown]), strict=True):
        with Image.open(test[index].path) as photo:
            overlays.append(overlay(photo, heatmap))
        best = int(probabilities[index].argmax())
        titles.append(
            f"{test[index].relative(data_dir)}\ntrue {test[index].label}, "
            f"pred {classes[best]} {probabilities[index, best]:.0%}"
        )
    mlflow.log_artifact(str(plots.plot_heatmaps(overlays, titles, out / "heatmaps.png")), "plots")
    boxed = explanations.load_boxes(data_dir)
    if boxed:
        score = explanations.pointing_game(boxed, maps([photo.path for photo in boxed]))
        mlflow.log_metrics(score.metrics())
        print(f"== heat maps, pointing game on boxed photos: {score.metrics()}", flush=True)


def _print_dataset(report: dict[str, Any]) -> None:
    print(
        f"== dataset {report['data_dir']}: kept {report['kept']}, dropped "
        f"{report['dropped_count']}, sha256 {report['content_sha256'][:12]}",
        flush=True,
    )
    for name, counts in report["split_counts"].items():
        print(f"   {name}: {counts}", flush=True)
    for dropped in report["dropped"]:
        print(f"   dropped {dropped['path']}: {dropped['reason']}", flush=True)
