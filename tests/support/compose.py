"""`docker compose` on a real Docker engine, for tests/compose: the project's compose file as
shipped, plus the one allowed difference on machines without a registry (an override that names
the digest-pinned images by tag, which the local stand-ins carry)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.support.project import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
# Services whose image no registry here serves and that have no stand-in (docker/standins/
# build.sh says why): the compose test starts every other one.
NOT_RUN_HERE = ("grafana",)


def services_run_here(long_running: bool = False) -> list[str]:
    """Every service that can run here; `long_running`: not the one-shots (restart "no"), which
    `up --wait` would count as failed once they exit."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return [
        name
        for name, service in services.items()
        if name not in NOT_RUN_HERE and not (long_running and service.get("restart") == "no")
    ]


def tag_override(path: Path) -> Path:
    """An override file that changes nothing but `image:` for images pinned by digest."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    override = {
        name: {"image": service["image"].split("@")[0]}
        for name, service in services.items()
        if "@sha256:" in service.get("image", "")
    }
    path.write_text(yaml.safe_dump({"services": override}))
    return path


class Compose:
    """One compose project (its own name, env file and override), driven through the CLI."""

    def __init__(self, project: str, env_file: Path, override: Path) -> None:
        self.project, self.env_file, self.override = project, env_file, override

    def command(self, *args: str) -> list[str]:
        return [
            "docker", "compose", "-p", self.project, "-f", str(COMPOSE_FILE),
            "-f", str(self.override), "--env-file", str(self.env_file), *args,
        ]  # fmt: skip

    def run(
        self, *args: str, timeout: float = 600, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """`docker compose ARGS`; `env` adds to the environment (it wins over the env file)."""
        result = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=os.environ | (env or {}),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: {result.stderr[-3000:]}")
        return result

    def logs(self, service: str) -> str:
        result = self.run("logs", "--no-color", service, check=False)
        return result.stdout + result.stderr

    def container(self, service: str) -> str:
        return self.run("ps", "-a", "-q", service).stdout.strip()

    def inspect(self, service: str) -> dict:
        output = subprocess.run(
            ["docker", "inspect", self.container(service)], capture_output=True, text=True
        ).stdout
        return json.loads(output)[0]

    def environment(self, service: str) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.inspect(service)["Config"]["Env"])

    def address(self, service: str) -> str:
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def network(self) -> str:
        return f"{self.project}_default"

    def volumes(self) -> list[str]:
        output = subprocess.run(
            [
                "docker",
                "volume",
                "ls",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
            ],
            capture_output=True,
            text=True,
        ).stdout
        return sorted(output.split())

    def wait_healthy(self, service: str, timeout_s: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            state = self.inspect(service)["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                return time.monotonic() - started
            time.sleep(1)
        raise AssertionError(
            f"{service} not healthy within {timeout_s:.0f} s:\n{self.logs(service)[-3000:]}"
        )


def image_size_mb(image: str) -> float:
    output = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
    ).stdout
    return round(int(output.strip()) / 1e6, 1)


def wait_for(url: str, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
