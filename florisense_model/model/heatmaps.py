"""Heat maps: the class maps of a photo's tiles turned into the grid a client gets, the evidence
for `dandelion` laid over the photo as sent (letterbox removed), values in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from florisense_model.model.preprocessing import PhotoRegion

DANDELION = "dandelion"  # the class the heat map shows evidence for
# Heat maps look at the photo up close: fitted into a square this many times the model's input
# per side, cut into tiles of the model's size, each tile's class maps stitched into one map
# (14x14 at 224 px, from 4 forward passes). On 42 photos with hand-checked flower boxes the
# strongest cell fell on a flower in 48% of them with the whole photo's 7x7 map, 71% with 2x2
# tiles, 74% with 3x3 and 83% with 5x5 overlapping tiles at 3x (25 passes); pointing at the
# centre: 40% (README, "Heat maps").
TILES_PER_SIDE = 2
# The answered grid has this many cells per cell of the stitched map along the photo's long side:
# bilinear samples, so a 14x14 map gives a 28-cell-wide grid that follows the photo's shape.
UPSAMPLING = 2
# Rounded for JSON: a heat map's colour needs no more.
DECIMALS = 4
Grid = list[list[float]]


def cell_centres(cells: int, input_size: int) -> np.ndarray:
    """Where each cell of a `cells`-wide map is centred, in input pixels: (i + 0.5) * stride, as
    CAM upsampling usually assumes. MobileNetV2's stride-2 layers pad 0 before and 1 after, so
    with random weights a cell's gradient is centred 15.5 px further right and down; but for the
    trained network, flowers pasted at 49 known places on two lawns (6 flowers, 767 placements)
    were found 16.2 px from the truth on average with these centres and 19.7 px with the shifted
    ones, and the pointing game dropped from 71% to 64%: the trained features do not sit where
    the random ones do. Kept: the usual centres (README, "Heat maps")."""
    stride = input_size / cells
    return (np.arange(cells) + 0.5) * stride


def evidence_for(class_maps: np.ndarray, classes: list[str], target: str) -> np.ndarray:
    """Per cell, how much more the network's scores say `target` than the other classes (their
    mean), 0 where they say less."""
    index = classes.index(target)
    others = np.delete(class_maps, index, axis=-1).mean(axis=-1)
    return np.maximum(class_maps[..., index] - others, 0.0)


def resample(evidence: np.ndarray, region: PhotoRegion, input_size: int) -> np.ndarray:
    """The (h, w) map of the network's square input, sampled bilinearly at the cell centres of a
    grid laid over `region` (the photo as sent); samples outside the square are 0 (not seen)."""
    height, width = evidence.shape
    long_side = max(height, width) * UPSAMPLING
    if region.width >= region.height:
        cols, rows = long_side, max(1, round(long_side * region.height / region.width))
    else:
        rows, cols = long_side, max(1, round(long_side * region.width / region.height))
    xs = region.left + (np.arange(cols) + 0.5) * region.width / cols
    ys = region.top + (np.arange(rows) + 0.5) * region.height / rows
    # Fractional cell coordinates; beyond the outer centres the map is held flat.
    u = np.interp(xs, cell_centres(width, input_size), np.arange(width))
    v = np.interp(ys, cell_centres(height, input_size), np.arange(height))
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    u1, v1 = np.minimum(u0 + 1, width - 1), np.minimum(v0 + 1, height - 1)
    fu, fv = (u - u0)[None, :], (v - v0)[:, None]
    top = evidence[np.ix_(v0, u0)] * (1 - fu) + evidence[np.ix_(v0, u1)] * fu
    bottom = evidence[np.ix_(v1, u0)] * (1 - fu) + evidence[np.ix_(v1, u1)] * fu
    sampled = top * (1 - fv) + bottom * fv
    inside = ((ys >= 0) & (ys < input_size))[:, None] & ((xs >= 0) & (xs < input_size))[None, :]
    return np.where(inside, sampled, 0.0)


def stitch(tile_maps: np.ndarray, per_side: int) -> np.ndarray:
    """(per_side**2, h, w, classes) maps of tiles taken row by row -> one (per_side*h,
    per_side*w, classes) map."""
    _, height, width, classes = tile_maps.shape
    rows = tile_maps.reshape(per_side, per_side, height, width, classes).swapaxes(1, 2)
    return rows.reshape(per_side * height, per_side * width, classes)


def dandelion_heatmap(
    class_maps: np.ndarray, classes: list[str], region: PhotoRegion, input_size: int
) -> Grid:
    """The heat map a client gets: the evidence for `dandelion` over the photo as sent, rows top
    to bottom, divided by its largest value: 1 where the evidence is strongest in this photo, 0
    where there is none (all zeros if there is none anywhere)."""
    evidence = np.nan_to_num(evidence_for(class_maps, classes, DANDELION), nan=0.0, posinf=0.0)
    grid = resample(evidence, region, input_size)
    peak = float(grid.max(initial=0.0))
    if peak > 0:
        grid = grid / peak
    return np.round(np.clip(grid, 0.0, 1.0), DECIMALS).tolist()


def photo_heatmaps(
    tiled: Sequence[tuple[np.ndarray, PhotoRegion]],
    class_maps: Callable[[list[np.ndarray]], np.ndarray],
    classes: list[str],
    input_size: int,
    per_side: int = TILES_PER_SIDE,
) -> list[Grid]:
    """Each photo's heat map from its tiles (preprocessing.preprocess_tiles: per_side**2 tiles
    and the photo's region in the large square); `class_maps` runs the network on a list of
    tiles, all photos' at once."""
    maps = class_maps([tile for tiles, _ in tiled for tile in tiles])
    count = per_side * per_side
    return [
        dandelion_heatmap(
            stitch(maps[i * count : (i + 1) * count], per_side),
            classes,
            region,
            input_size * per_side,
        )
        for i, (_, region) in enumerate(tiled)
    ]
