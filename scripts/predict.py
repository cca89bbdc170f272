"""Classify photos through the running stack: POST them to /predict in batches and print a table
(file, label, confidence) or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from florisense_model.cli import run_cli
from florisense_model.client import DEFAULT_URL, PredictError, predict_files
from florisense_model.photos import image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--url", default=DEFAULT_URL, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--batch-size", type=int, default=16, help="images per request")
    parser.add_argument("--per-folder", type=int, default=None, help="at most N photos a folder")
    args = parser.parse_args()
    files = image_files(args.images, args.per_folder)
    if not files:
        raise ValueError("no image files found")
    try:
        rows = [
            {"file": str(path), **prediction}
            for path, prediction in predict_files(args.url, files, args.batch_size)
        ]
    except PredictError as exc:
        print(f"florisense: error: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(row["file"]) for row in rows)
    print(f"{'file':<{width}}  {'label':<10} confidence")
    for row in rows:
        if row["error"]:
            print(f"{row['file']:<{width}}  {'-':<10} error: {row['error']}")
        else:
            print(f"{row['file']:<{width}}  {row['label']:<10} {row['confidence']:.3f}")


if __name__ == "__main__":
    run_cli(main)
