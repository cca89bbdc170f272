"""The network: uint8 RGB in, class probabilities out. Pixel scaling lives INSIDE the model, so
no caller can feed it differently scaled pixels than it was trained on."""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from florisense_model.config import ENV_BASE_WEIGHTS

BACKBONE_NAME = "mobilenetv2_backbone"
AUGMENTATION_NAME = "augmentation"


def resolve_base_weights(base_weights: str) -> str | None:
    """'imagenet' (Keras downloads them), 'none' (random init), a local Keras weights file, or a
    folder holding one `*.weights.h5` file (compose mounts one; an empty folder means imagenet)."""
    value = (base_weights or "").strip()
    if value.lower() == "imagenet":
        return "imagenet"
    if value.lower() in ("", "none", "random"):
        return None
    path = Path(os.path.expanduser(value))
    if path.is_dir():
        found = sorted(path.glob("*.weights.h5"))
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ValueError(f"{path} holds several weights files ({names}): name one")
        return str(found[0].resolve()) if found else "imagenet"
    if not path.is_file():
        raise FileNotFoundError(
            f"base weights file not found: {value} "
            "(pass 'imagenet', 'none' or a MobileNetV2 no-top .weights.h5 file)"
        )
    return str(path.resolve())


def build_model(
    num_classes: int,
    image_size: int,
    base_weights: str | None,
    dropout: float = 0.2,
    seed: int = 42,
) -> keras.Model:
    """MobileNetV2 backbone (frozen) + pooling, dropout and a softmax head."""
    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), include_top=False, weights=base_weights
        )
    except Exception as exc:
        if base_weights != "imagenet":
            raise ValueError(f"cannot load base weights {base_weights}: {exc}") from exc
        raise ConnectionError(
            "could not download the ImageNet weights (no internet?): pass base_weights=FILE "
            f"(a MobileNetV2 no-top .weights.h5) or set {ENV_BASE_WEIGHTS}"
        ) from exc
    backbone.name = BACKBONE_NAME
    backbone.trainable = False

    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="uint8", name="image")
    # MobileNetV2 expects [-1, 1]; scaling here means serving can never skew from training.
    # Rescaling also casts the uint8 input to float32.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_unit_range")(inputs)
    x = augmentation(seed)(x)
    # training=False keeps BatchNorm statistics frozen even while fine-tuning (Keras guide).
    x = backbone(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="florisense")


def augmentation(seed: int) -> keras.Sequential:
    """Random flips, rotations, zoom and contrast: active only when training=True."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.08, fill_mode="reflect", seed=seed),
            layers.RandomZoom(0.15, fill_mode="reflect", seed=seed),
            layers.RandomContrast(0.15, value_range=(-1.0, 1.0), seed=seed),
        ],
        name=AUGMENTATION_NAME,
    )


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BACKBONE_NAME)


def unfreeze_top(model: keras.Model, layer_count: int) -> int:
    """Make the top `layer_count` backbone layers trainable (BatchNorm stays frozen)."""
    backbone = backbone_of(model)
    backbone.trainable = True
    trainable = 0
    cutoff = max(0, len(backbone.layers) - layer_count)
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= cutoff and not isinstance(layer, layers.BatchNormalization)
        trainable += int(layer.trainable)
    return trainable
