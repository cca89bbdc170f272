"""Class activation maps: where in a photo the network finds the evidence for each class.

The network ends in global average pooling and one dense layer, so its class scores are the
average, over the last feature map's cells, of that dense layer applied to each cell. Applying the
dense layer (without its bias) to every cell instead of their average gives one score per cell and
class: the class activation map (Zhou et al., 2016). It is exact for this head, needs no
gradients, and costs one small matrix product, so the compiled graph outputs it beside the
probabilities (`with_class_maps`) and serving only reshapes it (`dandelion_heatmap`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from florisense_model.model.preprocessing import PhotoRegion

DANDELION = "dandelion"  # the class the heat map shows evidence for
PROBABILITIES_OUTPUT = "probabilities"
CLASS_MAPS_OUTPUT = "class_maps"
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


def with_class_maps(network: Any) -> Any:
    """`network` (a Keras model ending in global average pooling and a dense softmax layer) with
    two named outputs: its probabilities, and the class activation maps (n, h, w, classes) before
    the bias. A network of another shape is returned unchanged (its versions cannot explain)."""
    import keras
    from keras import layers

    pools = [i for i, layer in enumerate(network.layers) if _is_global_average_pool(layer)]
    dense = network.layers[-1]
    if len(pools) != 1 or not isinstance(dense, layers.Dense):
        return network
    # Only dropout (the identity at inference) may sit between the pooling and the dense layer.
    if not all(isinstance(layer, layers.Dropout) for layer in network.layers[pools[0] + 1 : -1]):
        return network
    # The layers called again in a chain (as the product's networks are built), keeping the
    # last feature map on the way: a shared layer's own `input` is that of its first model.
    x = inputs = keras.Input(network.input_shape[1:], dtype=network.inputs[0].dtype, name="image")
    for index, layer in enumerate(network.layers[1:], start=1):
        if index == pools[0]:
            features = x
        x = layer(x)
    kernel = dense.get_weights()[0]
    cell_scores = layers.Dense(kernel.shape[1], use_bias=False, name=CLASS_MAPS_OUTPUT)
    maps = cell_scores(features)
    cell_scores.set_weights([kernel])
    outputs = {PROBABILITIES_OUTPUT: x, CLASS_MAPS_OUTPUT: maps}
    return keras.Model(inputs, outputs, name=network.name)


def _is_global_average_pool(layer: Any) -> bool:
    from keras import layers

    return isinstance(layer, layers.GlobalAveragePooling2D) and not layer.keepdims


def evidence_for(class_maps: np.ndarray, classes: list[str], target: str) -> np.ndarray:
    """Per cell, how much more the network's scores say `target` than the other classes (their
    mean), 0 where they say less."""
    index = classes.index(target)
    others = np.delete(class_maps, index, axis=-1).mean(axis=-1)
    return np.maximum(class_maps[..., index] - others, 0.0)


def resample(evidence: np.ndarray, region: PhotoRegion, input_size: int) -> np.ndarray:
    """The (h, w) map of the network's square input, sampled bilinearly at the cell centres of a
    grid laid over `region` (the photo as sent); samples outside the square are 0 (not seen)."""
    grid = evidence.shape[0]
    long_side = grid * UPSAMPLING
    if region.width >= region.height:
        cols, rows = long_side, max(1, round(long_side * region.height / region.width))
    else:
        rows, cols = long_side, max(1, round(long_side * region.width / region.height))
    xs = region.left + (np.arange(cols) + 0.5) * region.width / cols
    ys = region.top + (np.arange(rows) + 0.5) * region.height / rows
    cell = input_size / grid
    u = np.clip(xs / cell - 0.5, 0, grid - 1)
    v = np.clip(ys / cell - 0.5, 0, grid - 1)
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    u1, v1 = np.minimum(u0 + 1, grid - 1), np.minimum(v0 + 1, grid - 1)
    fu, fv = (u - u0)[None, :], (v - v0)[:, None]
    top = evidence[np.ix_(v0, u0)] * (1 - fu) + evidence[np.ix_(v0, u1)] * fu
    bottom = evidence[np.ix_(v1, u0)] * (1 - fu) + evidence[np.ix_(v1, u1)] * fu
    sampled = top * (1 - fv) + bottom * fv
    inside = ((ys >= 0) & (ys < input_size))[:, None] & ((xs >= 0) & (xs < input_size))[None, :]
    return np.where(inside, sampled, 0.0)


def stitch(tile_maps: np.ndarray, per_side: int = TILES_PER_SIDE) -> np.ndarray:
    """(per_side**2, h, w, classes) maps of tiles taken row by row -> one (per_side*h,
    per_side*w, classes) map."""
    _, height, width, classes = tile_maps.shape
    rows = tile_maps.reshape(per_side, per_side, height, width, classes).swapaxes(1, 2)
    return rows.reshape(per_side * height, per_side * width, classes)


def tiled_heatmap(
    tile_maps: np.ndarray, classes: list[str], region: PhotoRegion, input_size: int
) -> list[list[float]]:
    """dandelion_heatmap of the stitched class maps of preprocess_tiles's tiles (`region` is
    in the large square's pixels, `input_size` the model's)."""
    per_side = round(len(tile_maps) ** 0.5)
    return dandelion_heatmap(stitch(tile_maps, per_side), classes, region, input_size * per_side)


def dandelion_heatmap(
    class_maps: np.ndarray, classes: list[str], region: PhotoRegion, input_size: int
) -> list[list[float]]:
    """The heat map a client gets: the evidence for `dandelion` over the photo as sent, rows top
    to bottom, divided by its largest value: 1 where the evidence is strongest in this photo, 0
    where there is none (all zeros if there is none anywhere)."""
    grid = resample(evidence_for(class_maps, classes, DANDELION), region, input_size)
    peak = float(grid.max(initial=0.0))
    if peak > 0:
        grid = grid / peak
    return np.round(np.clip(grid, 0.0, 1.0), DECIMALS).tolist()
