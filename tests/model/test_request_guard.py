"""request_guard: specific 400s for bodies MLflow's scoring server answers badly, and no change
for the bodies it accepts. The real server path is covered by tests/serving/test_bad_input.py."""

from __future__ import annotations

import json

import pytest
from mlflow.pyfunc import scoring_server
from mlflow.utils.proto_json_utils import MlflowInvalidInputException

from florisense_model.model import request_guard


@pytest.fixture
def decode(monkeypatch):
    monkeypatch.setattr(scoring_server, "_decode_json_input", scoring_server._decode_json_input)
    request_guard.install()
    request_guard.install()  # idempotent: one wrapper, not two
    assert getattr(scoring_server._decode_json_input, "florisense_guard", False)
    return scoring_server._decode_json_input


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Empty request body"),
        (b"  \n", "Empty request body"),
        (b'{"dataframe_records": "\xff"}', "not UTF-8 (invalid byte at position 23)"),
        (b'{"dataframe_records": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested too deeply"),
        (b'{"dataframe_records": []}', "No images"),
        (b'{"dataframe_split": {"columns": ["image"], "data": []}}', "No images"),
        (b'{"instances": []}', "No images"),
        (
            json.dumps({"dataframe_records": [{"image": "x"}] * 257}).encode(),
            "Too many images in one request: 257 (max 256)",
        ),
        (b'{"dataframe_records": [{"image": "x"}], "parmas": {}}', "Unknown key 'parmas'"),
        (
            b'{"dataframe_records": [{"image": "x"}], "params": {"explian": true}}',
            "Unknown parameter 'explian' (known: explain)",
        ),
        (b'{"dataframe_split": {"columns": ["image"], "data": {}}}', "list of rows"),
        (b'{"dataframe_split": {"columns": ["image"], "data": [{}]}}', "list of rows"),
        (b'{"dataframe_split": {"columns": ["image"], "data": [5]}}', "list of rows"),
        (b'{"dataframe_split": {"columns": ["image"], "data": ["x", ["y"]]}}', "list of rows"),
        (
            b'{"dataframe_split": {"columns": ["image"], "data": [["x"]], "index": [0, 1, 2]}}',
            "one label per row",
        ),
    ],
    ids=[
        "empty",
        "blank",
        "not-utf8",
        "nested",
        "no-records",
        "no-split",
        "no-instances",
        "257",
        "unknown-key",
        "unknown-param",
        "split-data-object",
        "split-row-object",
        "split-row-number",
        "split-row-string",
        "split-index-longer",
    ],
)
def test_refused_bodies_get_a_specific_message(decode, body, message):
    with pytest.raises(MlflowInvalidInputException) as caught:
        decode(body)
    assert message in caught.value.message
    assert "\\x" not in caught.value.message  # never the raw bytes back


def test_accepted_bodies_decode_exactly_as_mlflow_does(decode):
    for document in (
        {"dataframe_records": [{"image": "abc"}] * 256},
        {"dataframe_split": {"columns": ["image"], "data": [["abc"]]}},
        {"inputs": {"image": ["abc"]}},
        {"dataframe_records": [{"image": "abc"}], "params": {"explain": True}},
        {"dataframe_records": [{"image": "abc"}], "params": None},
        {"dataframe_split": {"columns": ["image"], "data": [["abc"]], "index": [0]}},
    ):
        assert decode(json.dumps(document).encode()) == document


def test_mlflow_keeps_its_own_messages_for_other_errors(decode):
    with pytest.raises(MlflowInvalidInputException, match="valid JSON"):
        decode(b'{"dataframe_records": [')
