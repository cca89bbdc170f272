"""Start, stop or show the FloriSense stack as plain processes (`make up`, `make down`)."""

from __future__ import annotations

import argparse
import sys

from florisense_model import stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args()
    services = stack.services()
    try:
        if args.action == "up":
            for service in services:
                print(stack.start(service), flush=True)
            print(f"MLflow UI: {stack.tracking_uri()}  (logs: {stack.RUN_DIR / 'logs'})")
        elif args.action == "down":
            for service in reversed(services):
                print(stack.stop(service))
        else:
            for service in services:
                state = "healthy" if stack.healthy(service.health_url) else "down"
                print(f"{service.name}: pid {stack.running_pid(service)}, {state}")
    except RuntimeError as exc:
        print(f"florisense: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
