"""Helpers for tests: generated photos and datasets, environment paths."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def photo(
    colour: tuple[int, int, int], size=(96, 128), seed: int = 0, noise: int = 40
) -> np.ndarray:
    """A synthetic 'photo', as an (h, w, 3) uint8 array: the class colour under a seeded coarse
    light pattern (so distinct seeds are distinct pictures to a perceptual hash) plus noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(60, 255, (4, 4), dtype=np.uint8)).resize(
        (size[1], size[0]), Image.Resampling.BICUBIC
    )
    light = np.asarray(coarse, dtype=np.float64)[..., None] / 255.0
    base = rng.integers(0, noise, (size[0], size[1], 3))
    return np.clip(base + np.array(colour) * light, 0, 255).astype(np.uint8)


def encode(array_or_image, fmt: str = "JPEG", **save_args) -> bytes:
    image = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(array_or_image)
    )
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


CLASS_COLOURS = {"dandelion": (230, 200, 30), "grass": (40, 150, 40)}


def make_dataset(root: Path, per_class: int = 20, size=(96, 128)) -> Path:
    """<root>/dandelion and <root>/grass with `per_class` distinct generated JPEGs each."""
    for offset, (label, colour) in enumerate(CLASS_COLOURS.items()):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = photo(colour, size, seed=1000 * offset + index)
            (folder / f"{index:03d}.jpg").write_bytes(encode(pixels, quality=90))
    return root


def require_env_path(name: str) -> Path:
    """A path from the environment. Skipped where a developer has no copy of the real photos,
    but never in CI (CI=true), where a missing path is a failure."""
    value = os.environ.get(name, "").strip()
    if not value or not Path(value).exists():
        message = f"{name} is not set to an existing path (see README, 'Tests')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(value)


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims a huge size: the decompression-bomb shape."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
