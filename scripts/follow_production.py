"""Keep the served model on the registry's Production version (a service of `make up`)."""

from __future__ import annotations

import argparse
import sys
import time

from florisense_model import stack
from florisense_model.follower import follow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", file=sys.stderr, flush=True)

    log(f"following models:/florisense/Production every {args.interval:g} s")
    follow(stack.StackConfig.from_env(), log, args.interval)


if __name__ == "__main__":
    main()
