"""Compare the serving runtimes (ONNX Runtime, LiteRT) on a registered model's network and real
photos, each in a fresh process; prints a table and writes JSON. Figures only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow
import numpy as np

from florisense_model.cli import run_cli
from florisense_model.config import PRODUCTION_MODEL_URI
from florisense_model.model.preprocessing import preprocess_image
from florisense_model.perf.runtimes import compare
from florisense_model.photos import image_files

ROWS = (
    ("cold start (s)", "cold_start_s", None),
    ("one image, 1 thread (ms)", "one_image_1_thread", "p50_ms"),
    ("one image, 2 threads (ms)", "one_image_2_thread", "p50_ms"),
    ("batch 32, 1 thread (img/s)", "batch_32_1_thread", "images_per_s"),
    ("batch 32, 2 threads (img/s)", "batch_32_2_thread", "images_per_s"),
    ("concurrency 1 (img/s)", "concurrency_1_images_per_s", None),
    ("concurrency 4 (img/s)", "concurrency_4_images_per_s", None),
    ("concurrency 8 (img/s)", "concurrency_8_images_per_s", None),
    ("resident memory (MB)", "rss_mb", None),
    ("max |p - Keras p|", "max_abs_diff_vs_keras", None),
    ("file (MB)", "file_mb", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", required=True, nargs="+", help="photo files or folders")
    parser.add_argument("--model-uri", default=PRODUCTION_MODEL_URI)
    parser.add_argument("--json", default="", help="write every figure to this file")
    args = parser.parse_args()
    folder = Path(mlflow.artifacts.download_artifacts(args.model_uri))
    labels = json.loads((folder / "artifacts" / "labels.json").read_text())
    size, mode = int(labels["image_size"]), labels["resize_mode"]
    files = image_files(args.images)[:16]
    pixels = np.stack([preprocess_image(f.read_bytes(), size, mode) for f in files])
    results = compare(folder / "artifacts" / "model.keras", pixels)
    print(f"{'':<30}" + "".join(f"{name:>14}" for name in results))
    for title, key, field in ROWS:
        values = [r[key][field] if field else r[key] for r in results.values()]
        print(f"{title:<30}" + "".join(f"{v:>14.3g}" for v in values))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    run_cli(main)
