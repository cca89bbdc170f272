"""The bad-input corpus (tests/serving/bad_inputs.py) through REAL nginx and a REAL
`mlflow models serve`: each case gets its specific answer as JSON, never a stack trace or a server
path; after each one the model server is healthy and its memory is back near where it started."""

from __future__ import annotations

import socket
import time

import psutil
import pytest
from PIL import Image

from florisense_model.stack import services, slots, supervisor
from florisense_model.stack.settings import SERVING_ENV
from florisense_model.stack.supervisor import group_rss_mb
from tests.support.bad_inputs import GOOD, GRASS, Case, b64, cases, records
from tests.support.http import assert_safe_json_error, request
from tests.support.images import encode
from tests.support.stack import SLOW_BODY_TIMEOUT_S

pytestmark = pytest.mark.integration
CASES = cases()
# Resident memory may move a little with allocator caches; a leak or a decoded bomb is far more.
RSS_MARGIN_MB = 150.0


@pytest.fixture(scope="module")
def served(serving_stack):
    config, _ = serving_stack
    predict = f"{config.web_url}/predict"
    status, _, _ = request(predict, "POST", records(GOOD), {"Content-Type": "application/json"})
    assert status == 200
    slot = str(slots.active_slot(config)["slot"])
    pid = supervisor.running_pid(services.model_server(config, slot))
    assert pid is not None
    return config, predict, pid, group_rss_mb(pid)


def test_the_model_server_runs_in_the_models_own_environment(served):
    """A version with a compiled graph is served from .venv-serve, without TensorFlow, as in the
    model-server image of compose (stack/serve.py, serving_bin_dir)."""
    _, _, pid, _ = served
    server = psutil.Process(pid)
    processes = [server, *server.children(recursive=True)]
    assert len(processes) >= 2  # MLflow's launcher and the uvicorn worker
    for process in processes:
        assert any(str(SERVING_ENV) in part for part in process.cmdline()), process.cmdline()
        assert not any("tensorflow" in m.path for m in process.memory_maps()), process.pid


def test_the_corpus_has_at_least_30_distinct_cases():
    assert len({case.name for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_specific_json_answer_and_the_server_stays_well(served, case: Case):
    config, predict, pid, baseline_mb = served
    status, headers, payload = request(predict, "POST", case.body, case.headers, timeout=120)
    assert headers["content-type"].startswith("application/json")
    if case.status != 200:
        assert case.message in assert_safe_json_error(status, payload, case.status)
    else:
        assert status == 200, payload
        predictions = payload["predictions"]
        for index, expected in case.rows.items():
            row = predictions[index]
            if expected is None:
                assert row["error"] is None and row["label"] in ("dandelion", "grass"), row
            else:
                assert row["label"] is None and expected in row["error"], row
                assert "/" not in row["error"] and "Traceback" not in row["error"]
    health, _, body = request(f"{config.web_url}/healthz", timeout=15)
    assert health == 200, body
    assert group_rss_mb(pid) <= baseline_mb + RSS_MARGIN_MB


def test_exif_orientation_is_applied_before_the_model_sees_the_photo(served):
    _, predict, _, _ = served
    image = Image.fromarray(GRASS)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    tagged = encode(image, "PNG", exif=exif.tobytes())
    upright = encode(image.transpose(Image.Transpose.ROTATE_270), "PNG")
    plain = encode(image, "PNG")
    status, _, payload = request(
        predict, "POST", records(b64(tagged), b64(upright), b64(plain)), {}
    )
    assert status == 200
    tagged_p, upright_p, plain_p = (row["probabilities"] for row in payload["predictions"])
    assert tagged_p["grass"] == pytest.approx(upright_p["grass"], abs=1e-5)
    assert tagged_p["grass"] != pytest.approx(plain_p["grass"], abs=1e-6)


def test_a_client_that_sends_its_body_slowly_is_cut_off_without_reaching_the_model(served):
    config, predict, _, _ = served
    timeout_s = SLOW_BODY_TIMEOUT_S
    with socket.create_connection(("127.0.0.1", config.web_port), timeout=timeout_s + 15) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n" + b'{"dataframe_records": [{"image": "'
        )
        started = time.monotonic()
        # Meanwhile another client is served normally.
        status, _, _ = request(predict, "POST", records(GOOD), {"Content-Type": "application/json"})
        assert status == 200
        leftover = b""
        while chunk := sock.recv(4096):  # nginx closes the connection at the body timeout
            leftover += chunk
        waited = time.monotonic() - started
    assert timeout_s - 1 <= waited <= timeout_s + 10
    assert b"Traceback" not in leftover
    log = (config.run_dir / "logs" / "nginx-access.log").read_text().splitlines()
    assert any('"POST /predict HTTP/1.1" 408' in line for line in log[-20:])
    assert request(f"{config.web_url}/healthz")[0] == 200
