"""Image bytes -> the model's fixed-size RGB uint8 array. The ONE implementation, used by
training, evaluation and serving, so what the network sees never depends on where it runs."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "MPO"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Refused before any pixel is decoded: a 40-megapixel image already needs 120 MB as RGB.
MAX_PIXELS = 40_000_000
MAX_SIDE = 20_000
MIN_SIDE = 8
# Letterbox bars are mid-grey: zero after the model's [-1, 1] scaling, i.e. "no signal".
LETTERBOX_FILL = (128, 128, 128)


# Why a row was refused, in a few words (the model server's metrics count row errors by kind).
ERROR_KINDS = (
    "missing", "not_base64", "empty", "too_large", "too_small", "unsupported_format",
    "not_an_image", "corrupt",
)  # fmt: skip


class ImageError(ValueError):
    """An input that is not a usable image. Its message is short and safe to show a client;
    `kind` is one of ERROR_KINDS."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class PhotoRegion:
    """Where the photo as sent lies in the network's square input, in input pixels: inside the
    square for letterbox (grey bars around it), beyond it for crop (the cut-off parts)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def preprocess_image(data: bytes, size: int, mode: str = "crop") -> np.ndarray:
    """Decode `data` and return a (size, size, 3) uint8 RGB array.

    mode "crop" scales the short side to `size` and keeps the centre square; "letterbox" scales
    the long side to `size` and pads with grey. Raises ImageError for anything unusable.
    """
    image = open_image(data)
    rgb = to_rgb(image, draft_size=size)
    return np.asarray(fit_image(rgb, size, mode), dtype=np.uint8)


def preprocess_tiles(
    data: bytes, size: int, mode: str, per_side: int
) -> tuple[np.ndarray, PhotoRegion]:
    """The photo fitted (as preprocess_image does) into a square `per_side` times larger, cut
    into per_side x per_side tiles of the model's size, row by row: (per_side**2, size, size, 3)
    uint8; and where the photo lies in the large square. Heat maps look at each tile up close."""
    large = size * per_side
    rgb = to_rgb(open_image(data), draft_size=large)
    square = np.asarray(fit_image(rgb, large, mode), dtype=np.uint8)
    tiles = square.reshape(per_side, size, per_side, size, 3).swapaxes(1, 2)
    return tiles.reshape(per_side * per_side, size, size, 3), photo_region(rgb, large, mode)


def open_image(data: bytes) -> Image.Image:
    """Open `data` lazily, checking size limits from the header before decoding any pixel."""
    if not data:
        raise ImageError("empty image: 0 bytes", "empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(
            f"image too large: {len(data) / 1e6:.1f} MB (max {MAX_IMAGE_BYTES / 1e6:.0f} MB)",
            "too_large",
        )
    try:
        with warnings.catch_warnings():
            # Our own limits below replace Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(
            "image dimensions too large (decompression bomb refused)", "too_large"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(*_unrecognised(data)) from exc
    if image.format not in ACCEPTED_FORMATS:
        raise ImageError(
            f"unsupported image format {image.format} (expected JPEG, PNG, WebP, GIF or BMP)",
            "unsupported_format",
        )
    width, height = image.size
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise ImageError(
            f"image dimensions too large: {width}x{height} "
            f"(max {MAX_PIXELS / 1e6:.0f} megapixels, {MAX_SIDE} px a side)",
            "too_large",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"image too small: {width}x{height} (min {MIN_SIDE} px a side)", "too_small"
        )
    return image


# ISO-BMFF brands of HEIC/HEIF/AVIF files (iPhone photos are HEIC by default).
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")


def _unrecognised(data: bytes) -> tuple[str, str]:
    """Name the formats people actually send by mistake, so they know what to do: the message
    and its kind."""
    expected = "expected JPEG, PNG, WebP, GIF or BMP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        message = f"HEIC photos are not supported: export the photo as JPEG ({expected})"
        return message, "unsupported_format"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return f"SVG drawings are not supported: send a photo ({expected})", "unsupported_format"
    return f"not a recognised image ({expected})", "not_an_image"


def to_rgb(image: Image.Image, draft_size: int | None = None) -> Image.Image:
    """Decode the first frame, apply EXIF orientation and convert any mode to 8-bit RGB.

    draft_size lets JPEG decode at a reduced scale (DCT scaling) when the photo is far larger than
    the model's input: much faster, and the same in training and serving.
    """
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated {image.format} image", "corrupt") from exc
    return _convert_mode(image)


def _convert_mode(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16/32-bit greyscale: Pillow's convert() would clip to 255 (a white image); rescale.
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if pixels.max() > 255 else 255.0
        pixels = np.clip(pixels * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return Image.fromarray(pixels, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent areas become white, as a browser shows them on a page.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def placement(width: int, height: int, size: int, mode: str) -> tuple[int, int, int, int]:
    """The resized photo's width and height, and where its top-left corner lands in the square
    (negative for crop: the parts cut off)."""
    if mode == "crop":
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        return new_w, new_h, -((new_w - size) // 2), -((new_h - size) // 2)
    if mode == "letterbox":
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return new_w, new_h, (size - new_w) // 2, (size - new_h) // 2
    raise ValueError(f"unknown resize mode {mode!r} (expected 'crop' or 'letterbox')")


def photo_region(image: Image.Image, size: int, mode: str) -> PhotoRegion:
    new_w, new_h, left, top = placement(*image.size, size, mode)
    return PhotoRegion(left, top, left + new_w, top + new_h)


def fit_image(image: Image.Image, size: int, mode: str) -> Image.Image:
    new_w, new_h, left, top = placement(*image.size, size, mode)
    if mode == "crop":
        # Only the part kept is resampled (box=): a 20,000 px panorama costs what a square does,
        # also for heat maps' tiles at twice the size.
        scale_x, scale_y = image.width / new_w, image.height / new_h
        box = (-left * scale_x, -top * scale_y, (size - left) * scale_x, (size - top) * scale_y)
        return image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), LETTERBOX_FILL)
    canvas.paste(resized, (left, top))
    return canvas
