"""Classify photos in process with a registered model (default: models:/florisense/Production)."""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow
import pandas as pd

from florisense_model.model_package import encode_file
from scripts.cli import run_cli

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


def image_files(paths: list[str], per_folder: int | None = None) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            files += found[:per_folder]
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--model-uri", default="models:/florisense/Production")
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
