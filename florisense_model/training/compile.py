"""Compile a trained Keras classifier into the portable inference graph the model serves with
(ONNX, run by ONNX Runtime), and check it against Keras before anything is registered."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from florisense_model.model.class_maps import with_class_maps
from florisense_model.model.runtimes import onnx_forward
from florisense_model.training.network import AUGMENTATION_NAME

ONNX_FILE = "model.onnx"
# The compiled graph must give Keras's probabilities to within this, on the run's test photos.
MAX_PROBABILITY_DIFFERENCE = 1e-4


class CompiledGraphMismatch(ValueError):
    """The compiled graph disagrees with Keras: the run fails, nothing is registered."""


def inference_network(model: keras.Model, class_maps: bool = True) -> keras.Model:
    """The same layers and weights without those that only act in training (augmentation,
    dropout): the converters cannot translate their random ops, and at inference they are the
    identity, so the probabilities are unchanged. With `class_maps`, the network also outputs
    its class activation maps (class_maps.py), for heat maps."""
    if not isinstance(model, keras.Model) or not hasattr(model, "input_shape"):
        return model
    x = inputs = keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype, name="image")
    for layer in model.layers[1:]:
        if layer.name == AUGMENTATION_NAME or isinstance(layer, layers.Dropout):
            continue
        x = layer(x)
    network = keras.Model(inputs, x, name=f"{model.name}_inference")
    return with_class_maps(network) if class_maps else network


def export_onnx(model: keras.Model, target: Path) -> Path:
    """The inference network as ONNX (uint8 NHWC input, any batch size), written to `target`."""
    network = inference_network(model)
    network(np.zeros((1, *network.input_shape[1:]), network.inputs[0].dtype))  # export needs a call
    network.export(str(target), format="onnx", verbose=False)
    return target


def onnx_probabilities(graph: Path, pixels: np.ndarray, batch: int = 16) -> np.ndarray:
    """The graph's probabilities on `pixels` (uint8 images), through the forward pass the model
    serves with, `batch` images a call."""
    forward = onnx_forward(str(graph), threads=os.cpu_count())
    return np.concatenate([forward(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])


def max_difference(model: keras.Model, onnx_path: Path, pixels: np.ndarray) -> float:
    """The largest absolute difference between Keras's and ONNX Runtime's probabilities."""
    expected = model.predict(pixels, batch_size=16, verbose=0)
    return float(np.abs(onnx_probabilities(onnx_path, pixels) - expected).max())


def compile_and_check(keras_path: Path, target: Path, pixels: np.ndarray) -> float:
    """Export `keras_path` as ONNX to `target` and check it on `pixels` (uint8 images); returns
    the largest difference, or raises CompiledGraphMismatch."""
    model = keras.saving.load_model(keras_path, compile=False)
    export_onnx(model, target)
    difference = max_difference(model, target, pixels)
    if difference > MAX_PROBABILITY_DIFFERENCE:
        raise CompiledGraphMismatch(
            f"the compiled ONNX graph differs from Keras by {difference:.2e} on "
            f"{len(pixels)} test photos (max {MAX_PROBABILITY_DIFFERENCE:g}): not registered"
        )
    return difference


def sample_pixels(image_size: int, count: int = 16, seed: int = 0) -> np.ndarray:
    """Seeded random images, to check a model that comes without photos (import_keras)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8)
