"""The int8 graph: quantized from the float graph, kept only when it classifies the test photos
at least as well as Keras, then served by default (the float graph and Keras stay selectable)."""

from __future__ import annotations

import base64

import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest

from florisense_model.model.labels import CLASSES
from florisense_model.training.packaging import save_pyfunc_model
from florisense_model.training.quantize import Int8Check, Int8Inputs, calibration_sample
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.tiny_model import TINY_SIZE, tiny_classifier


def check(keras: float, int8: float) -> Int8Check:
    return Int8Check(keras, int8, label_agreement=0.9, max_abs_diff=0.1)


def test_int8_is_kept_only_if_its_balanced_accuracy_does_not_drop():
    assert check(0.94, 0.94).accepted
    assert check(0.94, 0.96).accepted
    assert not check(0.94, 0.93).accepted
    assert check(0.94, 0.93).metrics()["int8_accepted"] == 0.0


def test_calibration_photos_are_spread_over_the_whole_split():
    pixels = np.arange(200).reshape(200, 1, 1, 1)
    sample = calibration_sample(pixels, count=5)
    assert sample.ravel().tolist() == [0, 50, 100, 149, 199]
    assert len(calibration_sample(pixels[:3], count=5)) == 3


def test_a_kept_int8_graph_is_served_by_default_and_the_others_stay_selectable(tmp_path):
    keras_file = tmp_path / "model.keras"
    model = tiny_classifier()
    model.save(keras_file)
    rng = np.random.default_rng(3)
    photos = rng.integers(0, 256, (24, TINY_SIZE, TINY_SIZE, 3), dtype=np.uint8)
    probabilities = model.predict(photos, verbose=0)
    # Labels Keras gets all wrong: any int8 graph does at least as well, so it is kept.
    wrong = 1 - probabilities.argmax(axis=1)
    saved = save_pyfunc_model(
        tmp_path / "pyfunc",
        keras_file,
        list(CLASSES),
        TINY_SIZE,
        "crop",
        check_pixels=photos,
        int8=Int8Inputs(photos[:8], wrong, probabilities),
    )
    assert (saved / "artifacts" / "model.int8.onnx").exists()
    requirements = (saved / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "tensorflow" not in requirements
    served = mlflow.pyfunc.load_model(str(saved))
    assert served.unwrap_python_model().runtime == "onnx-int8"
    good = base64.b64encode(encode(photo(CLASS_COLOURS["grass"]))).decode("ascii")
    answer = served.predict(pd.DataFrame({"image": [good, "not base64!"]}))
    assert answer["label"][0] in CLASSES and answer["error"][1]
    # The head stays in float: probabilities at full resolution, summing to 1.
    assert sum(answer["probabilities"][0].values()) == pytest.approx(1.0, abs=1e-6)
    # Only the convolutions are int8: nothing from a DequantizeLinear feeds the dense head.
    graph = onnx.load(str(saved / "artifacts" / "model.int8.onnx")).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    head = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    assert head and all(producers.get(i) != "DequantizeLinear" for n in head for i in n.input)
    float_graph = mlflow.pyfunc.load_model(str(saved), model_config={"runtime": "onnx"})
    assert float_graph.unwrap_python_model().runtime == "onnx"


def test_the_served_runtime_can_be_chosen_by_environment(tmp_path, monkeypatch):
    """`mlflow models serve` has no --model-config: MLFLOW_PYFUNC_INFERENCE_CONFIG is how an
    operator serves model.keras or the float graph of a version (README, "Serving runtime")."""
    keras_file = tmp_path / "model.keras"
    tiny_classifier().save(keras_file)
    saved = save_pyfunc_model(tmp_path / "pyfunc", keras_file, list(CLASSES), TINY_SIZE, "crop")
    monkeypatch.setenv("MLFLOW_PYFUNC_INFERENCE_CONFIG", '{"runtime": "keras"}')
    assert mlflow.pyfunc.load_model(str(saved)).unwrap_python_model().runtime == "keras"
