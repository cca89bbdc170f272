"""/docs in headless Chromium against the real stack: Swagger UI renders the spec under the site's
Content-Security-Policy, and "Try it out" sends the documented example to /predict for real.
Saves a screenshot to test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import CHROMIUM_ARGS
from tests.support.project import ARTIFACTS

pytestmark = pytest.mark.integration

# Every CSP violation, also those the console does not report (reported before the page's scripts).
RECORD_CSP = """window.__csp = [];
document.addEventListener('securitypolicyviolation', (event) => window.__csp.push(
    `${event.violatedDirective} ${event.blockedURI}`));"""


def test_docs_try_it_out_runs_the_example_against_predict(serving_stack):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "install Debian's chromium (see .ci/run)"
    ARTIFACTS.mkdir(exist_ok=True)
    url = serving_stack[0].web_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 1400})
        context.add_init_script(RECORD_CSP)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))

        page.goto(f"{url}/docs")
        predict = page.locator("#operations-prediction-predict")
        expect(predict).to_be_visible(timeout=30_000)
        expect(page.locator(".opblock-get .opblock-summary-path")).to_contain_text("/healthz")
        predict.locator(".opblock-summary").click()
        predict.get_by_role("button", name="Try it out").click()
        body = predict.locator(".body-param textarea")
        expect(body).to_contain_text('"dataframe_records"')  # the spec's first example
        with page.expect_response(lambda r: r.url == f"{url}/predict") as answered:
            predict.get_by_role("button", name="Execute").click()
        response = answered.value
        assert response.status == 200, response.text()
        assert response.json()["predictions"][0]["label"] in ("dandelion", "grass")
        live = predict.locator(".live-responses-table tr.response .response-col_status")
        expect(live).to_have_text("200")
        # The request body, the buttons and the answer in one screenshot.
        body.evaluate("element => element.scrollIntoView()")
        page.screenshot(path=str(ARTIFACTS / "docs-try-it-out.png"))
        violations = page.evaluate("window.__csp")
        browser.close()
    assert violations == [], violations
    assert errors == [], errors
    assert outside == [], "the docs page must not reach outside the site"
