"""What `florisense retrain` does: ask the retraining deployment for a run, and report it."""

from __future__ import annotations

import os

from florisense_model.pipeline.prefect_api import PrefectAPI, ui_url


def request_retraining(force: bool, wait: bool, timeout_s: float) -> int:
    """Start a run of retrain/florisense; with `wait`, follow it to its end. 0 when it ends
    Completed (trained, or skipped with its reason), 1 otherwise."""
    from florisense_model.stack.orchestration import prefect_auth
    from florisense_model.stack.settings import StackConfig

    config = StackConfig.from_env()  # the stack's Prefect unless PREFECT_API_URL says otherwise
    api = PrefectAPI(
        os.environ.get("PREFECT_API_URL") or config.prefect_api_url, prefect_auth(config)
    )
    run = api.run_deployment({"force": force, "reason": "a person (florisense retrain)"})
    print(f"retraining run {run['name']} ({run['id']}) scheduled: {ui_url(api.url, run['id'])}")
    if not wait:
        return 0
    run = api.wait(run["id"], timeout_s)
    state = run["state"]
    print(f"{state['type'].lower()}: {state.get('message') or state['name']}")
    return 0 if state["type"] == "COMPLETED" else 1
