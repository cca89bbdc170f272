"""A tiny random Keras classifier with the product's input contract (uint8, scaling inside),
saved as the real FloriSense pyfunc: fast enough for unit tests, same code path as production."""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
import pytest
from keras import layers

from florisense_model.config import CLASSES
from florisense_model.model_package import save_pyfunc_model

TINY_SIZE = 32


def tiny_classifier(size: int = TINY_SIZE, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), dtype="uint8")
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def tiny_keras_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    tiny_classifier().save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pyfunc_dir(tmp_path_factory, tiny_keras_file) -> Path:
    target = tmp_path_factory.mktemp("pyfunc") / "model"
    return save_pyfunc_model(
        target, tiny_keras_file, list(CLASSES), TINY_SIZE, "crop", run_id="0123456789abcdef"
    )


@pytest.fixture(scope="session")
def tiny_pyfunc(tiny_pyfunc_dir):
    return mlflow.pyfunc.load_model(str(tiny_pyfunc_dir))
