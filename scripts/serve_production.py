"""Wait until models:/florisense/Production (or --version) can load, retrying with backoff and
saying why, then serve it with `mlflow models serve`."""

from __future__ import annotations

import argparse

from florisense_model.serving import serve_production
from scripts.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=60, help="seconds per request")
    parser.add_argument("--version", default=None, help="an exact version (default: Production)")
    args = parser.parse_args()
    serve_production(args.host, args.port, args.workers, args.timeout, args.version)


if __name__ == "__main__":
    run_cli(main)
