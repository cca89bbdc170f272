"""The blue/green model-server slots: which one nginx sends /predict to, and the version it
serves, in one small file under the run directory."""

from __future__ import annotations

import json
import sys
import urllib.request

from florisense_model.stack.files import write_atomically
from florisense_model.stack.settings import StackConfig


def active_slot(config: StackConfig) -> dict[str, str | None]:
    """{"slot": "a" or "b", "version": the version it serves, or None if unknown}."""
    try:
        return json.loads((config.run_dir / "model-server.active").read_text())
    except (FileNotFoundError, ValueError):
        return {"slot": "a", "version": None}


def set_active_slot(config: StackConfig, slot: str, version: str | None) -> None:
    state = json.dumps({"slot": slot, "version": version})
    write_atomically(config.run_dir / "model-server.active", state)


def other_slot(slot: str) -> str:
    return "b" if slot == "a" else "a"


def active_slot_answers(config: StackConfig) -> bool:
    """Whether the active slot's model server answers /ping (compose's healthcheck)."""
    port = config.slot_port(str(active_slot(config)["slot"]))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    # `python -m florisense_model.stack.slots --healthy`: exit 0 if the active slot answers.
    if sys.argv[1:] != ["--healthy"]:
        sys.exit("usage: python -m florisense_model.stack.slots --healthy")
    sys.exit(0 if active_slot_answers(StackConfig.from_env()) else 1)
