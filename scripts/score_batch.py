"""Score every photo under a folder or an s3:// prefix on Spark with a registered model
(mlflow.pyfunc.spark_udf) and write Parquet: path, label, confidence, probabilities, error,
model_version, run_id, model_uri. See README, "Beyond one machine"."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from florisense_model.batch_scoring import score_batch
from florisense_model.cli import log, run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-uri", required=True, help="e.g. models:/florisense/Production")
    parser.add_argument("--input", required=True, help="a folder (any depth) or s3://bucket/prefix")
    parser.add_argument("--output", required=True, help="the Parquet folder to write (replaced)")
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument(
        "--env-manager",
        default="local",
        choices=["local", "virtualenv", "uv", "conda"],
        help="the executors' Python: this environment (local), or one built from the model's "
        "own requirements by MLflow (the others; needs that tool on every executor)",
    )
    parser.add_argument("--json", default="", help="also write the job's figures to this file")
    args = parser.parse_args()
    if shutil.which("java") is None:
        raise FileNotFoundError(
            "Spark needs Java 17: run make system-deps (openjdk-17-jre-headless)"
        )
    figures = score_batch(
        args.model_uri, args.input, args.output, args.master, args.env_manager, say=log
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    run_cli(main)
