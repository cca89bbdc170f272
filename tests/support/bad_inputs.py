"""The bad-input corpus: requests a public /predict will receive, each with the answer it must get.

A case is either refused as a whole (`status` is a 4xx) or answered 200 with a per-row error for
the bad rows while the good rows get their verdict (`row_errors`). `message` is a fragment the
client-facing error must contain: specific, not a generic failure.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests.support.images import CLASS_COLOURS, encode, photo, png_header_claiming

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: int = 200
    message: str = ""
    # For 200 answers: {row index: expected error fragment, or None for a valid verdict}.
    rows: dict[int, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def records(*images: object) -> bytes:
    return json.dumps({"dataframe_records": [{"image": image} for image in images]}).encode()


GRASS = photo(CLASS_COLOURS["grass"], size=(120, 160), seed=7)
GOOD = b64(encode(GRASS))


def animated_gif() -> bytes:
    frames = [Image.fromarray(photo(CLASS_COLOURS["grass"], seed=s)).convert("P") for s in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(GRASS).convert("CMYK"), "JPEG")


def png_16bit() -> bytes:
    grey = (np.asarray(Image.fromarray(GRASS).convert("L"), dtype=np.uint16) * 257).astype(
        np.uint16
    )
    return encode(Image.fromarray(grey), "PNG")


def rgba_png() -> bytes:
    rgba = np.dstack([GRASS, np.full(GRASS.shape[:2], 128, np.uint8)])
    return encode(Image.fromarray(rgba), "PNG")


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(GRASS, "JPEG", exif=exif.tobytes())


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<rect width="100" height="100" fill="green"/></svg>'
)
# The start of a real HEIC file: an ISO-BMFF `ftyp` box with the `heic` brand.
HEIC = struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic" + b"\x00" * 64


def nested(depth: int) -> bytes:
    return b'{"dataframe_records": ' + b"[" * depth + b"]" * depth + b"}"


def cases() -> list[Case]:
    jpeg = encode(GRASS)
    many = [GOOD] * 1000
    return [
        Case("malformed-json", b'{"dataframe_records": [', status=400, message="valid JSON"),
        Case("not-utf8", b'{"dataframe_records": "\xff\xfe"}', status=400, message="not UTF-8"),
        Case("json-array-top-level", b"[1, 2]", status=400, message="dictionary"),
        Case("no-content-type", records(GOOD), headers={}, rows={0: None}),
        Case(
            "wrong-content-type",
            records(GOOD),
            headers={"Content-Type": "text/html"},
            status=415,
            message="content types",
        ),
        Case(
            "content-type-parameter",
            records(GOOD),
            headers={"Content-Type": "application/json; version=2"},
            status=415,
            message="content type parameters",
        ),
        Case("empty-body", b"", status=400, message="Empty request body"),
        Case("no-format-key", b'{"images": []}', status=400, message="dataframe_records"),
        Case(
            "missing-image-column",
            json.dumps({"dataframe_records": [{"picture": GOOD}]}).encode(),
            status=400,
            message="image",
        ),
        Case(
            "extra-columns",
            json.dumps({"dataframe_records": [{"image": GOOD, "note": "hello"}]}).encode(),
            rows={0: None},
        ),
        Case("empty-batch", records(), status=400, message="No images"),
        Case("null-image", records(None, GOOD), rows={0: "missing image", 1: None}),
        Case("number-image", records(42, GOOD), rows={0: "got int", 1: None}),
        Case("object-image", records({"a": 1}, GOOD), rows={0: "got dict", 1: None}),
        Case("empty-string", records("", GOOD), rows={0: "empty image", 1: None}),
        Case(
            "invalid-base64",
            records("%%%not base64%%%", GOOD),
            rows={0: "invalid base64", 1: None},
        ),
        Case(
            "base64-of-text",
            records(b64(b"hello, I am not a photo"), GOOD),
            rows={0: "not a recognised image", 1: None},
        ),
        Case(
            "truncated-jpeg",
            records(b64(jpeg[: len(jpeg) // 2]), GOOD),
            rows={0: "truncated", 1: None},
        ),
        Case(
            "zero-bytes-image",
            records(b64(b""), GOOD),
            rows={0: "empty image", 1: None},
        ),
        Case(
            "one-pixel-image",
            records(b64(encode(np.zeros((1, 1, 3), np.uint8), "PNG")), GOOD),
            rows={0: "too small", 1: None},
        ),
        Case(
            "png-decompression-bomb",
            records(b64(png_header_claiming(30000, 30000)), GOOD),
            rows={0: "too large", 1: None},
        ),
        Case("animated-gif", records(b64(animated_gif())), rows={0: None}),
        Case("cmyk-jpeg", records(b64(cmyk_jpeg())), rows={0: None}),
        Case("16-bit-png", records(b64(png_16bit())), rows={0: None}),
        Case("rgba-png", records(b64(rgba_png())), rows={0: None}),
        Case("exif-rotated-jpeg", records(b64(exif_rotated_jpeg())), rows={0: None}),
        Case("svg", records(b64(SVG), GOOD), rows={0: "SVG drawings are not supported", 1: None}),
        Case("heic", records(b64(HEIC), GOOD), rows={0: "HEIC photos are not supported", 1: None}),
        Case(
            "thousand-images", records(*many), status=400, message="Too many images in one request"
        ),
        Case(
            "over-limit-body",
            b'{"dataframe_records": [{"image": "' + b"A" * (33 * 1024 * 1024) + b'"}]}',
            status=413,
            message="too large",
        ),
        Case("deeply-nested-json", nested(100_000), status=400, message="nested too deeply"),
        Case(
            "tf-serving-instances-format",
            json.dumps({"instances": [{"image": GOOD}]}).encode(),
            rows={0: None},
        ),
        Case(
            "dataframe-split-format",
            json.dumps({"dataframe_split": {"columns": ["image"], "data": [[GOOD]]}}).encode(),
            rows={0: None},
        ),
    ]
