"""ONNX Runtime against LiteRT (XNNPACK) on the same network, each measured in a fresh process:
cold start, one-image latency at 1 and 2 threads, 32-image batches, throughput at concurrency
1/4/8 (client threads sharing the cores, one image per call), memory, and agreement with Keras.
What chose the serving runtime (README, "Serving runtime"). Figures only."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from florisense_model.model.runtimes import Forward, onnx_forward
from florisense_model.perf.timing import summary, time_calls


def make_forward(runtime: str, path: str, threads: int) -> Forward:
    """A forward callable for one client thread (LiteRT interpreters are not thread-safe, so
    each client gets its own; an ONNX Runtime session may be shared, and is)."""
    if runtime == "onnxruntime":
        return onnx_forward(path, threads)  # exactly as the model serves
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]
    shape: list[tuple] = [()]

    def forward(batch: np.ndarray) -> np.ndarray:
        if shape[0] != batch.shape:  # resize only when the batch size changes
            interpreter.resize_tensor_input(index, list(batch.shape))
            interpreter.allocate_tensors()
            shape[0] = batch.shape
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output).copy()

    return forward


def throughput(runtime: str, path: str, image: np.ndarray, clients: int, seconds: float) -> float:
    """Images per second with `clients` threads calling one-image forwards without pause."""
    shared = make_forward(runtime, path, 1) if runtime == "onnxruntime" else None
    forwards = [shared or make_forward(runtime, path, 1) for _ in range(clients)]
    for forward in forwards:
        forward(image)
    counts = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        while time.perf_counter() < deadline:
            forwards[index](image)
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(counts) / (time.perf_counter() - started), 1)


def measure(runtime: str, path: str, reference_file: str, repeats: int = 40) -> dict[str, Any]:
    """Run in a fresh process: every figure of one runtime."""
    started = time.perf_counter()
    forward = make_forward(runtime, path, 1)
    reference = np.load(reference_file)
    pixels, expected = reference["pixels"], reference["probabilities"]
    one, batch = pixels[:1], np.resize(pixels, (32, *pixels.shape[1:]))
    forward(one)
    result: dict[str, Any] = {"cold_start_s": round(time.perf_counter() - started, 2)}
    got = np.concatenate([forward(pixels[i : i + 1]) for i in range(len(pixels))])
    result["max_abs_diff_vs_keras"] = float(np.abs(got - expected).max())
    for threads in (1, 2):
        run = make_forward(runtime, path, threads)
        result[f"one_image_{threads}_thread"] = summary(time_calls(lambda f=run: f(one), repeats))
        result[f"batch_32_{threads}_thread"] = summary(
            time_calls(lambda f=run: f(batch), max(3, repeats // 8)), 32
        )
    for clients in (1, 4, 8):
        result[f"concurrency_{clients}_images_per_s"] = throughput(runtime, path, one, clients, 4)
    import psutil

    result["rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    return result


def compile_candidates(keras_path: Path, folder: Path) -> dict[str, Path]:
    """The inference network as ONNX (as registered) and as a LiteRT flat buffer."""
    import keras
    import tensorflow as tf

    from florisense_model.training.compile import export_onnx, inference_network

    model = keras.saving.load_model(keras_path, compile=False)
    onnx = export_onnx(model, folder / "model.onnx")
    litert = folder / "model.tflite"
    converter = tf.lite.TFLiteConverter.from_keras_model(inference_network(model, class_maps=False))
    litert.write_bytes(converter.convert())
    return {"onnxruntime": onnx, "litert": litert}


def compare(keras_path: Path, pixels: np.ndarray) -> dict[str, Any]:
    """Both runtimes, each in its own process, against Keras's probabilities on `pixels`."""
    import keras

    with tempfile.TemporaryDirectory(prefix="florisense-runtimes-") as tmp:
        folder = Path(tmp)
        candidates = compile_candidates(keras_path, folder)
        expected = keras.saving.load_model(keras_path, compile=False).predict(pixels, verbose=0)
        np.savez(folder / "reference.npz", pixels=pixels, probabilities=expected)
        results = {}
        for runtime, path in candidates.items():
            output = subprocess.run(
                [sys.executable, "-m", __name__, runtime, str(path), str(folder / "reference.npz")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[runtime] = json.loads(output.strip().splitlines()[-1])
            results[runtime]["file_mb"] = round(path.stat().st_size / 1e6, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(*sys.argv[1:4])))
