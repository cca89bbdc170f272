"""The web page in headless Chromium (the Debian package, driven by Playwright) against the real
stack: upload photos, get verdicts, see errors. Saves a screenshot to test-artifacts/."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import CHROMIUM_ARGS
from tests.support.http import post_json, records
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.project import ARTIFACTS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def page(serving_stack):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "install Debian's chromium (see .ci/run)"
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, empty profile of its own.
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 420, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        page.goto(serving_stack[0].web_url + "/")
        yield page, serving_stack[0], errors
        browser.close()


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("upload")
    files = {}
    for label, colour in CLASS_COLOURS.items():
        files[label] = folder / f"my-{label}.jpg"
        files[label].write_bytes(encode(photo(colour, size=(300, 400), seed=77)))
    files["text"] = folder / "notes.txt"
    files["text"].write_text("not a photo")
    files["fake"] = folder / "fake.jpg"
    files["fake"].write_text("a text file pretending to be a JPEG")
    return files


def api_label(config, path: Path) -> str:
    image = base64.b64encode(path.read_bytes()).decode()
    return post_json(f"{config.web_url}/predict", records(image))[2]["predictions"][0]["label"]


def test_two_photos_get_two_verdicts_that_match_the_api(page, photo_files):
    page, config, errors = page
    expect(page.locator("#predict")).to_be_disabled()
    page.set_input_files("#file-input", [str(photo_files["dandelion"]), str(photo_files["grass"])])
    expect(page.locator(".preview img")).to_have_count(2)
    page.get_by_role("button", name="Obtenir le verdict").click()
    cards = page.locator(".card")
    expect(cards).to_have_count(2, timeout=30_000)
    display = {"dandelion": "Pissenlit", "grass": "Herbe"}
    for index, kind in enumerate(("dandelion", "grass")):
        card = cards.nth(index)
        expect(card.locator(".name")).to_have_text(f"my-{kind}.jpg")
        expect(card.locator(".verdict")).to_have_text(display[api_label(config, photo_files[kind])])
        expect(card.locator(".confidence")).to_contain_text("Confiance")
        expect(card.locator("meter")).to_have_count(1)
        assert "Pissenlit" in card.locator(".probabilities").inner_text()
    expect(page.locator("#status")).to_have_text("2 verdict(s) prêt(s).")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-verdicts.png"), full_page=True)
    assert errors == []


def test_invalid_files_show_clear_messages(page, photo_files):
    page, _, _ = page
    page.get_by_role("button", name="Tout effacer").click()
    page.set_input_files("#file-input", [str(photo_files["text"]), str(photo_files["fake"])])
    expect(page.locator(".preview.invalid .problem")).to_have_text(
        "ce fichier n'est pas une image prise en charge (JPEG, PNG, WebP, GIF ou BMP)"
    )
    page.get_by_role("button", name="Obtenir le verdict").click()  # the .jpg reaches the model
    expect(page.locator(".card.invalid .problem")).to_contain_text(
        "Image refusée : not a recognised image", timeout=30_000
    )
    page.screenshot(path=str(ARTIFACTS / "page-errors.png"), full_page=True)


def test_english_switch_and_keyboard_access(page):
    page, _, _ = page
    page.get_by_role("button", name="English").click()
    expect(page.locator("#predict")).to_have_text("Get the verdict")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Français").click()
    expect(page.locator("#predict")).to_have_text("Obtenir le verdict")
    # Tab reaches the language switch, the photo picker and the camera button.
    page.locator("body").click()
    reached = set()
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"lang-switch", "pick-label", "camera-label"} <= reached
