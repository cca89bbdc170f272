"""A heat map drawn over its photo: the one rendering used by `scripts/predict.py --explain` and
the training run's `plots/heatmaps.png` (the web page draws its own, in the browser)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Evidence for dandelion is drawn in magenta: it stands out on both yellow flowers and green
# grass. Opacity grows with the evidence, so cells with none leave the photo as it is.
COLOUR = (220, 0, 180)
MAX_OPACITY = 0.7


def overlay(photo: Image.Image, heatmap: list[list[float]]) -> Image.Image:
    """`photo` (as displayed: EXIF orientation applied) with `heatmap` (rows of [0, 1] values
    covering it) stretched over it."""
    base = ImageOps.exif_transpose(photo).convert("RGB")
    grid = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    levels = Image.fromarray((grid * 255).round().astype(np.uint8), mode="L")
    alpha = levels.resize(base.size, Image.Resampling.BILINEAR).point(
        lambda value: round(value * MAX_OPACITY)
    )
    colour = Image.new("RGB", base.size, COLOUR)
    return Image.composite(colour, base, alpha)
