"""The web page in headless Chromium (the Debian package, driven by Playwright) against the real
stack: upload photos, get verdicts, see errors, show heat maps with the keyboard. Saves
screenshots to test-artifacts/."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, Request, expect, sync_playwright

from florisense_model.client import post_images
from tests.support.browser import CHROMIUM_ARGS
from tests.support.http import post_json, records, run_script
from tests.support.images import CLASS_COLOURS, encode, photo
from tests.support.project import ARTIFACTS

pytestmark = pytest.mark.integration
ORIENTATION_TAG = 0x0112
TOGGLE = "Où le modèle voit-il le pissenlit ?"
# What a network that cannot draw heat maps answers to `explain` (florisense_model/model/pyfunc.py).
REFUSAL = (
    "this model version cannot draw heat maps (its network does not end in global pooling and a "
    "dense layer): predict without 'explain'"
)


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
    # Stored landscape (400 x 300), shown portrait: EXIF orientation 6 says "rotate 90° clockwise".
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    turned = photo(CLASS_COLOURS["dandelion"], size=(300, 400), seed=78)
    files["turned"] = folder / "my-turned-dandelion.jpg"
    files["turned"].write_bytes(encode(turned, exif=exif.tobytes()))
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


# The overlay's pixels, read back: how many are painted, how many distinct colours, and the
# colour at the centre of each given grid cell (row, column).
READ_OVERLAY = """(canvas, cells) => {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const data = context.getImageData(0, 0, width, height).data;
  const colours = new Set();
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) painted++;
    colours.add(data.slice(i, i + 4).join(","));
  }
  const at = ([row, column, rows, columns]) => Array.from(context.getImageData(
    Math.floor(((column + 0.5) / columns) * width), Math.floor(((row + 0.5) / rows) * height), 1, 1
  ).data);
  return { width, height, painted, distinct: colours.size, colours: cells.map(at) };
}"""
# The legend bar's colour at a value in [0, 1]: the page's own scale, one canvas column per step.
READ_LEGEND = """(bar, value) => Array.from(
  bar.getContext("2d").getImageData(Math.round(value * (bar.width - 1)), 0, 1, 1).data
)"""


def tab_to(page: Page, target: Locator, presses: int = 40) -> None:
    """Press Tab until `target` has the focus, as a keyboard user reaches it."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError("Tab never reached the heat map toggle")


def close(colour: list[int], expected: list[int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def assert_same_box(overlay: Locator, img: Locator) -> None:
    shown, photo_box = overlay.bounding_box(), img.bounding_box()
    assert shown and photo_box
    for key in ("x", "y", "width", "height"):
        assert abs(shown[key] - photo_box[key]) <= 1, (key, shown, photo_box)


def assert_draws_grid(card: Locator, grid: list[list[float]]) -> bool:
    """The overlay is painted from `grid`: at the centres of its hottest and coldest cells it has
    the legend's colours for their values. Returns whether the grid (so the drawing) varies."""
    values = {(r, c): value for r, row in enumerate(grid) for c, value in enumerate(row)}
    hot, cold = max(values, key=values.get), min(values, key=values.get)
    shape = (len(grid), len(grid[0]))
    drawn = card.locator("canvas.heatmap").evaluate(READ_OVERLAY, [[*hot, *shape], [*cold, *shape]])
    box = card.locator("canvas.heatmap").bounding_box()
    assert box and drawn["width"] >= round(box["width"]) and drawn["height"] >= round(box["height"])
    assert drawn["painted"] == drawn["width"] * drawn["height"], "transparent pixels"
    bar = card.locator(".legend-bar")
    for cell, colour in zip((hot, cold), drawn["colours"], strict=True):
        assert close(colour, bar.evaluate(READ_LEGEND, values[cell])), (cell, values[cell], colour)
    varies = values[hot] > values[cold]
    if varies:
        assert drawn["distinct"] > 20, drawn["distinct"]  # a smooth scale, not a few flat cells
        assert not close(drawn["colours"][0], drawn["colours"][1]), drawn["colours"]
    return varies


# Records the toggle's aria-busy and the card's status text at every change in the card.
WATCH_CARD = """card => {
  const toggle = card.querySelector(".toggle");
  const status = card.querySelector(".heatmap-status");
  card.seen = [];
  const note = () => card.seen.push([toggle.getAttribute("aria-busy"), status.textContent]);
  card.watcher = new MutationObserver(note);
  const all = { attributes: true, childList: true, subtree: true, characterData: true };
  card.watcher.observe(card, all);
}"""


def is_predict(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/predict")


def explains(request: Request) -> bool:
    """Whether a /predict request asks for heat maps (params.explain)."""
    body = request.post_data_json or {}
    return bool((body.get("params") or {}).get("explain"))


def test_heat_maps_with_the_keyboard(page, photo_files):
    """Verdicts come without heat maps; a card asks for its own map, once, on its first press."""
    page, config, errors = page
    page.get_by_role("button", name="Tout effacer").click()
    names = ("dandelion", "grass", "turned", "fake")
    page.set_input_files("#file-input", [str(photo_files[name]) for name in names])
    with page.expect_response("**/predict") as answer:
        page.get_by_role("button", name="Obtenir le verdict").click()
    assert "params" not in answer.value.request.post_data_json  # no heat maps asked for
    shown = answer.value.json()["predictions"]
    assert all("heatmap" not in row for row in shown)
    # The same photos in one request straight to the API, with heat maps: the grids to expect.
    api = post_images(
        f"{config.web_url}/predict",
        [photo_files[name].read_bytes() for name in names],
        explain=True,
    )
    for got, expected in zip(shown, api, strict=True):
        assert got.get("label") == expected["label"]
    cards = page.locator(".card")
    expect(cards).to_have_count(4, timeout=30_000)
    # The corrupt photo's card says why, and has no heat map to offer.
    expect(cards.nth(3)).to_have_class(re.compile(r"\binvalid\b"))
    assert api[3]["heatmap"] is None
    expect(cards.nth(3).locator(".toggle, canvas.heatmap")).to_have_count(0)
    expect(page.get_by_role("button", name=TOGGLE)).to_have_count(3)

    sent: list[Request] = []
    count = lambda request: sent.append(request) if is_predict(request) else None  # noqa: E731
    page.on("request", count)
    try:
        varying = []
        for index in range(3):
            card = cards.nth(index)
            toggle = card.get_by_role("button", name=TOGGLE)
            overlay, legend = card.locator("canvas.heatmap"), card.locator(".legend")
            expect(toggle).to_be_enabled()
            expect(toggle).to_have_attribute("aria-pressed", "false")
            expect(overlay).to_have_count(0)
            expect(legend).to_be_hidden()
            tab_to(page, toggle)
            assert toggle.evaluate(
                "el => el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none'"
            ), "no visible focus"
            before = len(sent)
            card.evaluate(WATCH_CARD)
            with page.expect_response(lambda response: is_predict(response.request)) as answer:
                page.keyboard.press("Space" if index % 2 == 0 else "Enter")
            expect(toggle).to_have_attribute("aria-pressed", "true")
            # Busy while the map was drawn, and said so in the card.
            seen = card.evaluate("card => { card.watcher.disconnect(); return card.seen; }")
            assert ["true", "Calcul de la carte…"] in seen, seen
            expect(toggle).not_to_have_attribute("aria-busy", "true")
            expect(card.locator(".heatmap-status")).to_have_text("")
            # Exactly one request: this card's photo alone, as the page holds it, with explain.
            assert len(sent) == before + 1, [request.post_data_json for request in sent]
            body = answer.value.request.post_data_json
            assert body["params"] == {"explain": True}
            own = base64.b64encode(photo_files[names[index]].read_bytes()).decode()
            assert body["dataframe_records"] == [{"image": own}]
            grid = answer.value.json()["predictions"][0]["heatmap"]
            assert np.allclose(grid, api[index]["heatmap"], atol=1e-3)
            expect(overlay).to_be_visible()
            expect(legend).to_be_visible()
            expect(legend).to_contain_text("Indices de pissenlit")
            expect(legend).to_contain_text("faible")
            expect(legend).to_contain_text("forte")
            # Described for screen readers: the overlay is an image with a text alternative, the
            # toggle names what it controls and is described by the legend.
            expect(overlay).to_have_attribute("role", "img")
            expect(overlay).to_have_attribute(
                "aria-label", re.compile("Carte de chaleur.*pissenlit")
            )
            expect(toggle).to_have_attribute("aria-controls", overlay.get_attribute("id"))
            expect(toggle).to_have_attribute("aria-describedby", legend.get_attribute("id"))
            assert_same_box(overlay, card.locator(".photo img"))
            varying.append(assert_draws_grid(card, grid))
        assert varying[0] or varying[2], "the dandelion photos' heat maps are flat"
        # The EXIF-turned photo is shown portrait, and its grid is portrait too.
        turned_box = cards.nth(2).locator(".photo img").bounding_box()
        assert turned_box and turned_box["height"] > turned_box["width"]
        assert len(api[2]["heatmap"]) > len(api[2]["heatmap"][0])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page-heatmap.png"), full_page=True)

        after_first = len(sent)
        for index in range(3):  # pressed twice more: off, then on again, from the cached map
            card = cards.nth(index)
            toggle = card.get_by_role("button", name=TOGGLE)
            toggle.focus()
            page.keyboard.press("Enter" if index % 2 == 0 else "Space")
            expect(toggle).to_have_attribute("aria-pressed", "false")
            expect(card.locator("canvas.heatmap")).to_be_hidden()
            expect(card.locator(".legend")).to_be_hidden()
            page.keyboard.press("Space" if index % 2 == 0 else "Enter")
            expect(toggle).to_have_attribute("aria-pressed", "true")
            expect(card.locator("canvas.heatmap")).to_be_visible()
            assert_draws_grid(card, api[index]["heatmap"])
            page.keyboard.press("Enter")
            expect(toggle).to_have_attribute("aria-pressed", "false")
            expect(card.locator("canvas.heatmap")).to_be_hidden()
        page.wait_for_timeout(300)  # a stray request would have left by now
        assert len(sent) == after_first, [request.post_data_json for request in sent]
    finally:
        page.remove_listener("request", count)
    assert errors == []


def test_heat_map_texts_in_english(page, photo_files):
    page, _, errors = page
    page.get_by_role("button", name="English").click()
    try:
        page.get_by_role("button", name="Get the verdict").click()
        toggle = page.get_by_role("button", name="Where does the model see the dandelion?")
        expect(toggle).to_have_count(3, timeout=30_000)
        toggle.first.click()
        legend = page.locator(".card .legend").first
        expect(legend).to_contain_text("Evidence of dandelion")
        expect(legend).to_contain_text("low")
        expect(legend).to_contain_text("strong")
        expect(page.locator(".card canvas.heatmap").first).to_have_attribute(
            "aria-label", re.compile("Heat map.*dandelion")
        )
    finally:
        page.get_by_role("button", name="Français").click()
    assert errors == []


def test_screenshot_script(page, photo_files, tmp_path):
    _, config, _ = page
    output = tmp_path / "verdicts.png"
    files = [str(photo_files[name]) for name in ("dandelion", "grass")]
    result = run_script(
        "screenshot_page", *files, "--url", f"{config.web_url}/", "--output", str(output)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 heat map(s) shown" in result.stdout
    with Image.open(output) as shot:
        assert shot.format == "PNG" and shot.width >= 900


def two_fresh_verdicts(page, photo_files) -> None:
    """Clear the page, upload the dandelion and the grass photo, wait for their two verdicts."""
    page.get_by_role("button", name="Tout effacer").click()
    page.set_input_files("#file-input", [str(photo_files[k]) for k in ("dandelion", "grass")])
    page.get_by_role("button", name="Obtenir le verdict").click()
    expect(page.locator(".card .verdict")).to_have_count(2, timeout=30_000)


def test_heat_map_failures_leave_the_toggle_usable(page, photo_files):
    """A busy or down server while a map is asked for: the card says so and the toggle can be
    pressed again. A row without a grid (an older version ignores `explain`): that card says the
    map is unavailable, the others keep their toggles. Only these answers are played by the
    browser; the verdicts and the retry reach the real stack."""
    page, _, errors = page
    plays: list[dict] = []

    def played(route) -> None:
        if not explains(route.request) or not plays:
            route.continue_()
            return
        answer = plays.pop(0)
        if answer.get("abort"):
            route.abort()
        else:
            route.fulfill(**answer)

    errors.clear()
    page.route("**/predict", played)
    try:
        two_fresh_verdicts(page, photo_files)
        card = page.locator(".card").first
        toggle = card.get_by_role("button", name=TOGGLE)
        status = card.locator(".heatmap-status")
        for answer, message in (
            ({"status": 503, "json": {"error": "down"}}, "Le serveur du modèle ne répond pas"),
            ({"status": 429, "json": {"error": "slow down"}}, "Trop de demandes"),
            ({"abort": True}, "Le serveur du modèle ne répond pas"),
        ):
            plays.append(answer)
            toggle.focus()
            page.keyboard.press("Enter")
            expect(status).to_contain_text(message)
            expect(toggle).to_be_enabled()
            expect(toggle).to_have_attribute("aria-pressed", "false")
            expect(toggle).not_to_have_attribute("aria-busy", "true")
            expect(card.locator("canvas.heatmap")).to_have_count(0)
        page.keyboard.press("Enter")  # the real stack answers this time
        expect(toggle).to_have_attribute("aria-pressed", "true")
        expect(card.locator("canvas.heatmap")).to_be_visible()
        expect(status).to_have_text("")

        other = page.locator(".card").nth(1)
        older_row = {"label": "grass", "confidence": 0.9, "probabilities": {"grass": 0.9}}
        plays.append({"status": 200, "json": {"predictions": [older_row]}})
        other.get_by_role("button", name=TOGGLE).click()
        expect(other.get_by_role("button", name=TOGGLE)).to_be_disabled()
        expect(other.get_by_role("button", name=TOGGLE)).to_have_accessible_description(
            "Cette version du modèle ne fournit pas de carte de chaleur."
        )
        expect(other.locator("canvas.heatmap")).to_have_count(0)
        expect(toggle).to_be_enabled()  # one older row says nothing of the other cards
    finally:
        page.unroute("**/predict")
    # Chromium logs the played 4xx/5xx answers and the aborted request, nothing else.
    assert all(re.search(r"429|503|ERR_FAILED", error) for error in errors), errors


def test_a_version_without_heat_maps_says_so(page, photo_files):
    """A version whose network cannot draw heat maps refuses `explain` (400, in its words) when a
    toggle asks for a map: every toggle then says the heat map is unavailable, and so do the
    cards of later verdicts in this visit. Only the refusal is played by the browser; the
    verdict requests reach the real stack."""
    page, _, errors = page
    asked: list[bool] = []

    def older_version(route) -> None:
        explain = explains(route.request)
        asked.append(explain)
        if explain:
            route.fulfill(status=400, json={"error": REFUSAL, "request_id": "test"})
        else:
            route.continue_()

    errors.clear()
    page.route("**/predict", older_version)
    try:
        two_fresh_verdicts(page, photo_files)
        toggles = page.get_by_role("button", name=TOGGLE)
        expect(toggles).to_have_count(2)
        for index in range(2):
            expect(toggles.nth(index)).to_be_enabled()
        assert asked == [False]
        toggles.first.focus()
        page.keyboard.press("Space")
        for index in range(2):
            expect(toggles.nth(index)).to_be_disabled()
            expect(toggles.nth(index)).to_have_accessible_description(
                "Cette version du modèle ne fournit pas de carte de chaleur."
            )
        expect(page.locator("canvas.heatmap")).to_have_count(0)
        assert asked == [False, True]
        # Remembered for the visit: the next verdicts' toggles are disabled from the start.
        page.get_by_role("button", name="Obtenir le verdict").click()
        expect(page.locator("#status")).to_have_text("2 verdict(s) prêt(s).", timeout=30_000)
        expect(toggles).to_have_count(2)
        for index in range(2):
            expect(toggles.nth(index)).to_be_disabled()
            expect(toggles.nth(index)).to_have_accessible_description(
                "Cette version du modèle ne fournit pas de carte de chaleur."
            )
        assert asked == [False, True, False]
    finally:
        page.unroute("**/predict")
        page.reload()  # the page remembers the refusal: start the next test afresh
    # The refused request is the only console error (Chromium logs every 4xx response).
    assert all("400" in error for error in errors), errors
