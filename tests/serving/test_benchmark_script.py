"""scripts/benchmark.py runs briefly against the real test stack and reports every figure.
No timing is asserted: these machines are shared (README, "Performance")."""

from __future__ import annotations

import json

import pytest

from tests.support.http import run_script, stack_env

pytestmark = pytest.mark.integration
SECTIONS = (
    "tensorflow_floor_one_image",
    "tensorflow_floor_batch_32",
    "floor_one_image",
    "pyfunc_one_image",
    "floor_batch_32",
    "pyfunc_batch_32",
    "invocations_c1",
    "predict_c1",
    "predict_c4",
    "predict_c8",
    "predict_batch32_c1",
)


def test_benchmark_reports_every_figure(serving_stack, tmp_path):
    config, photos = serving_stack
    out = tmp_path / "bench.json"
    env = stack_env(config)
    result = run_script(
        "benchmark",
        "--images",
        str(photos),
        "--url",
        f"{config.web_url}/predict",
        "--requests",
        "2",
        "--repeats",
        "3",
        "--json",
        str(out),
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    for section in SECTIONS:
        assert figures[section]["p50_ms"] > 0, section
        assert figures[section]["ratio_to_floor"] > 0, section
    for section in ("invocations_c1", "predict_c1", "predict_c4", "predict_c8"):
        assert figures[section]["unexpected"] == {}, section
    assert figures["predict_c8"]["requests"] == 16
    assert figures["predict_batch32_c1"]["images_per_request"] == 32
    assert figures["runtime"] == "onnx"
    assert figures["predict_c1"]["ratio_to_tensorflow_floor"] > 0
    assert 0 < figures["cold_start"]["to_ping_s"] <= figures["cold_start"]["cold_start_s"]
    assert figures["cold_start"]["rss_mb"] > 100
    assert "ratio to floor" in result.stdout
