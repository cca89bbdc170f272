"""scripts/profile_serving.py runs briefly against the real test stack: every stage of a request
is timed and a real `mlflow models serve` is loaded under one setting. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from florisense_model.perf.profiling import SERVER_SETTINGS
from tests.support.http import run_script
from tests.support.servers import child_env

pytestmark = pytest.mark.integration
STAGES = {
    "json_parse",
    "dataframe_from_json",
    "schema_enforcement",
    "base64_decode",
    "image_header",
    "image_decode",
    "resize",
    "stack_uint8",
    "forward",
    "output_frame",
    "serialise_json",
}


def test_profile_times_every_stage_and_a_server_setting(serving_stack, tmp_path):
    config, photos = serving_stack
    out = tmp_path / "profile.json"
    setting = next(iter(SERVER_SETTINGS))
    result = run_script(
        "profile_serving",
        "--images",
        str(photos),
        "--repeats",
        "3",
        "--requests",
        "2",
        "--settings",
        setting,
        "--json",
        str(out),
        env=child_env(MLFLOW_TRACKING_URI=config.tracking_uri),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    for request in ("one_image", "batch_32"):
        stages = figures[request]["stages_p50_ms"]
        assert set(stages) == STAGES
        assert all(ms >= 0 for ms in stages.values())
        assert stages["forward"] > 0 and figures[request]["invocations_in_process_ms"] > 0
    assert figures["batch_32"]["images"] == 32
    served = figures["server_settings"][setting]
    for load in ("c1", "c4", "c8", "batch32_c1"):
        assert served[load]["unexpected"] == {}, load
    assert served["c8"]["requests"] == 16
    assert served["rss_mb"] > 100
    assert "forward" in result.stdout and setting in result.stdout
