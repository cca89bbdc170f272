"""Class activation maps: where in a photo the network finds the evidence for each class.

The network ends in global average pooling and one dense layer, so its class scores are the
average, over the last feature map's cells, of that dense layer applied to each cell. Applying the
dense layer (without its bias) to every cell instead of their average gives one score per cell and
class: the class activation map (Zhou et al., 2016). It is exact for this head, needs no
gradients, and costs one small matrix product, so the compiled graph outputs it beside the
probabilities (`with_class_maps`); heatmaps.py turns it into what a client gets.
"""

from __future__ import annotations

from typing import Any

PROBABILITIES_OUTPUT = "probabilities"
CLASS_MAPS_OUTPUT = "class_maps"


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
