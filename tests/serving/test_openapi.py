"""The API as documented: nginx/html/openapi.json (served at /openapi.json, shown by Swagger UI at
/docs) against the real stack (S3, MLflow, the model server, nginx). schemathesis sends the spec's
examples, then requests it generates from the spec (valid ones, and invalid ones that must be
refused), and every other method, and checks each answer against the spec: status, content type,
body, headers."""

from __future__ import annotations

import base64
import json

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.support.http import post_json, records, request
from tests.support.images import encode, photo
from tests.support.project import ROOT

pytestmark = pytest.mark.integration

SPEC = ROOT / "nginx" / "html" / "openapi.json"
DOCUMENT = json.loads(SPEC.read_text(encoding="utf-8"))

schema = schemathesis.openapi.from_path(SPEC)
# A few generated requests an operation (the coverage phase adds its own boundary and
# wrong-method cases), the same ones each run, and no example database (hypothesis keeps only
# a cache in .hypothesis/, which ignores itself in git).
schema.config.generation.update(max_examples=20, deterministic=True, database="none")
# Under nginx's 20 requests/s per client: a 429 is documented, but would cut the run short.
schema.config.update(rate_limit="15/s")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]


@schema.parametrize()
def test_the_api_answers_as_documented(case, serving_stack):
    case.call_and_validate(base_url=serving_stack[0].web_url, checks=CHECKS)


def component(name: str) -> jsonschema_rs.Validator:
    """A validator for one of the spec's schemas, its $refs resolved within the spec."""
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def test_the_spec_is_valid_openapi_3_1_and_its_examples_match_it():
    assert DOCUMENT["openapi"].startswith("3.1.")
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    for name, definition in DOCUMENT["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(definition), name
    predict = DOCUMENT["paths"]["/predict"]["post"]
    request_examples = predict["requestBody"]["content"]["application/json"]["examples"]
    assert {"records", "split", "explain"} <= set(request_examples)
    for example in request_examples.values():
        component("PredictRequest").validate(example["value"])
    for status, response in predict["responses"].items():
        content = response["content"]["application/json"]
        examples = [e["value"] for e in content.get("examples", {}).values()]
        examples += [content["example"]] if "example" in content else []
        assert examples, status
        name = "PredictResponse" if status == "200" else "Error"
        for example in examples:
            component(name).validate(example)
    # No more rows than the request guard takes (florisense_model/model/request_guard.py).
    from florisense_model.model.request_guard import MAX_IMAGES_PER_REQUEST

    rows = DOCUMENT["components"]["schemas"]["RecordsRequest"]["properties"]["dataframe_records"]
    assert rows["maxItems"] == MAX_IMAGES_PER_REQUEST


def test_the_spec_and_the_docs_page_are_served(serving_stack):
    url = serving_stack[0].web_url
    status, headers, body = request(f"{url}/openapi.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert body == DOCUMENT
    assert "script-src 'self';" in headers["content-security-policy"]
    for path in ("/docs", "/docs/"):
        status, headers, body = request(url + path)
        assert status == 200 and headers["content-type"].startswith("text/html"), path
        assert "/docs/swagger-ui/swagger-ui-bundle.js" in body
    status, headers, _ = request(f"{url}/docs/swagger-ui/swagger-ui-bundle.js")
    assert status == 200, "Swagger UI is not installed: `make docs-ui`"
    assert headers["content-type"].startswith("application/javascript")
    # A file the package does not have: JSON naming the command, not nginx's HTML.
    status, _, body = request(f"{url}/docs/swagger-ui/absent.js")
    assert status == 404 and "make docs-ui" in body["error"]
    status, headers, _ = request(f"{url}/openapi.json", "DELETE")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def b64(image: bytes) -> str:
    return base64.b64encode(image).decode()


def test_explain_adds_a_heatmap_over_the_photo_as_sent(serving_stack):
    """The contract schemathesis cannot see: `heatmap` only when asked, null on an error row,
    and shaped like the photo as sent (a wide photo gives a wide map: the letterbox bands of the
    model's square input are cut off)."""
    url = serving_stack[0].web_url + "/predict"
    wide = b64(encode(photo((230, 200, 40), size=(200, 400), seed=3)))
    status, _, plain = post_json(url, records(wide))
    assert status == 200 and "heatmap" not in plain["predictions"][0]
    body = records(wide, "not base64!") | {"params": {"explain": True}}
    status, _, answer = post_json(url, body)
    assert status == 200, answer
    component("PredictResponse").validate(answer)
    good, bad = answer["predictions"]
    assert bad["error"] and bad["heatmap"] is None
    heatmap = good["heatmap"]
    assert len({len(row) for row in heatmap}) == 1  # a rectangle
    assert len(heatmap[0]) > len(heatmap), "a 2:1 photo gives a map wider than tall"
    assert all(0 <= value <= 1 for row in heatmap for value in row)
    for params in ({"explain": False}, {}, None, {"explain": None}):
        status, _, answer = post_json(url, records(wide) | {"params": params})
        assert status == 200 and "heatmap" not in answer["predictions"][0], params


@pytest.mark.parametrize(
    "body",
    [
        {"params": {"explian": True}},  # a typo must not silently drop the heatmap
        {"params": {"explain": "yes"}},
        {"params": [True]},
        {"parmas": {"explain": True}},
    ],
    ids=["unknown-param", "explain-not-boolean", "params-not-object", "unknown-key"],
)
def test_a_wrong_params_is_refused_with_a_reason(serving_stack, body):
    status, _, answer = post_json(serving_stack[0].web_url + "/predict", records("x") | body)
    assert status == 400, answer
    component("Error").validate(answer)
