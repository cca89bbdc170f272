"""The model server follows the registry: when the Production version changes, start it in the
idle slot, wait until it answers, point nginx at it (graceful reload), then stop the old slot.
/predict keeps answering throughout: no request is dropped."""

from __future__ import annotations

import time
from collections.abc import Callable

from florisense_model import stack
from florisense_model.serving import production_version

# After the reload, old nginx workers may still hold requests for the old slot: let them finish.
DRAIN_S = 5.0


def switch_to(config: stack.StackConfig, version: str, log: Callable[[str], None]) -> None:
    active = stack.active_slot(config)
    old_slot = str(active["slot"])
    new_slot = "b" if old_slot == "a" else "a"
    new = stack.model_server(config, new_slot, version)
    stack.stop(new)  # a leftover from an interrupted switch
    log(f"Production is now version {version}: starting it in slot {new_slot}")
    log(stack.start(new))
    stack.set_active_slot(config, new_slot, version)
    try:
        stack.reload_nginx(config)
    except Exception:
        # nginx still serves the old slot: say so, so that the next round tries again.
        stack.set_active_slot(config, old_slot, active["version"])
        stack.stop(new)
        raise
    log(f"nginx now sends /predict to slot {new_slot} (version {version})")
    time.sleep(DRAIN_S)
    log(stack.stop(stack.model_server(config, old_slot)))


def follow(
    config: stack.StackConfig,
    log: Callable[[str], None],
    interval_s: float,
    rounds: int | None = None,
) -> None:
    """Poll the registry every `interval_s` seconds (forever, or `rounds` times)."""
    done = 0
    while rounds is None or done < rounds:
        done += 1
        try:
            version = production_version(config.tracking_uri)
            if version is not None and version != stack.active_slot(config)["version"]:
                switch_to(config, version, log)
        except Exception as exc:  # keep following: the next round may succeed
            log(f"could not follow the registry this round: {str(exc).splitlines()[0][:200]}")
        time.sleep(interval_s)
