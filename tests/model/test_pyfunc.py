"""The registered pyfunc on a tiny random model: per-row errors, order, probabilities, batches."""

from __future__ import annotations

import base64
import io
import json
import sys
import types

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.pyfunc.scoring_server import predictions_to_json

from florisense_model.model.labels import CLASSES
from florisense_model.model.pyfunc import decode_image_field
from florisense_model.model.runtimes import limit_tensorflow_threads
from florisense_model.pins import serving_requirements
from florisense_model.training.packaging import save_pyfunc_model
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.project import ROOT
from tests.support.tiny_model import TINY_SIZE

MODEL_CODE = ROOT / "florisense_model" / "model"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def frame(*images: object) -> pd.DataFrame:
    return pd.DataFrame({"image": list(images)})


GOOD = b64(encode(photo(CLASS_COLOURS["grass"])))


def test_valid_rows_get_label_confidence_and_probabilities_summing_to_one(tiny_pyfunc):
    result = tiny_pyfunc.predict(frame(GOOD, "data:image/jpeg;base64," + GOOD))
    assert list(result.columns) == [
        "label",
        "label_display",
        "confidence",
        "probabilities",
        "error",
        "run_id",
    ]
    for row in result.to_dict("records"):
        assert row["error"] is None
        assert row["label"] in CLASSES
        assert row["label_display"] in ("Pissenlit", "Herbe")
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["confidence"] == pytest.approx(max(row["probabilities"].values()))
        assert row["run_id"] == "0123456789abcdef"
    # A data URL prefix does not change the answer.
    assert result["confidence"][0] == pytest.approx(result["confidence"][1])


def test_invalid_rows_get_a_specific_error_and_the_others_are_still_answered(tiny_pyfunc):
    inputs = [GOOD, "%%% not base64", None, b64(b"hello, I am text"), b64(b""), 42, GOOD]
    result = tiny_pyfunc.predict(frame(*inputs))
    assert len(result) == len(inputs)
    errors = result["error"].tolist()
    assert errors[0] is None and errors[-1] is None
    assert errors[1] == "invalid base64 in image"
    assert errors[2].startswith("missing image")
    assert errors[3].startswith("not a recognised image")
    assert errors[4].startswith("empty image")
    assert "got int" in errors[5]
    for index in range(1, 6):
        assert result["label"][index] is None and result["probabilities"][index] is None


def test_output_serialises_to_strict_json_without_nan(tiny_pyfunc):
    buffer = io.StringIO()
    predictions_to_json(tiny_pyfunc.predict(frame(GOOD, "bad!")), buffer)
    text = buffer.getvalue()
    assert "NaN" not in text
    body = json.loads(text)["predictions"]
    assert body[1]["label"] is None and body[1]["error"] == "invalid base64 in image"


def test_order_is_kept_across_a_batch_of_64(tiny_pyfunc):
    grass = photo(CLASS_COLOURS["grass"], seed=1)
    dandelion = photo(CLASS_COLOURS["dandelion"], seed=2)
    single_g = tiny_pyfunc.predict(frame(b64(encode(grass))))["probabilities"][0]
    single_d = tiny_pyfunc.predict(frame(b64(encode(dandelion))))["probabilities"][0]
    batch = [b64(encode(grass)) if i % 3 else b64(encode(dandelion)) for i in range(64)]
    batch[10] = "broken"
    result = tiny_pyfunc.predict(frame(*batch))
    assert len(result) == 64
    for index, row in enumerate(result.to_dict("records")):
        if index == 10:
            assert row["error"]
            continue
        expected = single_g if index % 3 else single_d
        assert row["probabilities"]["grass"] == pytest.approx(expected["grass"], abs=1e-5)


def test_batch_larger_than_one_chunk_matches_single_predictions(tiny_pyfunc):
    images = [b64(encode(photo(CLASS_COLOURS["grass"], seed=s))) for s in range(70)]
    batch = tiny_pyfunc.predict(frame(*images))
    last = tiny_pyfunc.predict(frame(images[-1]))
    assert batch["confidence"].iloc[-1] == pytest.approx(last["confidence"][0], abs=1e-5)


def test_all_rows_invalid_still_returns_one_row_each(tiny_pyfunc):
    result = tiny_pyfunc.predict(frame("x", "y"))
    assert result["error"].notna().all() and len(result) == 2


def test_missing_image_column_is_a_clear_error(tiny_pyfunc):
    with pytest.raises(Exception, match="image"):
        tiny_pyfunc.predict(pd.DataFrame({"picture": [GOOD]}))


def test_saved_model_is_self_contained_models_from_code(tiny_pyfunc_dir):
    mlmodel = yaml.safe_load((tiny_pyfunc_dir / "MLmodel").read_text())
    pyfunc_flavor = mlmodel["flavors"]["python_function"]
    assert pyfunc_flavor["model_code_path"].endswith("from_code.py")
    assert "python_model.pkl" not in {p.name for p in tiny_pyfunc_dir.rglob("*")}
    assert (tiny_pyfunc_dir / "code" / "florisense_model" / "model" / "pyfunc.py").is_file()
    assert not list((tiny_pyfunc_dir / "code").rglob("__pycache__"))
    assert {p.name for p in (tiny_pyfunc_dir / "artifacts").iterdir()} == {
        "model.keras",
        "model.onnx",
        "labels.json",
    }
    assert mlmodel["signature"]["inputs"] and mlmodel["saved_input_example_info"]
    requirements = (tiny_pyfunc_dir / "requirements.txt").read_text().splitlines()
    assert requirements == serving_requirements()
    assert not [r for r in requirements if r.startswith(("tensorflow", "keras"))]


def test_the_saved_model_ships_only_the_model_code(tiny_pyfunc_dir):
    code = tiny_pyfunc_dir / "code"
    shipped = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
    model_files = sorted(f"florisense_model/model/{p.name}" for p in MODEL_CODE.glob("*.py"))
    expected = ["florisense_model/__init__.py", *model_files]
    assert shipped == expected
    lines = sum(len((code / name).read_text().splitlines()) for name in shipped)
    assert lines < 1150, lines  # 1,042 with the metrics (model/metrics.py)


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "empty image"), ("   ", "empty image"), ("ab$c", "invalid base64"), (1.5, "got float")],
)
def test_decode_image_field_errors(value, message):
    with pytest.raises(ValueError, match=message):
        decode_image_field(value)


def test_decode_image_field_accepts_data_url_and_line_breaks():
    data = encode(np.zeros((10, 10, 3), np.uint8), "PNG")
    text = base64.encodebytes(data).decode()  # wrapped at 76 chars
    assert decode_image_field("data:image/png;base64," + text) == data


class RecordingThreading:
    def __init__(self, started: bool = False) -> None:
        self.calls: list[int] = []
        self.started = started

    def set_intra_op_parallelism_threads(self, threads: int) -> None:
        if self.started:
            raise RuntimeError("Intra op parallelism cannot be modified after initialization.")
        self.calls.append(threads)


def fake_tf(threading):
    return types.SimpleNamespace(config=types.SimpleNamespace(threading=threading))


def test_tensorflow_gets_one_thread_per_call_unless_the_operator_chose(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    threading = RecordingThreading()
    limit_tensorflow_threads(fake_tf(threading))
    assert threading.calls == [1]

    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    chosen = RecordingThreading()
    limit_tensorflow_threads(fake_tf(chosen))
    assert chosen.calls == []


def test_an_already_started_tensorflow_is_left_alone(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    limit_tensorflow_threads(fake_tf(RecordingThreading(started=True)))  # does not raise


def test_the_keras_runtime_gives_the_compiled_graphs_probabilities(tiny_pyfunc, tiny_pyfunc_dir):
    """`runtime: keras` in the model config (debugging) runs model.keras through TensorFlow."""
    images = [b64(encode(photo(CLASS_COLOURS[c], seed=s))) for c in CLASS_COLOURS for s in (4, 5)]
    through_keras = mlflow.pyfunc.load_model(
        str(tiny_pyfunc_dir), model_config={"runtime": "keras"}
    )
    assert tiny_pyfunc.unwrap_python_model().runtime == "onnx"
    assert through_keras.unwrap_python_model().runtime == "keras"
    compiled = tiny_pyfunc.predict(frame(*images))["probabilities"]
    reference_rows = through_keras.predict(frame(*images))["probabilities"]
    for fast, reference in zip(compiled, reference_rows, strict=True):
        for label in CLASSES:
            assert fast[label] == pytest.approx(reference[label], abs=1e-5)


def test_a_version_without_compiled_graph_serves_through_keras(tiny_keras_file, tmp_path):
    """What versions registered before the compiled graph look like: model.keras only, and
    TensorFlow in their requirements."""
    saved = save_pyfunc_model(
        tmp_path / "model", tiny_keras_file, list(CLASSES), TINY_SIZE, "crop", runtime="keras"
    )
    assert not (saved / "artifacts" / "model.onnx").exists()
    assert any(r.startswith("keras==") for r in (saved / "requirements.txt").read_text().split())
    model = mlflow.pyfunc.load_model(str(saved))
    assert model.unwrap_python_model().runtime == "keras"
    assert model.predict(frame(GOOD))["label"][0] in CLASSES


def test_a_keras_version_without_tensorflow_says_how_to_serve_it(tiny_pyfunc_dir, monkeypatch):
    """The model-server image has no TensorFlow: a Keras-only version fails with one clear line."""
    from florisense_model.model.runtimes import load_network

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    artifacts = {"keras_model": str(tiny_pyfunc_dir / "artifacts" / "model.keras")}
    with pytest.raises(RuntimeError, match="TensorFlow is not installed here: register it again"):
        load_network("keras", artifacts, TINY_SIZE)
