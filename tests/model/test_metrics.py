"""The model server's own metrics (model/metrics.py), from the real pyfunc: off unless the port is
set, then exact counts by label and error kind, the request's size and time, the version, and the
training reference the model carries."""

from __future__ import annotations

import base64
import collections

import mlflow
import numpy as np
import pandas as pd
import pytest

from florisense_model.model import metrics
from florisense_model.model.labels import CLASSES
from florisense_model.model.preprocessing import ERROR_KINDS, ImageError, preprocess_image
from florisense_model.stack.settings import free_port
from florisense_model.training.evaluation import served_reference
from florisense_model.training.packaging import save_pyfunc_model
from tests.support.bad_inputs import HEIC, SVG
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.metrics import delta, scrape, value
from tests.support.tiny_model import TINY_SIZE


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_no_port_no_metrics(tiny_pyfunc, monkeypatch):
    monkeypatch.delenv(metrics.PORT_ENV, raising=False)
    assert tiny_pyfunc.unwrap_python_model()._metrics is None


def test_every_image_error_has_its_kind():
    jpeg = encode(photo(CLASS_COLOURS["grass"]))
    cases = {
        b"": "empty",
        SVG: "unsupported_format",
        HEIC: "unsupported_format",
        b"hello, not a photo": "not_an_image",
        jpeg[: len(jpeg) // 2]: "corrupt",
        encode(photo(CLASS_COLOURS["grass"], size=(4, 4))): "too_small",
    }
    for data, kind in cases.items():
        with pytest.raises(ImageError) as refused:
            preprocess_image(data, TINY_SIZE, "crop")
        assert refused.value.kind == kind, (kind, str(refused.value))


def test_served_reference_shares():
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.05, 0.95]])
    reference = served_reference(probabilities, list(CLASSES))
    assert reference["label_share"] == {"dandelion": 0.5, "grass": 0.5}
    assert reference["low_confidence_share"] == 0.5  # 0.7 and 0.8 are at or under 0.8
    assert reference["confidence_cumulative_share"]["1.0"] == 1.0


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_keras_file):
    """The pyfunc loaded as the model server loads it: port and version in the environment."""
    reference = {"label_share": {"dandelion": 0.4, "grass": 0.6}, "low_confidence_share": 0.1}
    folder = save_pyfunc_model(
        tmp_path_factory.mktemp("pyfunc") / "model", tiny_keras_file, list(CLASSES), TINY_SIZE,
        "crop", run_id="f" * 32, reference=reference,
    )  # fmt: skip
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(metrics.PORT_ENV, str(port))
        patch.setenv(metrics.VERSION_ENV, "42")
        patch.setenv("FLORISENSE_METRICS_HOST", "127.0.0.1")
        model = mlflow.pyfunc.load_model(str(folder))
    return model, f"http://127.0.0.1:{port}/metrics"


def test_counts_are_exact_by_label_and_by_error_kind(served):
    model, url = served
    before = scrape(url)
    good = [b64(encode(photo(CLASS_COLOURS[c], seed=i))) for i, c in enumerate(CLASSES * 3)]
    batch = [*good, "%%%", "", None, b64(b"not an image at all")]
    answers = model.predict(pd.DataFrame({"image": batch}))
    model.predict(pd.DataFrame({"image": good[:1]}))
    after = scrape(url)

    labels = collections.Counter(answers["label"].dropna())
    labels[answers["label"].iloc[0]] += 1  # the second, one-photo request
    for label in CLASSES:
        assert delta(before, after, "florisense_predictions_total", label=label) == labels[label]
    expected = {"not_base64": 1, "empty": 1, "missing": 1, "not_an_image": 1}
    for kind in ERROR_KINDS:
        moved = delta(before, after, "florisense_prediction_errors_total", kind=kind)
        assert moved == expected.get(kind, 0), kind
    assert delta(before, after, "florisense_request_images_count") == 2
    assert delta(before, after, "florisense_request_images_sum") == len(batch) + 1
    assert delta(before, after, "florisense_prediction_confidence_count") == len(good) + 1
    confidences = [*answers["confidence"].dropna(), answers["confidence"].iloc[0]]
    assert delta(before, after, "florisense_prediction_confidence_sum") == pytest.approx(
        sum(confidences)
    )
    assert delta(before, after, "florisense_inference_seconds_count") == 2


def test_the_version_run_and_reference_are_exported(served):
    _, url = served
    samples = scrape(url)
    info = {"version": "42", "run_id": "f" * 32, "runtime": "onnx"}
    assert value(samples, "florisense_model_info", **info) == 1
    assert value(samples, "florisense_reference_label_share", label="grass") == 0.6
    assert value(samples, "florisense_reference_low_confidence_share") == 0.1
    # Every label and error kind exists from the start (at 0 before any request).
    names = {name for name, _ in samples}
    assert {"florisense_predictions_total", "florisense_prediction_errors_total"} <= names
    assert not any(name.endswith("_created") for name in names)


def test_a_request_refused_as_a_whole_is_counted_as_failed(served):
    model, url = served
    before = scrape(url)
    # MLflow's schema check stops this before the model; called directly, the model refuses it.
    with pytest.raises(ValueError, match="column 'image'"):
        model.unwrap_python_model().predict(None, pd.DataFrame({"picture": ["x"]}))
    after = scrape(url)
    assert delta(before, after, "florisense_failed_requests_total") == 1
    assert delta(before, after, "florisense_inference_seconds_count") == 1
    assert delta(before, after, "florisense_request_images_count") == 0
