"""The network's forward pass, uint8 images in, class probabilities out, in one of three runtimes:

- "onnx-int8" (the default when the version has `model.int8.onnx`): ONNX Runtime on the int8
  graph quantized at registration, kept only if it classified the test photos as well as Keras.
- "onnx" (the default when the version has only `model.onnx`): ONNX Runtime on the float graph
  compiled at registration, equal to Keras within 1e-4. No TensorFlow in either.
- "keras": model.keras through Keras and TensorFlow, the source of truth: for debugging (model
  config `runtime: keras`) and for versions registered before the compiled graph existed. Only
  where TensorFlow is installed (not in the model-server image).

Each is imported only when chosen, so the ONNX path never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from florisense_model.model.class_maps import CLASS_MAPS_OUTPUT, PROBABILITIES_OUTPUT

RUNTIMES = ("onnx-int8", "onnx", "keras")
# The artifact each ONNX runtime runs.
ONNX_ARTIFACTS = {"onnx-int8": "onnx_int8_model", "onnx": "onnx_model"}
# uint8 images -> their class probabilities, or their class activation maps (class_maps.py).
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Network:
    """A loaded network: `forward` answers probabilities, `class_maps` the class activation
    maps (None for graphs compiled before heat maps, or networks without a pooled dense head)."""

    forward: Forward
    class_maps: Forward | None


def default_runtime(artifacts: dict[str, str]) -> str:
    """The fastest runtime this version has a graph for."""
    return next((r for r, name in ONNX_ARTIFACTS.items() if name in artifacts), "keras")


def load_network(runtime: str, artifacts: dict[str, str], image_size: int) -> Network:
    """The version's network in `runtime`, from (n, size, size, 3) uint8 batches to their
    (n, classes) probabilities, warmed up with one call."""
    if runtime in ONNX_ARTIFACTS:
        if ONNX_ARTIFACTS[runtime] not in artifacts:
            raise ValueError(f"runtime {runtime!r} asked for, but this version has no such graph")
        network = onnx_network(artifacts[ONNX_ARTIFACTS[runtime]])
    elif runtime == "keras":
        network = keras_network(artifacts["keras_model"], image_size)
    else:
        raise ValueError(f"unknown runtime {runtime!r} (expected one of {RUNTIMES})")
    blank = np.zeros((1, image_size, image_size, 3), np.uint8)
    network.forward(blank)
    if network.class_maps is not None:  # traced now, not on the first explain request
        network.class_maps(blank)
    return network


def onnx_threads() -> int:
    """Intra-op threads of one ONNX Runtime call: FLORISENSE_ONNX_THREADS, else 1 (measured,
    README "Serving runtime": concurrent requests and the chunks of a large batch then use the
    cores side by side, which beats splitting one call across them)."""
    return int(os.environ.get("FLORISENSE_ONNX_THREADS", "1"))


def onnx_network(path: str, threads: int | None = None) -> Network:
    """ONNX Runtime on the graph at `path`, `threads` intra-op threads a call (default:
    onnx_threads())."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or onnx_threads()
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    outputs = [output.name for output in session.get_outputs()]
    # Graphs compiled before heat maps have one unnamed output: the probabilities.
    probabilities = PROBABILITIES_OUTPUT if PROBABILITIES_OUTPUT in outputs else outputs[0]

    # ONNX Runtime sessions may be run from several threads at once. Fetching one output does
    # not skip the other's nodes, but the class maps are one small matrix product (measured:
    # README, "Heat maps").
    def forward(batch: np.ndarray) -> np.ndarray:
        return session.run([probabilities], {input_name: batch})[0]

    def class_maps(batch: np.ndarray) -> np.ndarray:
        return session.run([CLASS_MAPS_OUTPUT], {input_name: batch})[0]

    return Network(forward, class_maps if CLASS_MAPS_OUTPUT in outputs else None)


def onnx_forward(path: str, threads: int | None = None) -> Forward:
    """The probabilities alone of onnx_network."""
    return onnx_network(path, threads).forward


def keras_network(path: str, image_size: int) -> Network:
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeError(
            "this version runs through Keras (it has no compiled graph, or the runtime 'keras' "
            "was asked for) and TensorFlow is not installed here: register it again "
            "(mlflow run . -e import_keras -P keras_path=...) to serve it without TensorFlow"
        ) from None

    limit_tensorflow_threads(tf)
    import keras

    from florisense_model.model.class_maps import with_class_maps

    model = keras.saving.load_model(path, compile=False)
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)
    # One traced graph for every batch size: ~5x faster than model.predict per call.
    compiled = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    explaining = with_class_maps(model)
    if explaining is model:
        return Network(lambda batch: compiled(batch).numpy(), None)
    maps = tf.function(
        lambda x: explaining(x, training=False)[CLASS_MAPS_OUTPUT], input_signature=[spec]
    )
    return Network(lambda batch: compiled(batch).numpy(), lambda batch: maps(batch).numpy())


def limit_tensorflow_threads(tf: Any) -> None:
    """One intra-op thread per forward call, unless the operator set TF_NUM_INTRAOP_THREADS.

    Measured on 2 cores: a one-image forward call takes the same ~19 ms with TensorFlow's default
    pool (one thread per core) as with one thread, but the default burns ~30 CPU-ms per image
    instead of ~20 (idle pool threads spin). With one thread, concurrent requests and the chunks
    of a large batch run side by side, one per core.
    """
    if "TF_NUM_INTRAOP_THREADS" in os.environ:
        return
    # RuntimeError: TensorFlow already started in this process (a notebook, a test): leave it.
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(1)
