"""Evaluate a model URI on a folder of class sub-folders (models:/florisense/Production,
models:/florisense/3, runs:/…); prints the figures, optionally writes JSON and logs to MLflow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.training.evaluation import evaluate_folder, log_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--json", default="", help="write the full report to this file")
    parser.add_argument(
        "--log-to-mlflow",
        action="store_true",
        help="record an evaluation run linked to the model version",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    report = evaluate_folder(args.model_uri, args.data_dir, args.batch_size)
    for key, value in report["metrics"].items():
        print(f"{key:<32} {value:.4f}")
    print(
        f"confusion matrix (rows true, columns predicted, {report['classes']}): "
        f"{report['confusion_matrix']['counts']}"
    )
    for item in report["misclassified"]:
        print(
            f"misclassified {item['file']}: {item['true']} -> {item['predicted']} "
            f"({item['confidence']:.2f})"
        )
    for item in report["invalid"]:
        print(f"invalid {item['file']}: {item['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.log_to_mlflow:
        print(f"evaluation run: {log_evaluation(report)}")


if __name__ == "__main__":
    run_cli(main)
