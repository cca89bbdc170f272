"""Measure which resize mode (centre crop or letterbox) suits the data: a linear head on frozen
backbone features per mode, fitted on the train split and scored on the validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

from florisense_model.config import RESIZE_MODES
from florisense_model.training import data, network


def compare_resize_modes(
    data_dir: str, base_weights: str, image_size: int, seed: int = 42
) -> dict[str, Any]:
    dataset = data.scan_dataset(data_dir)
    split = data.split_dataset(dataset, seed=seed)
    model = network.build_model(
        len(dataset.classes), image_size, network.resolve_base_weights(base_weights)
    )
    backbone = network.backbone_of(model)
    results: dict[str, Any] = {
        "image_size": image_size,
        "seed": seed,
        "train": len(split.train),
        "val": len(split.val),
    }
    for mode in RESIZE_MODES:
        features = {}
        for name in ("train", "val"):
            x, y = data.load_pixels(getattr(split, name), dataset.classes, image_size, mode)
            scaled = x.astype(np.float32) / 127.5 - 1.0  # the model's own scaling layer
            pooled = backbone.predict(scaled, batch_size=32, verbose=0).mean(axis=(1, 2))
            features[name] = (pooled, y)
        head = LogisticRegression(max_iter=2000, C=1.0).fit(*features["train"])
        val_x, val_y = features["val"]
        proba = head.predict_proba(val_x)
        results[mode] = {
            "val_accuracy": float(accuracy_score(val_y, proba.argmax(1))),
            "val_log_loss": float(log_loss(val_y, proba)),
        }
    return results
