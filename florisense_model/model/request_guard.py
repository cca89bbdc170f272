"""Request-level checks for `mlflow models serve`, before MLflow parses a body.

MLflow's scoring server (pinned 3.17.2) turns most bad bodies into a 400, but not all:
- a deeply nested body makes `json.loads` raise RecursionError, which escapes as a bare 500 and
  leaves the keep-alive connection broken, so nginx's NEXT request on it fails too (measured);
- an empty body, a non-UTF-8 body and an empty batch get messages that echo raw bytes or talk
  about a missing column;
- nothing bounds the number of images in one request;
- a misspelt key or param ("parmas", {"explian": true}) is ignored with a log line, so the
  answer silently lacks what was asked for; in dataframe_split, `"data": {}` is an empty answer,
  rows that are not lists are read as NaN or fail in pandas, and a longer `index` repeats rows.

`install()` wraps the scoring server's JSON decoding step (`_decode_json_input`, looked up at call
time) so these get a specific 400. It only adds checks: the bodies it refuses are those above;
every other body is decoded by MLflow's own function, unchanged. It runs when the model loads, so
it travels with the model to any `mlflow models serve`.
"""

from __future__ import annotations

from typing import Any

from florisense_model.model.labels import EXPLAIN_PARAM

# Per HTTP request, not per predict() call: in-process callers (evaluation) may pass any number.
MAX_IMAGES_PER_REQUEST = 256
_FORMAT_HINT = 'expected JSON such as {"dataframe_records": [{"image": "<base64>"}]}'


class RequestRefused(ValueError):
    """A body refused before parsing; the message is safe and specific."""


def check_body(body: Any) -> None:
    """Refuse an empty or non-UTF-8 body (MLflow's own message would echo the raw bytes)."""
    if isinstance(body, dict):
        return
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    if not raw or raw.isspace():
        raise RequestRefused(f"Empty request body: {_FORMAT_HINT}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRefused(
            f"The request body is not UTF-8 (invalid byte at position {exc.start})"
        ) from exc


def count_images(document: dict[str, Any]) -> int | None:
    """Rows in a decoded body, for each input format MLflow accepts; None if unrecognised."""
    if isinstance(document.get("dataframe_records"), list):
        return len(document["dataframe_records"])
    split = document.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("data"), list):
        return len(split["data"])
    for key in ("instances", "inputs"):
        value = document.get(key)
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict) and isinstance(value.get("image"), list):
            return len(value["image"])
    return None


# MLflow ignores other top-level keys and unknown params (a log line only): a typo such as
# "parmas" or {"explian": true} would silently answer without a heatmap.
_TOP_LEVEL_KEYS = frozenset(
    {"dataframe_records", "dataframe_split", "instances", "inputs", "params"}
)
KNOWN_PARAMS = frozenset({EXPLAIN_PARAM})


def check_keys(document: dict[str, Any]) -> None:
    """Refuse keys and params MLflow would ignore, and dataframe_split data that is not rows."""
    unknown = sorted(str(key) for key in document if key not in _TOP_LEVEL_KEYS)
    if unknown:
        raise RequestRefused(f"Unknown key {unknown[0]!r} in the request; {_FORMAT_HINT}")
    params = document.get("params")
    if isinstance(params, dict):
        unknown = sorted(str(key) for key in params if key not in KNOWN_PARAMS)
        if unknown:
            known = ", ".join(sorted(KNOWN_PARAMS))
            raise RequestRefused(f"Unknown parameter {unknown[0]!r} (known: {known})")
    split = document.get("dataframe_split")
    if isinstance(split, dict) and "data" in split:
        data = split["data"]
        # pandas reads {} as no rows and a row that is an object as a row of NaN; bare strings
        # as rows parse alone but not beside list rows ("passed data had 20 columns").
        if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
            raise RequestRefused(
                'dataframe_split.data must be a list of rows, each a list such as ["<base64>"]'
            )
        # pandas repeats a row to fill a longer index: one photo in the body, hundreds scored.
        index = split.get("index")
        if index is not None and (not isinstance(index, list) or len(index) != len(data)):
            raise RequestRefused("dataframe_split.index must have one label per row of data")


def check_document(document: Any) -> None:
    if not isinstance(document, dict):
        return  # MLflow's own message for a list or a scalar is clear
    check_keys(document)
    images = count_images(document)
    if images == 0:
        raise RequestRefused(f"No images: the batch is empty; {_FORMAT_HINT}")
    if images is not None and images > MAX_IMAGES_PER_REQUEST:
        raise RequestRefused(
            f"Too many images in one request: {images} (max {MAX_IMAGES_PER_REQUEST}); "
            "send them in smaller batches"
        )


def install() -> None:
    """Wrap MLflow's scoring-server JSON decoding with the checks above (idempotent)."""
    from mlflow.pyfunc import scoring_server
    from mlflow.utils.proto_json_utils import MlflowInvalidInputException

    original = scoring_server._decode_json_input
    if getattr(original, "florisense_guard", False):
        return

    def decode_json_input(json_input: Any) -> dict:
        try:
            check_body(json_input)
            document = original(json_input)
        except RequestRefused as exc:
            raise MlflowInvalidInputException(str(exc)) from None
        except RecursionError:
            raise MlflowInvalidInputException(
                "The JSON is nested too deeply; " + _FORMAT_HINT
            ) from None
        try:
            check_document(document)
        except RequestRefused as exc:
            raise MlflowInvalidInputException(str(exc)) from None
        return document

    decode_json_input.florisense_guard = True  # type: ignore[attr-defined]
    scoring_server._decode_json_input = decode_json_input
