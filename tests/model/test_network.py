"""The network's contract: uint8 in, scaling inside, augmentation only in training, fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from florisense_model.training import network

SIZE = 64


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return network.build_model(2, SIZE, base_weights=None, seed=1)


def test_uint8_input_and_softmax_output(model):
    assert model.input.dtype == "uint8"
    out = model(np.zeros((3, SIZE, SIZE, 3), np.uint8), training=False).numpy()
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_pixel_scaling_is_a_layer_inside_the_model(model):
    scaling = model.get_layer("scale_to_unit_range")
    assert scaling.scale == pytest.approx(1 / 127.5) and scaling.offset == pytest.approx(-1.0)
    scaled = scaling(np.array([[0, 255]], np.uint8)).numpy()
    np.testing.assert_allclose(scaled, [[-1.0, 1.0]], atol=1e-6)


def test_augmentation_acts_only_in_training(model):
    batch = np.random.default_rng(0).integers(0, 255, (4, SIZE, SIZE, 3), dtype=np.uint8)
    augment = model.get_layer(network.AUGMENTATION_NAME)
    scaled = model.get_layer("scale_to_unit_range")(batch)
    np.testing.assert_array_equal(augment(scaled, training=False).numpy(), scaled.numpy())
    assert not np.allclose(augment(scaled, training=True).numpy(), scaled.numpy())
    first = model(batch, training=False).numpy()
    np.testing.assert_array_equal(first, model(batch, training=False).numpy())


def test_backbone_starts_frozen_and_unfreeze_top_spares_batchnorm(model):
    backbone = network.backbone_of(model)
    assert not backbone.trainable
    count = network.unfreeze_top(model, 20)
    trainable = [layer for layer in backbone.layers if layer.trainable]
    assert len(trainable) == count and 0 < count <= 20
    assert all(not isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert all(not layer.trainable for layer in backbone.layers[:-20])


def test_base_weights_resolution(tmp_path):
    assert network.resolve_base_weights("imagenet") == "imagenet"
    assert network.resolve_base_weights("none") is None
    with pytest.raises(FileNotFoundError, match="base weights file not found"):
        network.resolve_base_weights(str(tmp_path / "missing.weights.h5"))


def test_a_weights_folder_gives_its_one_file_or_imagenet_when_empty(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    assert network.resolve_base_weights(str(folder)) == "imagenet"  # compose, no file mounted
    (folder / "notes.txt").write_text("not weights")
    first = folder / "mobilenet_v2.weights.h5"
    first.write_bytes(b"")
    assert network.resolve_base_weights(str(folder)) == str(first.resolve())
    (folder / "other.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="several weights files"):
        network.resolve_base_weights(str(folder))


def test_local_weights_file_loads_into_the_backbone():
    from tests.support.images import require_env_path

    weights = require_env_path("FLORISENSE_BASE_WEIGHTS")
    model = network.build_model(2, 96, network.resolve_base_weights(str(weights)))
    kernel = network.backbone_of(model).get_layer("Conv1").get_weights()[0]
    random = network.build_model(2, 96, None).get_layer(network.BACKBONE_NAME)
    assert not np.allclose(kernel, random.get_layer("Conv1").get_weights()[0])
