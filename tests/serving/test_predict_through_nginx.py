"""/predict through REAL nginx and a REAL `mlflow models serve`: same answers as the in-process
pyfunc, order kept, bad input answered as short JSON, headers, limits, and the model server down."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from florisense_model.stack import lifecycle, services, supervisor
from tests.support.http import (
    assert_safe_json_error,
    post_json,
    records,
    request,
    run_script,
)
from tests.support.images import CLASS_COLOURS, encode, photo

pytestmark = pytest.mark.integration


def b64(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def urls(serving_stack):
    config, photos = serving_stack
    return config, f"{config.web_url}/predict", photos


def test_explain_returns_heat_maps_through_nginx_equal_to_the_pyfunc(urls):
    config, predict, photos = urls
    files = sorted(photos.glob("*/*.jpg"))[:2]
    body = {"dataframe_split": {"columns": ["image"], "data": [[b64(f)] for f in files]}}
    status, _headers, payload = post_json(predict, body | {"params": {"explain": True}})
    assert status == 200, payload
    served = payload["predictions"]
    mlflow.set_tracking_uri(config.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/florisense/Production")
    frame = pd.DataFrame({"image": [b64(f) for f in files]})
    local = model.predict(frame, params={"explain": True})["heatmap"].tolist()
    for remote, here in zip(served, local, strict=True):
        assert np.allclose(remote["heatmap"], here, atol=1e-4)
        assert all(0.0 <= value <= 1.0 for row in remote["heatmap"] for value in row)
    # Without the param, the answer has no heat map; with a wrong type, a 400 naming it.
    status, _headers, plain = post_json(predict, body)
    assert status == 200 and "heatmap" not in plain["predictions"][0]
    status, _headers, wrong = post_json(predict, body | {"params": {"explain": "yes"}})
    message = assert_safe_json_error(status, wrong, 400)
    assert "explain" in message


def test_predict_script_writes_overlays_beside_its_table(urls, tmp_path):
    _config, predict, photos = urls
    files = sorted(photos.glob("*/*.jpg"))[:3]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    overlays = tmp_path / "overlays"
    result = run_script(
        "predict", *map(str, files), str(broken), "--url", predict, "--explain", str(overlays)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(overlays.glob("*.png"))
    assert [p.name for p in written] == [f"{i:04d}-{f.stem}.png" for i, f in enumerate(files, 1)]
    for path, source in zip(written, files, strict=True):
        assert str(path) in result.stdout  # the table names each overlay
        with Image.open(path) as drawn, Image.open(source) as original:
            assert drawn.size == original.size
    assert "broken.jpg" in result.stdout and "error:" in result.stdout


def test_predictions_equal_the_in_process_pyfunc(urls):
    config, predict, photos = urls
    files = sorted(photos.glob("*/*.jpg"))[::7][:6]
    status, _headers, payload = post_json(predict, records(*[b64(f) for f in files]))
    assert status == 200, payload
    served = payload["predictions"]
    mlflow.set_tracking_uri(config.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/florisense/Production")
    local = model.predict(pd.DataFrame({"image": [b64(f) for f in files]})).to_dict("records")
    assert len(served) == len(local) == len(files)
    for remote, here in zip(served, local, strict=True):
        assert remote["label"] == here["label"] and remote["error"] is None
        for label, probability in here["probabilities"].items():
            assert remote["probabilities"][label] == pytest.approx(probability, abs=1e-5)
        assert remote["run_id"] == here["run_id"]


def test_a_batch_keeps_order_and_answers_bad_rows_individually(urls):
    _, predict, _ = urls
    grass = b64(encode(photo(CLASS_COLOURS["grass"], seed=3)))
    dandelion = b64(encode(photo(CLASS_COLOURS["dandelion"], seed=4)))
    alone = {
        "grass": post_json(predict, records(grass))[2]["predictions"][0]["probabilities"],
        "dandelion": post_json(predict, records(dandelion))[2]["predictions"][0]["probabilities"],
    }
    batch = [grass, dandelion, "not base64!", dandelion, b64(b"plain text"), grass]
    status, _, payload = post_json(predict, records(*batch))
    assert status == 200
    rows = payload["predictions"]
    assert [bool(r["error"]) for r in rows] == [False, False, True, False, True, False]
    for index, kind in ((0, "grass"), (1, "dandelion"), (3, "dandelion"), (5, "grass")):
        assert rows[index]["probabilities"]["grass"] == pytest.approx(
            alone[kind]["grass"], abs=1e-5
        )
    assert rows[2]["error"] == "invalid base64 in image"
    assert rows[4]["error"].startswith("not a recognised image")


def test_a_request_without_content_type_still_works(urls):
    _, predict, photos = urls
    body = json.dumps(records(b64(next(photos.glob("grass/*.jpg"))))).encode()
    status, _, payload = request(predict, "POST", body, headers={})
    assert status == 200 and payload["predictions"][0]["label"] in ("dandelion", "grass")
    status, _, payload = request(
        predict, "POST", body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("body", "headers", "expected", "message"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "valid JSON"),
        (
            json.dumps({"dataframe_records": [{"picture": "x"}]}).encode(),
            {"Content-Type": "application/json"},
            400,
            "missing inputs ['image']",
        ),
        (b"", {"Content-Type": "application/json"}, 400, ""),
        (b"image\nabc", {"Content-Type": "text/html"}, 415, "content types"),
    ],
    ids=["malformed-json", "missing-column", "empty-body", "wrong-content-type"],
)
def test_bad_requests_get_short_json_errors(urls, body, headers, expected, message):
    _, predict, _ = urls
    status, response_headers, payload = request(predict, "POST", body, headers)
    error = assert_safe_json_error(status, payload, expected)
    assert message in error
    assert response_headers["content-type"].startswith("application/json")


def test_method_and_size_limits_answer_json(urls):
    _config, predict, _ = urls
    status, _, payload = request(predict, "GET")
    assert_safe_json_error(status, payload, 405)
    huge = b'{"dataframe_records": [{"image": "' + b"A" * (33 * 1024 * 1024) + b'"}]}'
    status, _, payload = request(predict, "POST", huge, {"Content-Type": "application/json"})
    assert "too large" in assert_safe_json_error(status, payload, 413)
    # A real 12 MB photo (16 MB of base64) fits.
    noisy = photo(CLASS_COLOURS["grass"], size=(2200, 2200), noise=255)
    big = encode(noisy, "PNG")
    assert len(big) > 10_000_000
    status, _, payload = post_json(predict, records(b64(big)), timeout=120)
    assert status == 200 and payload["predictions"][0]["error"] is None


def test_every_response_has_a_request_id_security_headers_and_is_logged(urls):
    config, predict, _ = urls
    status, headers, _ = request(f"{config.web_url}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["server"] == "nginx"  # no version
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]
    _, headers, payload = post_json(predict, records("x"))
    request_id = headers["x-request-id"]
    assert len(request_id) == 32
    log = (config.run_dir / "logs" / "nginx-access.log").read_text()
    line = next(line for line in log.splitlines() if f"rid={request_id}" in line)
    assert "POST /predict" in line and "urt=" in line and "urt=-" not in line
    _, headers, payload = request(predict, "POST", b"{", {"Content-Type": "application/json"})
    assert payload["request_id"] == headers["x-request-id"]


def test_per_client_rate_limit_answers_429_json(urls):
    _, predict, _ = urls

    def one(_):
        return request(predict, "POST", b"{}", {"Content-Type": "application/json"}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(120)))
    limited = [payload for status, _, payload in results if status == 429]
    assert limited, "120 requests at once never hit the limit (20 r/s, burst 40)"
    assert "too many requests" in limited[0]["error"]
    time.sleep(3)  # let the bucket refill for the tests after this one


def test_healthz_reports_the_model_server(urls):
    config, _, _ = urls
    status, _, payload = request(f"{config.web_url}/healthz")
    assert status == 200 and payload["status"] == "ok"


def test_model_server_down_gives_json_503_at_once_and_recovers(urls):
    config, predict, photos = urls
    server = services.model_server(config)
    supervisor.stop(server)
    try:
        started = time.monotonic()
        status, _, payload = post_json(
            predict, records(b64(next(photos.glob("grass/*.jpg")))), timeout=15
        )
        assert time.monotonic() - started < 10
        assert "unavailable" in assert_safe_json_error(status, payload, (502, 503))
        status, _, payload = request(f"{config.web_url}/healthz", timeout=15)
        assert status == 503 and payload["status"] == "unhealthy"
    finally:
        list(lifecycle.up(config, only={"model-server"}))
    status, _, payload = request(f"{config.web_url}/healthz")
    assert status == 200
    status, _, payload = post_json(predict, records(b64(next(photos.glob("grass/*.jpg")))))
    assert status == 200
