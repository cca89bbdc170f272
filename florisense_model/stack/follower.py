"""The model server follows the registry: when the Production version changes, start it in the
idle slot, wait until it answers, point nginx at it, then stop the old slot. /predict keeps
answering throughout: no request is dropped.

Two ways to point nginx at the new slot, one per stack:
- without Docker (`make up`), the follower is a service beside nginx: it rewrites nginx's
  configuration so that the new slot is the active one and reloads nginx gracefully;
- in compose (`--in-container`), the follower is the model-server container itself, running both
  slots; nginx, in another container, lists the two slots (active, then standby) and sends each
  request to whichever answers, so starting the new slot and stopping the old one is the switch.

On Kubernetes (`--kubernetes`) the switch is a rolling update of the model-server Deployment
instead (kubernetes.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable

from florisense_model import registry
from florisense_model.cli import first_line
from florisense_model.cli import log as log_line
from florisense_model.config import PRODUCTION_MODEL_URI
from florisense_model.stack import kubernetes, monitoring, nginx, services, supervisor
from florisense_model.stack.serve import wait_for_production
from florisense_model.stack.settings import StackConfig
from florisense_model.stack.slots import active_slot, other_slot, set_active_slot

# After the switch, nginx may still hold requests for the old slot: let them finish.
DRAIN_S = 5.0
Repoint = Callable[[StackConfig], None] | None


def switch_to(
    config: StackConfig,
    version: str,
    log: Callable[[str], None],
    repoint: Repoint = nginx.reload,
) -> None:
    active = active_slot(config)
    old_slot = str(active["slot"])
    new_slot = other_slot(old_slot)
    new = services.model_server(config, new_slot, version)
    supervisor.stop(new)  # a leftover from an interrupted switch
    log(f"Production is now version {version}: starting it in slot {new_slot}")
    log(supervisor.start(new))
    set_active_slot(config, new_slot, version)
    monitoring.publish_model_targets(config, [old_slot, new_slot])
    if repoint is None:
        log(f"slot {new_slot} answers (version {version}); slot {old_slot} stops in {DRAIN_S:g} s")
    else:
        try:
            repoint(config)
        except Exception:
            # nginx still serves the old slot: say so, so that the next round tries again.
            set_active_slot(config, old_slot, active["version"])
            monitoring.publish_model_targets(config, [old_slot])
            supervisor.stop(new)
            raise
        log(f"nginx now sends /predict to slot {new_slot} (version {version})")
    time.sleep(DRAIN_S)
    monitoring.publish_model_targets(config, [new_slot])  # before it stops: not a target down
    log(supervisor.stop(services.model_server(config, old_slot)))


def follow(
    config: StackConfig,
    log: Callable[[str], None],
    interval_s: float,
    rounds: int | None = None,
    repoint: Repoint = nginx.reload,
) -> None:
    """Poll the registry every `interval_s` seconds (forever, or `rounds` times)."""
    done = 0
    while rounds is None or done < rounds:
        done += 1
        try:
            version = registry.production_version(config.tracking_uri)
            if version is not None and version != active_slot(config)["version"]:
                switch_to(config, version, log, repoint)
        except Exception as exc:  # keep following: the next round may succeed
            log(f"could not follow the registry this round: {first_line(exc)}")
        time.sleep(interval_s)


def serve_and_follow(config: StackConfig, log: Callable[[str], None]) -> None:
    """Compose's model server: wait for a Production version, serve it in slot a, follow."""

    def stop_slots(signum: int, frame: object) -> None:
        for slot in ("a", "b"):
            log(supervisor.stop(services.model_server(config, slot)))
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_slots)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    version, _ = wait_for_production(config.tracking_uri, log)
    log(supervisor.start(services.model_server(config, "a", version)))
    set_active_slot(config, "a", version)
    monitoring.publish_model_targets(config, ["a"])
    log(f"serving version {version} in slot a; following {PRODUCTION_MODEL_URI}")
    follow(config, log, config.follow_interval_s, repoint=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--in-container",
        action="store_true",
        help="compose: this process is the model server; it runs the slots itself",
    )
    parser.add_argument(
        "--kubernetes",
        action="store_true",
        help="Kubernetes: roll the model-server Deployment out to each new Production version",
    )
    args = parser.parse_args()
    config = StackConfig.from_env()
    if args.kubernetes:
        deployment = os.environ.get("FLORISENSE_K8S_DEPLOYMENT", "model-server")
        log_line(f"following {PRODUCTION_MODEL_URI}: Deployment {deployment} rolls out to it")
        kubernetes.follow(
            kubernetes.Cluster.in_cluster(),
            deployment,
            os.environ.get("FLORISENSE_K8S_CONTAINER", "model-server"),
            config.tracking_uri,
            log_line,
            config.follow_interval_s,
        )
        return
    if args.in_container:
        serve_and_follow(config, log_line)
        return
    log_line(f"following {PRODUCTION_MODEL_URI} every {config.follow_interval_s:g} s")
    follow(config, log_line, config.follow_interval_s)


if __name__ == "__main__":
    main()
