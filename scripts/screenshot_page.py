"""Screenshot the running web page with verdicts and heat maps (the README's picture): upload
photos, wait for every verdict card, turn each card's heat map on, save a full-page PNG.

Drives the system Chromium (Debian's `chromium`) through Playwright, as the browser tests do."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.photos import image_files

DEFAULT_URL = "http://127.0.0.1:8080/"  # the stack's web port (FLORISENSE_WEB_PORT, .env.example)
DEFAULT_OUTPUT = Path("docs/images/page-verdicts.png")
READY = "() => !document.querySelector('#predict').disabled"
# A toggle whose map request is over: drawn (pressed), refused (disabled) or failed (not busy).
SETTLED = "toggle => toggle.getAttribute('aria-busy') !== 'true'"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos", nargs="+", help="photo files or folders to upload")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the page (default {DEFAULT_URL})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write")
    parser.add_argument("--width", type=int, default=900, help="viewport width in CSS pixels")
    parser.add_argument("--english", action="store_true", help="switch the page to English")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for verdicts")
    return parser.parse_args()


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    return found


def screenshot(
    url: str, photos: list[Path], output: Path, width: int, english: bool, timeout_s: float
) -> int:
    """Saves the screenshot; returns how many cards show a heat map."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(url)
            if english:
                page.click("#lang-switch")
            page.set_input_files("#file-input", [str(path) for path in photos])
            page.click("#predict")  # disables itself until every answer is in
            page.wait_for_function(READY, timeout=timeout_s * 1000)
            if page.locator(".card").count() == 0:
                raise ConnectionError(f"no verdicts: {page.locator('#status').inner_text()}")
            for toggle in page.locator(".card .toggle").element_handles():
                if not toggle.is_enabled():  # no map (this version refused: all of them)
                    continue
                toggle.click()  # the card asks for its map: busy until it is drawn (or refused)
                page.wait_for_function(SETTLED, arg=toggle, timeout=timeout_s * 1000)
            shown = page.locator(".card .toggle[aria-pressed='true']").count()
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output), full_page=True)
            return shown
        finally:
            browser.close()


def main() -> None:
    args = parse_args()
    photos = image_files(args.photos)
    if not photos:
        raise ValueError("no photos to upload")
    shown = screenshot(args.url, photos, args.output, args.width, args.english, args.timeout)
    print(f"{args.output}: {len(photos)} photo(s), {shown} heat map(s) shown")


if __name__ == "__main__":
    run_cli(main)
