"""`promote` entry point: make a registered version Production (stage and alias)."""

from __future__ import annotations

import argparse

from mlflow import MlflowClient

from florisense_model.cli import run_cli
from florisense_model.config import PRODUCTION_ALIAS, REGISTERED_MODEL_NAME
from florisense_model.registry import promote


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True, help="the version number to promote")
    parser.add_argument("--name", default=REGISTERED_MODEL_NAME)
    args = parser.parse_args(argv)
    client = MlflowClient()
    production = promote(client, args.version, args.name)
    if production.version != str(args.version):
        raise RuntimeError(
            f"version {production.version} was promoted at the same moment and is Production; "
            f"version {args.version} is not (run promote again if it should be)"
        )
    client.set_model_version_tag(args.name, args.version, "gate.decision", "promoted")
    client.set_model_version_tag(
        args.name, args.version, "gate.reason", "promoted by the promote entry point"
    )
    print(f"{args.name} version {args.version} is Production now (alias '{PRODUCTION_ALIAS}')")


if __name__ == "__main__":
    run_cli(main)
