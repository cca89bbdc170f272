"""The load test's traffic: valid photos mixed with five kinds of junk, each kind with the answer
it must get (valid photos: 200 with one verdict per photo; junk: its 4xx, or a 200 with per-row
errors). `http_load.run_load` sends it and counts anything else as unexpected, by kind."""

from __future__ import annotations

import base64
import json

from florisense_model.client import request_body
from florisense_model.perf.http_load import JSON, RequestKind, photos_request


def request_mix(photos: list[bytes], invalid_every: int = 4) -> list[RequestKind]:
    """One-photo requests, with one junk request in every `invalid_every` (5 kinds of junk)."""
    if invalid_every < 2:
        raise ValueError("invalid_every must be at least 2 (one junk request in every N)")
    text = base64.b64encode(b"not a photo at all").decode()
    junk = [
        RequestKind("malformed-json", b'{"dataframe_records": [', JSON, 400),
        RequestKind("empty-batch", b'{"dataframe_records": []}', JSON, 400),
        RequestKind(
            "wrong-content-type", request_body(photos[:1]), {"Content-Type": "text/html"}, 415
        ),
        RequestKind(
            "invalid-base64-row",
            json.dumps({"dataframe_records": [{"image": "%%%"}]}).encode(),
            JSON,
            200,
            rows=1,
            row_errors=1,
        ),
        RequestKind(
            "text-as-image-row",
            json.dumps({"dataframe_records": [{"image": text}]}).encode(),
            JSON,
            200,
            rows=1,
            row_errors=1,
        ),
    ]
    valid = [photos_request([p]) for p in photos]
    valid_per_junk = invalid_every - 1
    mix: list[RequestKind] = []
    for index in range(max(len(valid), len(junk) * valid_per_junk)):
        mix.append(valid[index % len(valid)])
        if (index + 1) % valid_per_junk == 0:
            mix.append(junk[(index // valid_per_junk) % len(junk)])
    return mix
