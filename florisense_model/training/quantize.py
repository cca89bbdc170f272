"""Int8 quantization of the compiled ONNX graph, kept only if it classifies the run's test photos
at least as well as Keras (balanced accuracy). On CPUs with int8 dot products (VNNI), ONNX Runtime
runs it about twice as fast as the float graph, in half the memory (README, "Serving runtime")."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from florisense_model.model.class_maps import CLASS_MAPS_OUTPUT
from florisense_model.training.compile import onnx_probabilities

INT8_FILE = "model.int8.onnx"
# Calibration photos (from the training split): enough for stable activation ranges, few enough
# that ONNX Runtime's calibrator (it keeps every intermediate output) stays under ~2 GB.
CALIBRATION_IMAGES = 48


@dataclass(frozen=True)
class Int8Inputs:
    """What quantizing needs beyond the test photos: training photos to calibrate on, and the
    test split's labels and Keras probabilities to judge the result against."""

    calibration: np.ndarray
    test_labels: np.ndarray
    keras_probabilities: np.ndarray


@dataclass(frozen=True)
class Int8Check:
    """How the int8 graph compares with Keras on the test split, and whether it is kept."""

    keras_balanced_accuracy: float
    int8_balanced_accuracy: float
    label_agreement: float
    max_abs_diff: float

    @property
    def accepted(self) -> bool:
        return self.int8_balanced_accuracy >= self.keras_balanced_accuracy

    def metrics(self) -> dict[str, float]:
        return {
            "int8_test_balanced_accuracy": self.int8_balanced_accuracy,
            "int8_label_agreement": self.label_agreement,
            "int8_max_abs_diff": self.max_abs_diff,
            "int8_accepted": float(self.accepted),
        }


def calibration_sample(pixels: np.ndarray, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """`count` images spread evenly over `pixels` (the training split is in class order)."""
    indices = np.linspace(0, len(pixels) - 1, min(count, len(pixels))).round().astype(int)
    return pixels[np.unique(indices)]


def quantize_int8(float_graph: Path, target: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization (QDQ, per-channel weights) of `float_graph`, its activation
    ranges calibrated on `calibration` (uint8 images), written to `target`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Images(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self._batches = iter([{name: calibration[i : i + 1]} for i in range(len(calibration))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="florisense-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Folds constants and infers shapes first, as ONNX Runtime's quantization guide asks.
        # It also fuses and renames nodes (MatMul + Add -> Gemm): the head is found after it.
        quant_pre_process(str(float_graph), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        quantize_static(
            str(prepared),
            str(target),
            Images(graph.input[0].name),
            quant_format=QuantFormat.QDQ,
            nodes_to_exclude=head_nodes(graph),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return target


def head_nodes(graph: Any) -> list[str]:
    """The global pooling and everything after it (dense layer, softmax): kept in float, so the
    probabilities keep their full resolution and sum to 1; they are a negligible share of the
    work."""
    pools = [node for node in graph.node if node.op_type == "GlobalAveragePool"]
    names = [node.name for node in pools]
    pooled = {output for node in pools for output in node.output}
    for node in graph.node:  # ONNX graphs are topologically sorted
        if pooled.intersection(node.input):
            names.append(node.name)
            pooled.update(node.output)
    # A network without global pooling (an imported one) still gets a float softmax.
    names += [n.name for n in graph.node if n.op_type == "Softmax" and n.name not in names]
    return names + [name for name in class_map_nodes(graph) if name not in names]


def class_map_nodes(graph: Any) -> list[str]:
    """The nodes that compute only the class maps (heat maps): one small matrix product off the
    last feature map, kept in float like the dense layer whose weights it shares."""
    producers = {output: node for node in graph.node for output in node.output}

    def ancestors(names: set[str]) -> set[str]:
        found, todo = set(), list(names)
        while todo:
            node = producers.get(todo.pop())
            if node is not None and node.name not in found:
                found.add(node.name)
                todo.extend(node.input)
        return found

    outputs = {output.name for output in graph.output}
    if CLASS_MAPS_OUTPUT not in outputs:
        return []
    shared = ancestors(outputs - {CLASS_MAPS_OUTPUT})
    return [n.name for n in graph.node if n.name in ancestors({CLASS_MAPS_OUTPUT}) - shared]


def check_int8(
    int8_graph: Path, pixels: np.ndarray, labels: np.ndarray, keras_probabilities: np.ndarray
) -> Int8Check:
    """The int8 graph's verdicts on the test split (`pixels`, `labels`) against Keras's."""
    int8 = onnx_probabilities(int8_graph, pixels)
    return Int8Check(
        keras_balanced_accuracy=float(
            balanced_accuracy_score(labels, keras_probabilities.argmax(axis=1))
        ),
        int8_balanced_accuracy=float(balanced_accuracy_score(labels, int8.argmax(axis=1))),
        label_agreement=float((int8.argmax(axis=1) == keras_probabilities.argmax(axis=1)).mean()),
        max_abs_diff=float(np.abs(int8 - keras_probabilities).max()),
    )
