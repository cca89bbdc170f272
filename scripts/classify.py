"""Classify photos in process with a registered model (default: models:/florisense/Production)."""

from __future__ import annotations

import argparse

import mlflow
import pandas as pd

from florisense_model.cli import run_cli
from florisense_model.config import PRODUCTION_MODEL_URI
from florisense_model.photos import encode_file, image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--model-uri", default=PRODUCTION_MODEL_URI)
    parser.add_argument("--per-folder", type=int, default=None, help="at most N photos a folder")
    args = parser.parse_args()
    files = image_files(args.images, args.per_folder)
    model = mlflow.pyfunc.load_model(args.model_uri)
    result = model.predict(pd.DataFrame({"image": [encode_file(f) for f in files]}))
    for path, row in zip(files, result.to_dict("records"), strict=True):
        verdict = row["error"] or f"{row['label_display']:<10} {row['confidence']:.1%}"
        print(f"{path.name:<28} {verdict}")


if __name__ == "__main__":
    run_cli(main)
