"""nginx for the no-Docker stack: render the one template (nginx/nginx.conf.template) the way the
nginx image's envsubst does, and reload nginx gracefully when the model-server slot changes."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from pathlib import Path

from florisense_model.stack import monitoring
from florisense_model.stack.settings import PROJECT, StackConfig
from florisense_model.stack.slots import active_slot, other_slot

TEMPLATE = PROJECT / "nginx" / "nginx.conf.template"
# Only ${UPPER_CASE} names are replaced, so nginx's own $variables pass through untouched.
_NAME = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# Defaults shared by both stacks; each can be overridden from the environment (.env).
DEFAULTS = {
    "NJS_MODULE": "/usr/lib/nginx/modules/ngx_http_js_module.so",
    "MAX_BODY_SIZE": "32m",
    "RATE_LIMIT": "20r/s",
    "RATE_BURST": "40",
    "CONN_LIMIT": "16",
    "PREDICT_TIMEOUT": "60s",
    "BODY_TIMEOUT": "20s",
}


def render(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """The template with every ${NAME} replaced; a missing value is an error, never empty."""
    text = template.read_text(encoding="utf-8")
    missing = sorted({name for name in _NAME.findall(text) if name not in values})
    if missing:
        raise KeyError(f"nginx template variables without a value: {', '.join(missing)}")
    return _NAME.sub(lambda match: values[match.group(1)], text)


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


def system_resolver() -> str:
    """The first name server of /etc/resolv.conf (nginx needs one named; this stack's upstreams
    are addresses, so it is never asked)."""
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            if line.startswith("nameserver"):
                address = line.split()[1]
                return f"[{address}]" if ":" in address else address
    except (OSError, IndexError):
        pass
    return "127.0.0.1"


def prefix(config: StackConfig) -> Path:
    return config.run_dir / "nginx"


def write_config(config: StackConfig) -> Path:
    """Render the template for this stack: upstream = the active slot on 127.0.0.1, files in
    the run directory."""
    for folder in (prefix(config) / "runtime", config.run_dir / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    if find_nginx() is None:
        raise RuntimeError(
            "nginx is not installed: run `make system-deps` (Debian packages nginx and "
            "libnginx-mod-http-js)"
        )
    active = str(active_slot(config)["slot"])
    values = dict(DEFAULTS)
    values.update({k: v for k, v in os.environ.items() if k.startswith("FLORISENSE_NGINX_")})
    values = {k.removeprefix("FLORISENSE_NGINX_"): v for k, v in values.items()}
    values.update(
        # Workers run as whoever started the stack, so they can read the clone wherever it
        # lives (a root-owned 0700 home included); compose uses the image's `nginx` user.
        WORKER_USER=getpass.getuser(),
        MODEL_SERVER=f"127.0.0.1:{config.slot_port(active)}",
        MODEL_SERVER_STANDBY=f"127.0.0.1:{config.slot_port(other_slot(active))}",
        # Both slots are on 127.0.0.1: nothing to re-resolve (Debian's nginx 1.22 has no
        # `resolve` either); the follower repoints nginx with a graceful reload instead.
        RESOLVER=system_resolver(),
        RESOLVE="",
        LISTEN=f"127.0.0.1:{config.web_port}",
        METRICS_LISTEN=f"127.0.0.1:{config.nginx_metrics_port}",
        RUNTIME_DIR=str(prefix(config) / "runtime"),
        ACCESS_LOG=str(config.run_dir / "logs" / "nginx-access.log"),
        METRICS_LOG=str(monitoring.nginx_metrics_log(config)),
        ERROR_LOG=str(config.run_dir / "logs" / "nginx-error.log"),
        HTML_DIR=str(PROJECT / "nginx" / "html"),
        NJS_DIR=str(PROJECT / "nginx" / "njs"),
    )
    if not Path(values["NJS_MODULE"]).is_file():
        raise RuntimeError(
            f"nginx's njs module is missing ({values['NJS_MODULE']}): run `make system-deps` "
            "or apt-get install libnginx-mod-http-js"
        )
    target = prefix(config) / "nginx.conf"
    target.write_text(render(values))
    return target


def command(config: StackConfig) -> list[str]:
    """nginx in the foreground, with its configuration and every file in the run directory."""
    conf = prefix(config) / "nginx.conf"
    return [
        find_nginx() or "nginx",
        "-p",
        str(prefix(config)),
        "-c",
        str(conf),
        "-g",
        "daemon off;",
    ]


def reload(config: StackConfig) -> None:
    """Re-render the configuration and reload nginx gracefully: old workers finish the requests
    they hold, new ones use the new upstream. No request is dropped."""
    conf = write_config(config)
    subprocess.run(
        [find_nginx() or "nginx", "-p", str(prefix(config)), "-c", str(conf), "-s", "reload"],
        check=True,
        capture_output=True,
        timeout=30,
    )
