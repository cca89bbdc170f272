"""The stack's secrets: from the environment (.env), else made once per run directory and kept
in run/secrets (mode 0600). Never a literal secret in the repository."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from florisense_model.stack.settings import StackConfig

# Only the S3 server and the tracking server ever see these; clients go through MLflow's proxy
# (and, with authentication on, log in with their own MLFLOW_TRACKING_USERNAME/PASSWORD).
SERVER_SECRET_NAMES = (
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
)


def stored_secret(config: StackConfig, name: str, make: Callable[[], str]) -> str:
    """A secret made once for this run directory and kept in run/secrets (mode 0600)."""
    stored = config.run_dir / "secrets" / name
    if not stored.is_file():
        stored.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stored.touch(mode=0o600)
        stored.write_text(make() + "\n")
    return stored.read_text().strip()


def s3_credentials(config: StackConfig) -> tuple[str, str]:
    """S3_ACCESS_KEY / S3_SECRET_KEY from the environment (.env), else a random pair."""
    key, secret = os.environ.get("S3_ACCESS_KEY", ""), os.environ.get("S3_SECRET_KEY", "")
    if key and secret:
        return key, secret
    stored = stored_secret(
        config,
        "s3-credentials",
        lambda: f"florisense-{secrets.token_hex(6)}\n{secrets.token_urlsafe(30)}",
    )
    key, secret = stored.split()
    return key, secret


def without_server_secrets(env: dict[str, str]) -> dict[str, str]:
    """`env` minus every secret only the S3 and tracking servers may see."""
    return {k: v for k, v in env.items() if k not in SERVER_SECRET_NAMES}
