"""`florisense retrain`: ask the retraining flow for a run (the Prefect deployment)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    retrain = subparsers.add_parser(
        "retrain",
        help="start the retraining flow (Prefect deployment retrain/florisense)",
        description="Start a run of the retraining flow: it snapshots the dataset, skips when "
        "Production was trained on the same one (unless --force), trains with `mlflow run .`, "
        "and lets the gate decide. Needs the Prefect server ($PREFECT_API_URL).",
    )
    retrain.add_argument("--force", action="store_true", help="train even on unchanged data")
    retrain.add_argument("--wait", action="store_true", help="wait for the run and report it")
    retrain.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)"
    )
    retrain.set_defaults(func=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from florisense_model.pipeline.client import request_retraining

    return request_retraining(force=args.force, wait=args.wait, timeout_s=args.timeout)
