"""Heat maps: the class maps in the compiled graph are exact, the pyfunc answers them with the
param `explain`, mapped onto the photo as sent; versions that cannot explain say so."""

from __future__ import annotations

import base64

import keras
import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest
from keras import layers
from PIL import Image

from florisense_model.model.class_maps import CLASS_MAPS_OUTPUT
from florisense_model.model.heatmaps import cell_centres, dandelion_heatmap, resample, stitch
from florisense_model.model.labels import CLASSES
from florisense_model.model.preprocessing import PhotoRegion, preprocess_tiles
from florisense_model.model.runtimes import onnx_network
from florisense_model.overlay import overlay
from florisense_model.training.compile import export_onnx
from florisense_model.training.packaging import save_pyfunc_model
from florisense_model.training.quantize import class_map_nodes, quantize_int8
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.tiny_model import TINY_SIZE, tiny_classifier


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    model = tiny_classifier()
    return model, export_onnx(model, tmp_path_factory.mktemp("graph") / "model.onnx")


def test_the_compiled_class_maps_average_back_to_the_probabilities(tiny_graph):
    """Exact for a pooled dense head: softmax(cell mean of the maps + bias) = probabilities."""
    model, graph = tiny_graph
    pixels = np.random.default_rng(3).integers(0, 256, (5, TINY_SIZE, TINY_SIZE, 3), np.uint8)
    network = onnx_network(str(graph))
    probabilities, maps = network.forward(pixels), network.class_maps(pixels)
    assert maps.shape == (5, TINY_SIZE - 2, TINY_SIZE - 2, len(CLASSES))
    bias = model.layers[-1].get_weights()[1]
    rebuilt = softmax(maps.mean(axis=(1, 2)) + bias)
    assert np.abs(rebuilt - probabilities).max() < 1e-5
    assert np.abs(probabilities - model.predict(pixels, verbose=0)).max() < 1e-5


def test_int8_keeps_the_class_maps_in_float(tiny_graph, tmp_path):
    _, graph = tiny_graph
    names = class_map_nodes(onnx.load(str(graph)).graph)
    assert any("MatMul" in name for name in names)
    pixels = np.random.default_rng(4).integers(0, 256, (8, TINY_SIZE, TINY_SIZE, 3), np.uint8)
    int8 = quantize_int8(graph, tmp_path / "model.int8.onnx", pixels)
    quantized = onnx.load(str(int8)).graph
    matmuls = [node for node in quantized.node if node.op_type == "MatMul"]
    # The class maps' product still takes float weights (no DequantizeLinear feeding it).
    producers = {out: node.op_type for node in quantized.node for out in node.output}
    weights = [name for node in matmuls for name in node.input if name not in producers]
    assert matmuls and weights, "the class-map MatMul should multiply by a float initializer"
    assert onnx_network(str(int8)).class_maps(pixels).shape[-1] == len(CLASSES)


def test_tiles_are_the_photo_fitted_at_twice_the_size_and_cut_in_four():
    """A 400x300 photo letterboxed into 448 px sits between rows 56 and 392, and the four
    224 px tiles, row by row, put the large square back together."""
    photo_bytes = encode(photo(CLASS_COLOURS["grass"], size=(300, 400)))  # (h, w)
    tiles, region = preprocess_tiles(photo_bytes, 224, "letterbox", 2)
    assert tiles.shape == (4, 224, 224, 3) and tiles.dtype == np.uint8
    assert region == PhotoRegion(0, 56, 448, 392)
    top = np.concatenate([tiles[0], tiles[1]], axis=1)
    bottom = np.concatenate([tiles[2], tiles[3]], axis=1)
    square = np.concatenate([top, bottom], axis=0)
    assert (square[:50] == 128).all() and (square[-50:] == 128).all()  # the grey bars
    assert not (square[60:380] == 128).all()


def test_the_map_is_laid_over_the_photo_not_the_letterbox():
    """A 400x300 photo letterboxed into 224 px sits between rows 28 and 196: the answered grid
    covers that band only, keeps the photo's shape, and a hot cell lands where it is."""
    region = PhotoRegion(0, 28, 224, 196)
    evidence = np.zeros((7, 7))
    evidence[1, 5] = 1.0  # a hot cell at x 160-192, y 32-64 of the square
    grid = resample(evidence, region, 224)
    assert grid.shape == (10, 14)  # 14 cells along the long side, 3:4 kept
    row, col = np.unravel_index(grid.argmax(), grid.shape)
    # Back in photo pixels: x = (col + .5) * 400 / 14, y = (row + .5) * 300 / 10.
    x, y = (col + 0.5) * 400 / 14, (row + 0.5) * 300 / 10
    assert 160 * 400 / 224 <= x <= 192 * 400 / 224
    assert (32 - 28) * 300 / 168 <= y <= (64 - 28) * 300 / 168 + 300 / 10


def test_crop_mode_leaves_the_unseen_sides_at_zero():
    region = PhotoRegion(-37, 0, 261, 224)  # a landscape photo, its sides cut off by crop
    grid = resample(np.ones((7, 7)), region, 224)
    assert grid[:, 0].max() == 0 and grid[:, -1].max() == 0
    assert grid[:, grid.shape[1] // 2].min() == 1


def test_heatmap_values_are_normalised_evidence_for_dandelion():
    maps = np.zeros((7, 7, 2))
    maps[3, 3] = (4.0, 1.0)  # dandelion over grass here
    maps[0, 0] = (0.0, 5.0)  # grass here: no evidence for dandelion
    grid = np.asarray(dandelion_heatmap(maps, list(CLASSES), PhotoRegion(0, 0, 224, 224), 224))
    assert grid.max() == 1.0 and grid.min() == 0.0
    assert grid[0, 0] == 0.0
    nothing = dandelion_heatmap(
        np.zeros((7, 7, 2)), list(CLASSES), PhotoRegion(0, 0, 224, 224), 224
    )
    assert np.asarray(nothing).max() == 0.0


def test_explain_adds_a_heatmap_per_valid_row(tiny_pyfunc):
    landscape = b64(encode(photo(CLASS_COLOURS["dandelion"], size=(300, 400))))  # (h, w)
    portrait = b64(encode(photo(CLASS_COLOURS["grass"], size=(400, 300))))
    frame = pd.DataFrame({"image": [landscape, "not base64!", portrait]})
    result = tiny_pyfunc.predict(frame, params={"explain": True})
    assert list(result.columns)[-1] == "heatmap"
    rows = result.to_dict("records")
    assert rows[1]["heatmap"] is None and rows[1]["error"]
    # The tiny model's map is 30x30 a tile: 2x2 tiles stitched, sampled twice per cell, 120
    # cells along the long side, 3:4 kept (within a cell: JPEG's reduced-scale decoding rounds).
    wide, tall = np.asarray(rows[0]["heatmap"]), np.asarray(rows[2]["heatmap"])
    assert wide.shape[1] == 120 and abs(wide.shape[0] - 90) <= 1
    assert tall.shape[0] == 120 and abs(tall.shape[1] - 90) <= 1
    for grid in (wide, tall):
        assert grid.min() >= 0.0 and grid.max() <= 1.0
    # Verdicts do not change when explaining.
    plain = tiny_pyfunc.predict(frame)
    assert "heatmap" not in plain.columns
    assert plain["label"].tolist() == result["label"].tolist()
    assert plain["confidence"][0] == pytest.approx(result["confidence"][0], abs=1e-6)


def test_explain_false_or_null_is_a_plain_prediction(tiny_pyfunc):
    frame = pd.DataFrame({"image": [b64(encode(photo(CLASS_COLOURS["grass"])))]})
    for params in ({"explain": False}, {"explain": None}, None):
        assert "heatmap" not in tiny_pyfunc.predict(frame, params=params).columns


def test_explain_of_a_large_batch_keeps_rows_in_order(tiny_pyfunc):
    images = [
        b64(encode(photo(CLASS_COLOURS[c], size=(200 + 10 * i, 150), seed=i)))
        for i, c in enumerate(list(CLASS_COLOURS) * 10)
    ]
    explained = tiny_pyfunc.predict(pd.DataFrame({"image": images}), params={"explain": True})
    one_by_one = [
        tiny_pyfunc.predict(pd.DataFrame({"image": [image]}), params={"explain": True})
        for image in images[:3] + images[-2:]
    ]
    for index, single in zip([0, 1, 2, 18, 19], one_by_one, strict=True):
        assert np.allclose(explained["heatmap"][index], single["heatmap"][0], atol=1e-3)


def test_the_signature_declares_explain(tiny_pyfunc):
    params = tiny_pyfunc.metadata.get_params_schema().to_dict()
    assert params == [{"name": "explain", "type": "boolean", "default": False, "shape": None}]
    with pytest.raises(mlflow.exceptions.MlflowException, match="explain"):
        tiny_pyfunc.predict(pd.DataFrame({"image": ["x"]}), params={"explain": "yes"})


def test_a_network_without_a_pooled_head_says_it_cannot_explain(tmp_path):
    inputs = keras.Input((TINY_SIZE, TINY_SIZE, 3), dtype="uint8")
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = layers.Flatten()(layers.Conv2D(2, 3, strides=4)(x))
    flat = keras.Model(inputs, layers.Dense(len(CLASSES), activation="softmax")(x))
    flat.save(tmp_path / "model.keras")
    saved = save_pyfunc_model(
        tmp_path / "model", tmp_path / "model.keras", list(CLASSES), TINY_SIZE, "crop"
    )
    model = mlflow.pyfunc.load_model(str(saved))
    frame = pd.DataFrame({"image": [b64(encode(photo(CLASS_COLOURS["grass"])))]})
    assert model.predict(frame)["label"][0] in CLASSES
    with pytest.raises(mlflow.exceptions.MlflowException, match="cannot draw heat maps"):
        model.predict(frame, params={"explain": True})


def test_the_keras_runtime_explains_like_the_compiled_graph(tiny_pyfunc_dir):
    frame = pd.DataFrame({"image": [b64(encode(photo(CLASS_COLOURS["dandelion"], seed=5)))]})
    explain = {"explain": True}
    onnx_answer = mlflow.pyfunc.load_model(str(tiny_pyfunc_dir)).predict(frame, params=explain)
    keras_model = mlflow.pyfunc.load_model(str(tiny_pyfunc_dir), model_config={"runtime": "keras"})
    keras_answer = keras_model.predict(frame, params=explain)
    assert np.allclose(onnx_answer["heatmap"][0], keras_answer["heatmap"][0], atol=1e-3)


def test_overlay_tints_the_photo_where_the_evidence_is():
    base = Image.new("RGB", (80, 60), (0, 128, 0))
    heatmap = [[0.0, 0.0, 1.0, 1.0]] * 3
    drawn = np.asarray(overlay(base, heatmap)).astype(int)
    assert drawn.shape == (60, 80, 3)
    assert (drawn[:, :10] == (0, 128, 0)).all()  # no evidence: the photo unchanged
    assert drawn[30, 75, 0] > 100 and drawn[30, 75, 1] < 80  # strong evidence: tinted


def test_class_maps_output_is_named(tiny_graph):
    names = [output.name for output in onnx.load(str(tiny_graph[1])).graph.output]
    assert sorted(names) == sorted(["probabilities", CLASS_MAPS_OUTPUT])


def test_stitch_puts_each_tiles_map_where_the_tile_was():
    tile_maps = np.stack([np.full((3, 3, 2), float(i)) for i in range(4)])
    mosaic = stitch(tile_maps, 2)
    assert mosaic.shape == (6, 6, 2)
    assert mosaic[0, 0, 0] == 0 and mosaic[0, 5, 0] == 1
    assert mosaic[5, 0, 0] == 2 and mosaic[5, 5, 0] == 3


def test_cell_centres_are_the_usual_cam_centres():
    assert cell_centres(7, 224).tolist() == [16, 48, 80, 112, 144, 176, 208]
