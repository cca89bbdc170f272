"""How a person promotes a version in the MLflow 3.17 registry UI, done for real in headless
Chromium against a real tracking server: the stage transition (the UI's legacy view; what
`models:/florisense/Production` follows) and the alias (the default view). Screenshots are saved
to test-artifacts/ and the README shows them."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from playwright.sync_api import expect, sync_playwright

from florisense_model import registry
from florisense_model.model.labels import CLASSES
from florisense_model.training.packaging import log_pyfunc_model
from tests.support.browser import CHROMIUM_ARGS
from tests.support.project import ARTIFACTS
from tests.support.servers import mlflow_tracking_server
from tests.support.tiny_model import TINY_SIZE, tiny_classifier

pytestmark = pytest.mark.integration
# The UI remembers its view in localStorage: legacy view (stage dropdown), assistant panel shut.
LEGACY_VIEW = (
    """localStorage.setItem('_mlflow_user_setting_dismiss_next_model_registry_ui', 'true');"""
)
QUIET_UI = """localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """A tracking server with versions 1 (Production, alias production) and 2 (registered)."""
    import mlflow

    with mlflow_tracking_server(tmp_path_factory.mktemp("ui-mlflow")) as uri:
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        keras_file = tmp_path_factory.mktemp("ui-keras") / "model.keras"
        tiny_classifier().save(keras_file)
        for _ in range(2):
            with mlflow.start_run():
                log_pyfunc_model(keras_file, list(CLASSES), TINY_SIZE, "letterbox", "florisense")
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        registry.promote(client, "1")
        yield uri, client
        mlflow.set_tracking_uri(previous)


def open_version(playwright, uri: str, version: str, *scripts: str):
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1100, "height": 650})
    for script in (QUIET_UI, *scripts):
        context.add_init_script(script)
    page = context.new_page()
    page.goto(f"{uri}/#/models/florisense/versions/{version}")
    expect(page.get_by_text(f"Version {version}", exact=True)).to_be_visible(timeout=30_000)
    return browser, page


def test_stage_transition_in_the_ui_moves_production(two_versions):
    uri, client = two_versions
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = open_version(playwright, uri, "2", LEGACY_VIEW)
        page.get_by_text("None", exact=True).first.click()  # the Stage dropdown
        page.get_by_role("menuitem").filter(has_text="Production").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Stage transition")
        checkbox = dialog.get_by_role("checkbox")
        expect(checkbox).not_to_be_checked()  # archiving the old Production is opt-in
        checkbox.check()
        page.screenshot(path=str(ARTIFACTS / "registry-stage-transition.png"))
        dialog.get_by_role("button", name="OK").click()
        expect(dialog).to_be_hidden()
        browser.close()
    assert client.get_model_version("florisense", "2").current_stage == "Production"
    assert client.get_model_version("florisense", "1").current_stage == "Archived"
    # The stage moved; the alias did not: the UI keeps the two apart.
    assert client.get_model_version_by_alias("florisense", "production").version == "1"


def test_alias_in_the_ui_moves_production_alias(two_versions):
    uri, client = two_versions
    with sync_playwright() as playwright:
        browser, page = open_version(playwright, uri, "2")
        page.get_by_role("button", name="Add").first.click()  # next to "Aliases"
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Add/Edit alias for model version 2")
        dialog.get_by_role("combobox").fill("production")
        page.keyboard.press("Enter")
        page.screenshot(path=str(ARTIFACTS / "registry-alias.png"))
        dialog.get_by_role("button", name="Save aliases").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_text("@ production")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "registry-version-page.png"))
        browser.close()
    assert client.get_model_version_by_alias("florisense", "production").version == "2"
