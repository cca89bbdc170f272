"""Spark batch scoring (scripts/score_batch.py) against the in-process pyfunc on the same photos,
in one run: images per second, Spark's start-up, where the time goes. Prints and writes JSON."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.perf.batch import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-uri", default="models:/florisense/Production")
    parser.add_argument("--input", required=True, type=Path, help="a folder of photos")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--json", default="", help="write the figures to this file")
    args = parser.parse_args()
    figures = compare(
        args.model_uri, args.input, args.master, os.environ.get("MLFLOW_TRACKING_URI")
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    run_cli(main)
