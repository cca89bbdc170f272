"""A tiny random Keras classifier with the product's input contract (uint8, scaling inside):
fast enough for unit tests, same code path as production once packaged."""

from __future__ import annotations

import keras
from keras import layers

from florisense_model.model.labels import CLASSES

TINY_SIZE = 32


def tiny_classifier(size: int = TINY_SIZE, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), dtype="uint8")
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs)
