"""MLflow's basic-auth app for the tracking server and UI (FLORISENSE_MLFLOW_AUTH=true): users in
run/mlflow/basic_auth.db, anonymous requests refused, the first admin's password from .env."""

from __future__ import annotations

import os
import secrets

from florisense_model.stack.credentials import stored_secret
from florisense_model.stack.settings import StackConfig

MIN_ADMIN_PASSWORD = 12


def auth_enabled() -> bool:
    return os.environ.get("FLORISENSE_MLFLOW_AUTH", "").lower() in ("1", "true", "yes")


def auth_environment(config: StackConfig) -> dict[str, str]:
    """The tracking server's environment for basic-auth (its ini file written), or {} when off.
    Clients then log in with MLFLOW_TRACKING_USERNAME/PASSWORD."""
    if not auth_enabled():
        return {}
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    if len(password) < MIN_ADMIN_PASSWORD:
        raise RuntimeError(
            "FLORISENSE_MLFLOW_AUTH is on: set MLFLOW_AUTH_ADMIN_PASSWORD "
            f"({MIN_ADMIN_PASSWORD}+ characters) in .env"
        )
    data = config.run_dir / "mlflow"
    data.mkdir(parents=True, exist_ok=True)
    ini = data / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{data / 'basic_auth.db'}\n"
        f"admin_username = {os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME', 'admin')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        # Signs the UI's CSRF tokens: from .env, else made once for this run directory.
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or stored_secret(config, "flask-secret-key", lambda: secrets.token_urlsafe(32)),
    }
