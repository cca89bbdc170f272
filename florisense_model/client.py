"""HTTP client for /predict: base64-encode image files and send them in batches, in order."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080/predict"


class PredictError(RuntimeError):
    """The server could not be reached or refused the request; the message says why."""


def request_body(images: list[bytes], explain: bool = False) -> bytes:
    """The JSON that /predict (MLflow's /invocations) expects: one record per image, and the
    param `explain` when heat maps are wanted."""
    records = [{"image": base64.b64encode(data).decode("ascii")} for data in images]
    body: dict[str, Any] = {"dataframe_records": records}
    if explain:
        body["params"] = {"explain": True}
    return json.dumps(body).encode()


def post_images(
    url: str, images: list[bytes], timeout_s: float = 120.0, explain: bool = False
) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=request_body(images, explain),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.load(response)["predictions"]
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        raise PredictError(f"{url} answered {exc.code}: {detail or exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise PredictError(
            f"cannot reach {url} ({exc.reason}); is the stack up? (make up)"
        ) from exc
    except TimeoutError as exc:
        raise PredictError(f"{url} did not answer within {timeout_s:.0f} s") from exc


def predict_files(
    url: str, files: list[Path], batch_size: int = 16, explain: bool = False
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, prediction) for every file, in order, `batch_size` images per request; with
    `explain`, each prediction also has its `heatmap`."""
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        predictions = post_images(url, [path.read_bytes() for path in batch], explain=explain)
        yield from zip(batch, predictions, strict=True)
