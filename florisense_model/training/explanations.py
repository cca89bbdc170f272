"""Judging the heat maps: the pointing game on photos with hand-checked flower boxes.

A heat map "points" where its strongest cell is; it scores a hit when that cell's centre falls
inside a box drawn around a flower. The baseline it must beat is a map that always points at the
photo's centre. The maps come from the same code as serving (preprocess_tiles, the class maps,
photo_heatmaps), on the Keras network the run just trained.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageOps

from florisense_model.model.class_maps import CLASS_MAPS_OUTPUT
from florisense_model.model.heatmaps import TILES_PER_SIDE, Grid, photo_heatmaps
from florisense_model.model.preprocessing import preprocess_tiles
from florisense_model.training.data import BUILTIN, csv_rows

Box = tuple[float, float, float, float]  # left, top, right, bottom, in photo pixels


@dataclass(frozen=True)
class BoxedPhoto:
    path: Path
    boxes: list[Box]


@dataclass(frozen=True)
class PointingScore:
    hits: int
    centre_hits: int
    photos: int

    def metrics(self) -> dict[str, float]:
        return {
            "pointing_game": self.hits / self.photos,
            "pointing_game_centre_baseline": self.centre_hits / self.photos,
            "pointing_game_photos": float(self.photos),
        }


def load_boxes(data_dir: Path, source: str | Path = BUILTIN) -> list[BoxedPhoto]:
    """The boxed photos found under `data_dir`, from a CSV `sha256,file,left,top,right,bottom`
    ("builtin": the boxes drawn for the dandelion-grass photos). Matched by content hash, so a
    different photo with the same name never gets another photo's boxes."""
    by_file: dict[str, list[dict[str, str]]] = {}
    for row in csv_rows(source, builtin="flower_boxes/dandelion-grass.csv"):
        by_file.setdefault(row["file"], []).append(row)
    photos = []
    for name, rows in sorted(by_file.items()):
        path = data_dir / name
        if not path.is_file():  # the data bucket's layout: <class>/<sha256>.<ext>
            path = data_dir / Path(name).parent / f"{rows[0]['sha256']}{Path(name).suffix.lower()}"
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != rows[0]["sha256"]:
            continue
        boxes = [tuple(float(r[k]) for k in ("left", "top", "right", "bottom")) for r in rows]
        photos.append(BoxedPhoto(path, boxes))  # type: ignore[arg-type]
    return photos


def heatmaps(
    network: keras.Model,
    paths: Sequence[Path],
    classes: list[str],
    image_size: int,
    resize_mode: str,
) -> list[Grid]:
    """The heat maps serving would answer for these photo files (the same tiles, class maps and
    geometry), from `network`: a Keras model with class maps (compile.inference_network)."""
    tiled = [
        preprocess_tiles(p.read_bytes(), image_size, resize_mode, TILES_PER_SIDE) for p in paths
    ]

    def class_maps(tiles: list[np.ndarray]) -> np.ndarray:
        return network.predict(np.stack(tiles), verbose=0)[CLASS_MAPS_OUTPUT]

    return photo_heatmaps(tiled, class_maps, classes, image_size)


def strongest_point(heatmap: Grid, width: int, height: int) -> tuple[float, float]:
    """The centre, in photo pixels, of the heat map's strongest cell (the first, if tied)."""
    grid = np.asarray(heatmap)
    row, col = np.unravel_index(int(grid.argmax()), grid.shape)
    return (col + 0.5) * width / grid.shape[1], (row + 0.5) * height / grid.shape[0]


def inside(point: tuple[float, float], boxes: Sequence[Box]) -> bool:
    x, y = point
    return any(left <= x <= right and top <= y <= bottom for left, top, right, bottom in boxes)


def photo_size(path: Path) -> tuple[int, int]:
    """Width and height as displayed (EXIF orientation applied), the boxes' frame."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def sample_for_plot(labels: Sequence[str], count: int = 12) -> list[int]:
    """Up to `count` indices, the classes taking turns, spread over each class's photos."""
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    share = max(1, count // max(1, len(by_class)))
    picked = []
    for indices in by_class.values():
        spread = np.linspace(0, len(indices) - 1, min(share, len(indices))).round().astype(int)
        picked.append([indices[i] for i in np.unique(spread)])
    turns = [
        index for group in itertools.zip_longest(*picked) for index in group if index is not None
    ]
    return turns[:count]


def pointing_game(photos: Sequence[BoxedPhoto], maps: Sequence[Grid]) -> PointingScore:
    hits = centre_hits = 0
    for photo, heatmap in zip(photos, maps, strict=True):
        width, height = photo_size(photo.path)
        hits += inside(strongest_point(heatmap, width, height), photo.boxes)
        centre_hits += inside((width / 2, height / 2), photo.boxes)
    return PointingScore(hits, centre_hits, len(photos))
