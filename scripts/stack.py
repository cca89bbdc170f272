"""Start, stop or show the FloriSense stack as plain processes (`make up`, `make down`)."""

from __future__ import annotations

import argparse
import sys

from florisense_model import stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "restart"])
    parser.add_argument(
        "--only",
        action="append",
        choices=["s3", "mlflow", "model-server", "nginx", "follower"],
        help="limit `up` or `restart` to these services (repeatable)",
    )
    args = parser.parse_args()
    config = stack.StackConfig.from_env()
    try:
        only = set(args.only or [])
        if "model-server" in only:
            # The follower moves model servers too: it must not act while they restart.
            only.add("follower")
        if args.action in ("up", "restart"):
            if args.action == "restart":
                for service in reversed(stack.services(config)):  # the follower first
                    # Restarting the model server restarts whichever slot serves.
                    name = service.name.replace("model-server-b", "model-server")
                    if not only or name in only:
                        print(stack.stop(service), flush=True)
                if not only or "model-server" in only:
                    stack.set_active_slot(config, "a", None)
            for message in stack.up(config, only):
                print(message, flush=True)
            print(
                f"MLflow UI: {config.tracking_uri}   web page: {config.web_url}   "
                f"logs: {config.run_dir / 'logs'}"
            )
        elif args.action == "down":
            for message in stack.down(config):
                print(message)
        else:
            for service in stack.services(config):
                state = "healthy" if stack.is_healthy(service) else "down"
                print(f"{service.name}: pid {stack.running_pid(service)}, {state}")
    except RuntimeError as exc:
        print(f"florisense: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
