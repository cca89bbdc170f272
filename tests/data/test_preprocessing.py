"""The one preprocessing function, on every image mode and format and on broken input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from florisense_model.model.preprocessing import ImageError, preprocess_image
from tests.support.images import encode, png_header_claiming

SIZE = 64
RED = (220, 30, 30)


def solid(mode: str, colour, size=(40, 30)) -> Image.Image:
    return Image.new(mode, size, colour)


def assert_rgb_close(array: np.ndarray, colour, tolerance: int = 12) -> None:
    assert array.shape == (SIZE, SIZE, 3) and array.dtype == np.uint8
    centre = array[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4].reshape(-1, 3).mean(0)
    assert np.abs(centre - np.array(colour)).max() <= tolerance, centre


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_every_accepted_format_gives_a_fixed_size_rgb_array(fmt):
    data = encode(solid("RGB", RED), fmt)
    assert_rgb_close(preprocess_image(data, SIZE), RED, tolerance=25 if fmt == "GIF" else 12)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (solid("L", 100), (100, 100, 100)),
        (solid("1", 1), (255, 255, 255)),
        (solid("RGB", RED).convert("P", palette=Image.Palette.ADAPTIVE), RED),
        (solid("CMYK", (0, 255, 255, 0)), (255, 0, 0)),
        (solid("RGBA", (220, 30, 30, 255)), RED),
        (solid("RGBA", (0, 0, 0, 0)), (255, 255, 255)),  # transparent -> white background
        (solid("LA", (50, 255)), (50, 50, 50)),
    ],
    ids=["grey", "1-bit", "palette", "cmyk", "rgba-opaque", "rgba-transparent", "grey-alpha"],
)
def test_image_modes_convert_to_rgb(image, expected):
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    if image.mode == "1":
        fmt = "BMP"
    assert_rgb_close(preprocess_image(encode(image, fmt), SIZE), expected)


def test_cmyk_jpeg_is_decoded_with_the_right_colours():
    data = encode(solid("CMYK", (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_rgb_close(preprocess_image(data, SIZE), (255, 0, 0), tolerance=20)


def test_sixteen_bit_png_is_rescaled_not_clipped_to_white():
    pixels = np.full((30, 40), 20000, dtype=np.uint16)  # 20000 / 65535 -> 78 in 8 bits
    image = Image.fromarray(pixels)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert_rgb_close(preprocess_image(data, SIZE), (78, 78, 78), tolerance=2)


def test_palette_png_with_transparency_uses_white_background():
    image = Image.new("P", (30, 30), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    data = encode(image, "PNG", transparency=0)
    assert_rgb_close(preprocess_image(data, SIZE), (255, 255, 255))


def test_first_frame_of_an_animated_gif_and_webp():
    frames = [solid("RGB", RED), solid("RGB", (20, 20, 220))]
    for fmt in ("GIF", "WEBP"):
        buffer = io.BytesIO()
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        assert_rgb_close(preprocess_image(buffer.getvalue(), SIZE), RED, tolerance=25)


def test_exif_orientation_is_applied():
    # Top half red, bottom half blue; EXIF orientation 6 = rotate 90 degrees clockwise to display.
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:20] = RED
    pixels[20:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(pixels, "JPEG", exif=exif.tobytes(), quality=95)
    out = preprocess_image(data, SIZE).astype(int)
    # Displayed upright, red is now on the right and blue on the left.
    assert out[:, -5:, 0].mean() > 180 and out[:, :5, 2].mean() > 180


def test_crop_keeps_the_centre_and_letterbox_pads_with_grey():
    pixels = np.zeros((50, 150, 3), np.uint8)
    pixels[:, :50] = (250, 0, 0)  # left third red, middle black, right third blue-ish
    pixels[:, 100:] = (0, 0, 250)
    data = encode(pixels, "PNG")
    crop = preprocess_image(data, SIZE, "crop").astype(int)
    assert crop.max() < 30  # only the black centre survives a centre crop
    box = preprocess_image(data, SIZE, "letterbox").astype(int)
    assert tuple(box[0, SIZE // 2]) == (128, 128, 128)  # padding bar
    assert box[SIZE // 2, 2, 0] > 200 and box[SIZE // 2, -3, 2] > 200  # both ends kept
    with pytest.raises(ValueError, match="resize mode"):
        preprocess_image(data, SIZE, "stretch")


def test_large_jpeg_is_reduced_but_still_correct():
    data = encode(solid("RGB", RED, size=(3000, 2000)), "JPEG", quality=90)
    assert_rgb_close(preprocess_image(data, SIZE), RED)


def truncated_jpeg() -> bytes:
    data = encode(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8), "JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty image"),
        (b"hello, this is plain text", "not a recognised image"),
        (b"\xff\xd8\xff\xe0garbage" * 10, "not a recognised image"),
        (truncated_jpeg(), "corrupt or truncated JPEG"),
        (png_header_claiming(30000, 30000), "dimensions too large"),
        (png_header_claiming(25000, 10), "dimensions too large"),
        (encode(solid("RGB", RED, size=(1, 1)), "PNG"), "too small"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "SVG drawings are not",
        ),
        (
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
            "HEIC photos are not supported",
        ),
        (encode(solid("RGB", RED), "TIFF"), "unsupported image format TIFF"),
        (b"\x00" * (21 * 1024 * 1024), "too large"),
    ],
    ids=[
        "zero-bytes",
        "text",
        "corrupt-jpeg",
        "truncated-jpeg",
        "bomb",
        "absurd-side",
        "1x1",
        "svg",
        "heic",
        "tiff",
        "huge-file",
    ],
)
def test_bad_input_raises_a_short_specific_image_error(data, message):
    with pytest.raises(ImageError, match=message) as caught:
        preprocess_image(data, SIZE)
    text = str(caught.value)
    assert len(text) < 120 and "/" not in text.replace("WebP", "").split("(")[0]


def test_the_bomb_is_refused_before_decoding():
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ImageError):
        preprocess_image(png_header_claiming(30000, 30000), SIZE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # decoding it would need 2.7 GB
