"""scripts/loadtest.py, briefly, against the real test stack at its default rate limit (20 r/s per
client): every answer is the right one for its request kind, no 5xx, nothing lost, and the
client that exceeds the limit gets 429 JSON. No timing is asserted."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.http import run_script
from tests.support.servers import child_env

pytestmark = pytest.mark.integration


def test_mixed_load_gets_right_answers_and_429_beyond_the_rate_limit(serving_stack, tmp_path):
    config, photos = serving_stack
    out = tmp_path / "load.json"
    result = run_script(
        "loadtest",
        "--images",
        str(photos),
        "--url",
        f"{config.web_url}/predict",
        "--concurrency",
        "4",
        "--duration",
        "4",
        "--json",
        str(out),
        env=child_env(),
        timeout=120,
    )
    time.sleep(3)  # let the rate-limit bucket refill for the tests after this one
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["unexpected"] == {} and report["server_errors"] == 0 and report["lost"] == 0
    assert report["rate_limited"] > 0, "4 clients without pause never exceeded 20 r/s"
    answered_kinds = {key.rsplit(" ", 1)[0] for key in report["by_kind_and_status"]}
    assert {"valid-photo", "malformed-json", "empty-batch", "wrong-content-type"} <= answered_kinds
    assert report["by_kind_and_status"].get("valid-photo 200", 0) > 0
    assert "5xx: 0, lost: 0" in result.stdout
