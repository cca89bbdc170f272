"""The FloriSense stack on one machine, without Docker: the S3 server (`rclone serve s3`), the
MLflow tracking server, the model server (`mlflow models serve`) and nginx as plain processes,
with logs and pid files under one run directory, health-checked at start and stopped exactly."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from florisense_model import nginx_config
from florisense_model.config import REGISTERED_MODEL_NAME

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parent.parent


ARTIFACT_BUCKET = "mlflow-artifacts"
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


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path
    mlflow_port: int = 5050
    model_port: int = 5001
    web_port: int = 8080
    s3_port: int = 9000
    # The follower's second model-server slot (blue/green), and how often it polls the registry.
    model_alt_port: int = 0
    follow_interval_s: float = 10.0

    def slot_port(self, slot: str) -> int:
        if slot == "a":
            return self.model_port
        return self.model_alt_port or self.model_port + 1

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            run_dir=Path(os.environ.get("FLORISENSE_RUN_DIR", PROJECT / "run")).resolve(),
            mlflow_port=int(os.environ.get("FLORISENSE_MLFLOW_PORT", "5050")),
            model_port=int(os.environ.get("FLORISENSE_MODEL_PORT", "5001")),
            web_port=int(os.environ.get("FLORISENSE_WEB_PORT", "8080")),
            s3_port=int(os.environ.get("FLORISENSE_S3_PORT", "9000")),
            model_alt_port=int(os.environ.get("FLORISENSE_MODEL_ALT_PORT", "0")),
            follow_interval_s=float(os.environ.get("FLORISENSE_FOLLOW_INTERVAL", "10")),
        )

    def as_env(self) -> dict[str, str]:
        """The environment from which `from_env` rebuilds this configuration (child processes)."""
        return {
            "FLORISENSE_RUN_DIR": str(self.run_dir),
            "FLORISENSE_MLFLOW_PORT": str(self.mlflow_port),
            "FLORISENSE_MODEL_PORT": str(self.model_port),
            "FLORISENSE_WEB_PORT": str(self.web_port),
            "FLORISENSE_S3_PORT": str(self.s3_port),
            "FLORISENSE_MODEL_ALT_PORT": str(self.slot_port("b")),
            "FLORISENSE_FOLLOW_INTERVAL": str(self.follow_interval_s),
        }

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None  # None: healthy while the process runs
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 90.0
    # The S3 server answers an anonymous GET with an error: any HTTP answer means it is up.
    any_status_is_healthy: bool = False
    # Services that may see the S3 credentials; every other one starts without them.
    keeps_secrets: bool = False

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (test stacks, benchmark servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_credentials(config: StackConfig) -> tuple[str, str]:
    """S3_ACCESS_KEY / S3_SECRET_KEY from the environment (.env), else a random pair made once
    for this run directory and kept there (mode 0600): never a literal secret in the repo."""
    key, secret = os.environ.get("S3_ACCESS_KEY", ""), os.environ.get("S3_SECRET_KEY", "")
    if key and secret:
        return key, secret
    stored = _stored_secret(
        config,
        "s3-credentials",
        lambda: f"florisense-{secrets.token_hex(6)}\n{secrets.token_urlsafe(30)}",
    )
    key, secret = stored.split()
    return key, secret


def _stored_secret(config: StackConfig, name: str, make: Callable[[], str]) -> str:
    """A secret made once for this run directory and kept in run/secrets (mode 0600)."""
    stored = config.run_dir / "secrets" / name
    if not stored.is_file():
        stored.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stored.touch(mode=0o600)
        stored.write_text(make() + "\n")
    return stored.read_text().strip()


def s3_server(config: StackConfig) -> Service:
    """A real S3 API on 127.0.0.1 (`rclone serve s3`); buckets are folders under run/s3."""
    key, secret = s3_credentials(config)
    return Service(
        name="s3",
        command=[
            str(BIN / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{config.s3_port}",
            "--auth-key",
            f"{key},{secret}",
            str(config.run_dir / "s3"),
        ],
        health_url=f"{config.s3_url}/",
        run_dir=config.run_dir,
        start_timeout_s=20.0,
        any_status_is_healthy=True,
        keeps_secrets=True,
    )


def s3_client(config: StackConfig):
    import boto3

    key, secret = s3_credentials(config)
    return boto3.client(
        "s3",
        endpoint_url=config.s3_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def ensure_bucket(config: StackConfig) -> str:
    """Create the artifact bucket through the S3 API if it does not exist yet."""
    from botocore.exceptions import ClientError

    try:
        s3_client(config).create_bucket(Bucket=ARTIFACT_BUCKET)
        return f"s3: bucket {ARTIFACT_BUCKET} created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            return f"s3: bucket {ARTIFACT_BUCKET} ready"
        raise


def tracking_server(config: StackConfig) -> Service:
    """MLflow tracking server: SQL backend store; artifacts in S3, proxied by the server itself
    so that clients and the model server need no S3 credentials."""
    data = config.run_dir / "mlflow"
    key, secret = s3_credentials(config)
    auth = auth_settings(config)
    return Service(
        name="mlflow",
        command=[
            str(BIN / "mlflow"),
            "server",
            *(["--app-name", "basic-auth"] if auth else []),
            "--host",
            "127.0.0.1",
            "--port",
            str(config.mlflow_port),
            "--backend-store-uri",
            f"sqlite:///{data / 'mlflow.db'}",
            "--artifacts-destination",
            f"s3://{ARTIFACT_BUCKET}",
            "--serve-artifacts",
            # 1 worker and no job runner: 400 MB and 6 s instead of 2.4 GB and 18 s on 2 cores.
            "--workers",
            "1",
        ],
        health_url=f"{config.tracking_uri}/health",
        run_dir=config.run_dir,
        env={
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            **auth,
        },
        keeps_secrets=True,
    )


def auth_settings(config: StackConfig) -> dict[str, str]:
    """MLflow's basic-auth app for the tracking server and UI when FLORISENSE_MLFLOW_AUTH=true:
    users in run/mlflow/basic_auth.db, anonymous requests refused, the first admin's password
    from MLFLOW_AUTH_ADMIN_PASSWORD (.env). Clients then set MLFLOW_TRACKING_USERNAME/PASSWORD."""
    if os.environ.get("FLORISENSE_MLFLOW_AUTH", "").lower() not in ("1", "true", "yes"):
        return {}
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    if len(password) < 12:
        raise RuntimeError(
            "FLORISENSE_MLFLOW_AUTH is on: set MLFLOW_AUTH_ADMIN_PASSWORD (12+ characters) in .env"
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
        or _stored_secret(config, "flask-secret-key", lambda: secrets.token_urlsafe(32)),
    }


def model_server(config: StackConfig, slot: str = "a", version: str | None = None) -> Service:
    """`mlflow models serve` in slot "a" or "b", loaded via the tracking server: the Production
    stage, or an exact version (what the follower starts, so it serves what it checked)."""
    port = config.slot_port(slot)
    # The same entry point as compose: waits (with backoff, saying why) until the model can load,
    # then execs `mlflow models serve`, so the pid file names the server itself.
    command = [str(BIN / "python"), "-m", "scripts.serve_production"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return Service(
        name="model-server" if slot == "a" else "model-server-b",
        command=command + (["--version", version] if version else []),
        health_url=f"http://127.0.0.1:{port}/ping",
        run_dir=config.run_dir,
        env={"MLFLOW_TRACKING_URI": config.tracking_uri, "PYTHONPATH": str(PROJECT)},
        start_timeout_s=180.0,
    )


def follower(config: StackConfig) -> Service:
    """Watches the registry and moves the served model to each new Production version."""
    return Service(
        name="follower",
        command=[
            str(BIN / "python"),
            "-m",
            "scripts.follow_production",
            "--interval",
            str(config.follow_interval_s),
        ],
        health_url=None,
        run_dir=config.run_dir,
        env=config.as_env() | {"PYTHONPATH": str(PROJECT)},
        start_timeout_s=5.0,
    )


def active_slot(config: StackConfig) -> dict[str, str | None]:
    """Which model-server slot nginx sends /predict to, and the version it serves."""
    try:
        return json.loads((config.run_dir / "model-server.active").read_text())
    except (FileNotFoundError, ValueError):
        return {"slot": "a", "version": None}


def set_active_slot(config: StackConfig, slot: str, version: str | None) -> None:
    target = config.run_dir / "model-server.active"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps({"slot": slot, "version": version}))
    temporary.replace(target)  # atomic: a reader sees the old or the new state, never half


def reload_nginx(config: StackConfig) -> None:
    """Re-render the configuration and reload nginx gracefully: old workers finish the requests
    they hold, new ones use the new upstream. No request is dropped."""
    conf = write_nginx_config(config)
    subprocess.run(
        [
            _find_nginx() or "nginx",
            "-p",
            str(config.run_dir / "nginx"),
            "-c",
            str(conf),
            "-s",
            "reload",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def nginx(config: StackConfig) -> Service:
    prefix = config.run_dir / "nginx"
    return Service(
        name="nginx",
        command=[
            _find_nginx() or "nginx",
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        health_url=f"{config.web_url}/",
        run_dir=config.run_dir,
        start_timeout_s=20.0,
    )


def _find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


def write_nginx_config(config: StackConfig) -> Path:
    """Render the one nginx template for this stack: upstream 127.0.0.1, files in the run dir."""
    prefix = config.run_dir / "nginx"
    for folder in (prefix / "runtime", prefix / "logs", config.run_dir / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    if _find_nginx() is None:
        raise RuntimeError(
            "nginx is not installed: run `make system-deps` (Debian packages nginx and "
            "libnginx-mod-http-js)"
        )
    values = dict(nginx_config.DEFAULTS)
    values.update({k: v for k, v in os.environ.items() if k.startswith("FLORISENSE_NGINX_")})
    values = {k.removeprefix("FLORISENSE_NGINX_"): v for k, v in values.items()}
    values.update(
        # Workers run as whoever started the stack, so they can read the clone wherever it
        # lives (a root-owned 0700 home included); compose uses the image's `nginx` user.
        WORKER_USER=getpass.getuser(),
        MODEL_SERVER=f"127.0.0.1:{config.slot_port(str(active_slot(config)['slot']))}",
        LISTEN=f"127.0.0.1:{config.web_port}",
        RUNTIME_DIR=str(prefix / "runtime"),
        LOG_DIR=str(config.run_dir / "logs"),
        HTML_DIR=str(PROJECT / "nginx" / "html"),
        NJS_DIR=str(PROJECT / "nginx" / "njs"),
    )
    if not Path(values["NJS_MODULE"]).is_file():
        raise RuntimeError(
            f"nginx's njs module is missing ({values['NJS_MODULE']}): run `make system-deps` "
            "or apt-get install libnginx-mod-http-js"
        )
    target = prefix / "nginx.conf"
    target.write_text(nginx_config.render(values))
    return target


def require_production_version(config: StackConfig) -> str:
    """The Production version number, or a RuntimeError that says what to do."""
    from florisense_model.serving import production_version

    try:
        # OSError: its /health check, made before the MLflow client (which retries for minutes).
        version = production_version(config.tracking_uri)
    except OSError as exc:
        raise RuntimeError(
            f"the MLflow tracking server at {config.tracking_uri} is not answering: start it "
            "with `make up` (or python -m scripts.stack up --only mlflow)"
        ) from exc
    except Exception as exc:
        raise RuntimeError(
            f"cannot ask the registry at {config.tracking_uri} for a Production model: "
            f"{str(exc).splitlines()[0][:200]}"
        ) from exc
    if version is None:
        raise RuntimeError(NO_MODEL_MESSAGE)
    return version


def running_pid(service: Service) -> int | None:
    """The pid from the service's pid file if that process is still alive (not a zombie)."""
    try:
        pid = int(service.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None
    return None if state == "Z" else pid


def _reap(pid: int) -> None:
    """Collect the exit status of a service this process started (a test, `make` runs a new
    process each time): otherwise it stays a zombie and looks alive."""
    with contextlib.suppress(ChildProcessError):  # not our child: its parent or init reaps it
        os.waitpid(pid, os.WNOHANG)


def healthy(url: str, any_status: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return any_status and exc.code < 500
    except OSError:
        return False


def is_healthy(service: Service) -> bool:
    if service.health_url is None:
        return running_pid(service) is not None
    return healthy(service.health_url, service.any_status_is_healthy)


def start(service: Service) -> str:
    """Start the service unless it already runs; wait until its health URL answers."""
    if running_pid(service) is not None and is_healthy(service):
        return f"{service.name}: already running ({service.health_url})"
    if is_healthy(service):
        raise RuntimeError(
            f"{service.name}: something not started by this stack already answers at "
            f"{service.health_url}; stop it or choose another port"
        )
    stop(service)  # a stale process from an earlier failed start
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    env = (
        os.environ
        | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        | service.env
    )
    if not service.keeps_secrets:
        env = {k: v for k, v in env.items() if k not in SERVER_SECRET_NAMES}
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            cwd=service.run_dir,
        )
    service.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    while time.monotonic() - started < service.start_timeout_s:
        if process.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise RuntimeError(
                f"{service.name}: exited with code {process.returncode}; see {service.log_file}"
            )
        if service.health_url is None and time.monotonic() - started > 1.0:
            return f"{service.name}: running (pid {process.pid})"
        if service.health_url is not None and is_healthy(service):
            return (
                f"{service.name}: up in {time.monotonic() - started:.1f} s ({service.health_url})"
            )
        time.sleep(0.3)
    stop(service)
    raise RuntimeError(
        f"{service.name}: not healthy after {service.start_timeout_s:.0f} s; see {service.log_file}"
    )


def stop(service: Service, timeout_s: float = 20.0) -> str:
    """Stop the process group the pid file names (the service and its workers)."""
    pid = running_pid(service)
    if pid is None:
        service.pid_file.unlink(missing_ok=True)
        return f"{service.name}: not running"
    terminate_group(pid, timeout_s)
    service.pid_file.unlink(missing_ok=True)
    return f"{service.name}: stopped"


def terminate_group(pgid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM a process group (a server and its workers), SIGKILL what is left after the
    timeout; reaps the leader if this process started it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pgid):
        _reap(pgid)
        time.sleep(0.2)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    _reap(pgid)


def process_group(pgid: int) -> dict[int, str]:
    """pid -> state ("R", "S", "Z", ...) of every process in a process group, read from /proc."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                members[int(stat.parent.name)] = fields[0]
        except (OSError, IndexError, ValueError):
            continue
    return members


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: a service started by a
    process that outlives it (a test run, the follower) stays one until that process reaps it."""
    return any(state != "Z" for state in process_group(pgid).values())


def services(config: StackConfig) -> list[Service]:
    """In start order; `down` stops them in reverse. Slot b is started only by the follower."""
    return [
        s3_server(config),
        tracking_server(config),
        model_server(config, "a"),
        model_server(config, "b"),
        nginx(config),
        follower(config),
    ]


NO_MODEL_MESSAGE = (
    f"no Production version of '{REGISTERED_MODEL_NAME}' in the registry yet. Train one: "
    "FLORISENSE_DATA_DIR=/path/to/photos make train (or make demo), then make up again"
)


def up(config: StackConfig, only: set[str] | None = None) -> Iterator[str]:
    """Start the services in order, reporting each as it comes up; the model server only once
    a Production model exists (RuntimeError otherwise, with what is already up left running)."""
    (config.run_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    for service in services(config):
        if (only and service.name not in only) or service.name == "model-server-b":
            continue
        if service.name == "model-server":
            yield from _start_model_server(config)
            continue
        if service.name == "nginx":
            write_nginx_config(config)
        yield start(service)
        if service.name == "s3":
            yield ensure_bucket(config)


def _start_model_server(config: StackConfig) -> Iterator[str]:
    """Keep the active slot if it runs; else serve Production in slot a and record its version."""
    active = active_slot(config)
    current = model_server(config, str(active["slot"]))
    if running_pid(current) is not None and is_healthy(current):
        yield f"{current.name}: already running ({current.health_url})"
        return
    version = require_production_version(config)
    yield start(model_server(config, "a"))
    set_active_slot(config, "a", version)
    if is_healthy(nginx(config)):
        reload_nginx(config)  # it may still point at the other slot (graceful: drops nothing)


def down(config: StackConfig) -> list[str]:
    return [stop(service) for service in reversed(services(config))]
