"""`docker compose up` for real, on a real Docker engine (`make compose-test`): our images built
from docker/*.Dockerfile, the third-party ones replaced by local stand-ins (docker/standins/),
real photos. The tests run in file order on one stack and write their timings to
test-artifacts/compose-timings.json."""

from __future__ import annotations

import base64
import collections
import json
import os
import re
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from florisense_model import registry
from florisense_model.perf.retraining import post_alert
from florisense_model.photos import class_folders
from florisense_model.pipeline.manifest import DATASET_DIGEST_TAG
from florisense_model.pipeline.prefect_api import PrefectAPI
from florisense_model.stack.settings import free_port
from tests.support import metrics
from tests.support.compose import (
    Compose,
    image_size_mb,
    services_run_here,
    tag_override,
    wait_for,
)
from tests.support.http import post_json, records, request
from tests.support.images import make_dataset, require_env_path
from tests.support.mlflow_runs import SMALL, mlflow_run, summary_of
from tests.support.project import ARTIFACTS, ROOT

pytestmark = pytest.mark.compose
PROJECT = "florisense-test"
TIMINGS: dict[str, object] = {}
SECRETS = {
    "S3_ACCESS_KEY": "florisense-ci",
    "S3_SECRET_KEY": "s3-secret-for-the-compose-test",
    # '@', '%' and '/' used to corrupt the database URI: the password now travels in PGPASSWORD.
    "POSTGRES_PASSWORD": "p@ss%40w/rd",
    "PREFECT_API_AUTH_STRING": "florisense:prefect-login-for-the-test",
    "PREFECT_DB_PASSWORD": "pr@fect%db/pass",
}
# Each retraining in compose trains the tests' tiny model, with the weights mounted in /weights.
TINY = {
    name: value
    for name, value in (pair.split("=", 1) for pair in SMALL[1::2])
    if name != "base_weights"
}


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """The stack, built and up with real photos; removed with its volumes afterwards."""
    photos = require_env_path("FLORISENSE_DATA_DIR")
    weights = require_env_path("FLORISENSE_BASE_WEIGHTS")
    folder = tmp_path_factory.mktemp("compose")
    published = ("WEB", "MLFLOW", "S3_CONSOLE", "PROMETHEUS", "GRAFANA", "PREFECT", "ALERTMANAGER")
    ports = {name: free_port() for name in published}
    values = SECRETS | {
        "GRAFANA_ADMIN_PASSWORD": "grafana-password-for-the-test",
        "FLORISENSE_DATA_DIR": str(photos),
        "FLORISENSE_WEIGHTS_DIR": str(weights.parent),
        "FLORISENSE_FOLLOW_INTERVAL": "2",
        "FLORISENSE_NGINX_RATE_LIMIT": "1000r/s",  # the promotion test is one busy client
        "FLORISENSE_NGINX_RATE_BURST": "1000",
        "FLORISENSE_RETRAIN_PARAMS": json.dumps(TINY),
        # The host-side trainings of these tests are not from the bucket, so the watcher would see
        # its 400 photos as new and retrain meanwhile; its trigger is tested without Docker.
        "FLORISENSE_RETRAIN_MIN_NEW": "100000",
        **{f"FLORISENSE_{name}_PORT": str(port) for name, port in ports.items()},
    }
    env_file = folder / "test.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    stack = Compose(PROJECT, env_file, tag_override(folder / "override.yml"))
    stack.web = f"http://127.0.0.1:{ports['WEB']}"
    stack.tracking_uri = f"http://127.0.0.1:{ports['MLFLOW']}"
    stack.prometheus = f"http://127.0.0.1:{ports['PROMETHEUS']}"
    stack.prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    stack.alertmanager = f"http://127.0.0.1:{ports['ALERTMANAGER']}"
    stack.run("down", "-v", "--remove-orphans", check=False)
    try:
        started = time.monotonic()
        stack.run("build", timeout=1800)
        TIMINGS["build_s"] = round(time.monotonic() - started, 1)
        TIMINGS["image_size_mb"] = {
            image: image_size_mb(image)
            for image in (
                "florisense/project:local",
                "florisense/model-server:local",
                "florisense/mlflow:local",
            )
        }
        started = time.monotonic()
        stack.run("up", "-d", *services_run_here(), timeout=600)
        TIMINGS["page_up_s"] = round(wait_for(f"{stack.web}/", 120) + 0, 1)
        wait_for(f"{stack.web}/healthz", 1200)  # the first training run happens meanwhile
        TIMINGS["up_to_first_predict_s"] = round(time.monotonic() - started, 1)
        yield stack
    finally:
        for service in (
            "minio",
            "create-bucket",
            "postgres",
            "mlflow",
            "trainer",
            "model-server",
            "web",
            "mtail",
            "prometheus",
            "alertmanager",
            "create-prefect-database",
            "prefect-server",
            "flows",
            "alert-receiver",
        ):
            (ARTIFACTS / "compose").mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "compose" / f"{service}.log").write_text(stack.logs(service))
        stack.run("down", "-v", "--remove-orphans", check=False)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compose-timings.json").write_text(json.dumps(TIMINGS, indent=2))
        print("\ncompose timings:", json.dumps(TIMINGS, indent=2))


def client(compose: Compose) -> MlflowClient:
    return MlflowClient(tracking_uri=compose.tracking_uri, registry_uri=compose.tracking_uri)


def real_photos(count: int) -> list[Path]:
    folders = class_folders(os.environ["FLORISENSE_DATA_DIR"])
    per_class = count // len(folders)
    return [path for files in folders.values() for path in files[:per_class]]


def bucket_files(compose: Compose) -> list[str]:
    result = compose.run("exec", "-T", "minio", "find", "/data/mlflow-artifacts", "-type", "f")
    return result.stdout.split()


def test_the_trainer_registers_a_version_whose_files_are_in_the_bucket(compose):
    version = registry.current_production(client(compose))
    assert version is not None and version.version == "1"
    trainer = compose.logs("trainer")
    assert "no Production version of florisense yet: training the first one" in trainer
    files = bucket_files(compose)
    model_files = [f for f in files if "/models/" in f]
    for name in ("MLmodel", "artifacts/model.keras", "code/florisense_model/model/pyfunc.py"):
        assert any(f.endswith(name) for f in model_files), name
    assert any(f"/{version.run_id}/artifacts/dataset/report.json" in f for f in files)


def compose_dataset_digest(compose: Compose) -> str:
    listing = compose.run("exec", "-T", "flows", "florisense", "data", "list").stdout
    return re.search(r"^dataset ([0-9a-f]{32}) at s3://florisense-data/labelled/", listing, re.M)[1]


def test_the_first_version_is_trained_from_the_seeded_data_bucket(compose):
    version = client(compose).get_model_version("florisense", "1")
    run = client(compose).get_run(version.run_id)
    assert run.data.tags[DATASET_DIGEST_TAG] == compose_dataset_digest(compose)
    added = re.findall(r"(\w+): (\d+) photos added$", compose.logs("trainer"), re.M)
    assert {label for label, _ in added} == set(class_folders(os.environ["FLORISENSE_DATA_DIR"]))
    listing = compose.run("exec", "-T", "flows", "florisense", "data", "list").stdout
    total = sum(int(count) for _, count in added)
    assert re.search(rf"^ +total +{total}$", listing, re.M), listing


def test_the_retraining_loop_runs_on_prefect_in_compose(compose):
    """Prefect's server on PostgreSQL, the deployments served from the project image, a drift
    alert through Alertmanager, then a person's forced retraining to a registered version."""
    api = PrefectAPI(f"{compose.prefect}/api", SECRETS["PREFECT_API_AUTH_STRING"])
    assert api.deployment_id("retrain/florisense") and api.deployment_id("watch-photos/florisense")
    assert request(f"{compose.prefect}/api/flows/filter", "POST", b"{}")[0] == 401  # login on
    database = compose.run(
        "exec", "-T", "postgres", "psql", "-U", "mlflow", "-d", "prefect", "-tAc",
        "SELECT count(*) FROM deployment",
    ).stdout  # fmt: skip
    assert int(database.strip()) >= 2  # in PostgreSQL, not in a SQLite file

    # A drift alert starts a run, which skips: Production (version 1, the trainer's) was trained
    # on these photos.
    since = datetime.now(UTC) - timedelta(seconds=1)
    assert post_alert(compose.alertmanager, "ConfidenceDrift") == 200
    deadline = time.monotonic() + 180  # Alertmanager's group_wait is 30 s in compose
    runs: list[dict] = []
    while not runs and time.monotonic() < deadline:
        runs = api.flow_runs("retrain", since)
        time.sleep(2)
    assert runs, compose.logs("alert-receiver")[-2000:]
    drift = api.wait(runs[0]["id"], timeout_s=300)
    assert drift["parameters"]["reason"] == "drift alert ConfidenceDrift"
    assert drift["state"]["type"] == "COMPLETED"
    assert "skipped: dataset" in drift["state"]["message"], drift["state"]

    before = {v.version for v in client(compose).search_model_versions("name='florisense'")}
    started = time.monotonic()
    result = compose.run(
        "exec", "-T", "flows", "florisense", "retrain", "--force", "--wait", timeout=1500
    )
    TIMINGS["compose_forced_retraining_s"] = round(time.monotonic() - started, 1)
    assert "completed: version" in result.stdout, result.stdout + result.stderr
    (new,) = [
        v
        for v in client(compose).search_model_versions("name='florisense'")
        if v.version not in before
    ]
    assert new.tags["gate.decision"] in ("promoted", "rejected")
    run = client(compose).get_run(new.run_id)
    assert run.data.tags[DATASET_DIGEST_TAG] == compose_dataset_digest(compose)
    assert run.data.tags["prefect.flow_run_id"]


def test_the_model_server_image_holds_no_tensorflow(compose):
    found = subprocess.run(
        ["docker", "run", "--rm", "florisense/model-server:local", "python", "-c",
         "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'onnxruntime')"
         " if u.find_spec(m)])"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert found.strip() == "['onnxruntime']"


def test_predict_answers_real_photos_exactly_as_the_in_process_pyfunc(compose):
    photos = real_photos(8)
    images = [base64.b64encode(p.read_bytes()).decode() for p in photos]
    status, _, payload = post_json(f"{compose.web}/predict", records(*images))
    assert status == 200, payload
    mlflow.set_tracking_uri(compose.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/florisense/1")
    expected = model.predict(pd.DataFrame({"image": images})).to_dict("records")
    for served, local in zip(payload["predictions"], expected, strict=True):
        assert served["label"] == local["label"] and served["error"] is None
        for label, probability in local["probabilities"].items():
            assert served["probabilities"][label] == pytest.approx(probability, abs=1e-6)


def test_the_page_loads_and_nginx_logs_to_the_container_output(compose):
    status, headers, page = request(f"{compose.web}/")
    assert status == 200 and "text/html" in headers["content-type"]
    assert "Pissenlit" in page or "pissenlit" in page.lower()
    assert request(f"{compose.web}/healthz")[0] == 200
    assert '"POST /predict HTTP/1.1" 200' in compose.logs("web")  # `docker compose logs web`


def test_the_api_documentation_is_served(compose):
    """/docs needs `make docs-ui` (run by `make setup`) before `docker compose up`: nginx/html is
    mounted read-only."""
    status, headers, spec = request(f"{compose.web}/openapi.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert spec["openapi"].startswith("3.1.")
    assert request(f"{compose.web}/docs")[0] == 200
    assert request(f"{compose.web}/docs/swagger-ui/swagger-ui-bundle.js")[0] == 200
    assert request(f"{compose.web}/predict")[1]["allow"] == "POST"


def test_prometheus_scrapes_every_part_and_counts_what_predict_answered(compose):
    """Prometheus (stand-in: Debian's 2.42) scrapes mtail, the model server's active slot, the
    tracking server and itself; the S3 target is MinIO's metrics path, which the rclone stand-in
    does not have. Grafana is not started here (no image, no stand-in)."""
    photos = real_photos(4)
    images = [base64.b64encode(p.read_bytes()).decode() for p in photos]
    status, _, payload = post_json(f"{compose.web}/predict", records(*images, "not base64"))
    assert status == 200, payload
    labels = collections.Counter(row["label"] for row in payload["predictions"] if row["label"])

    def scraped() -> dict | None:
        targets = metrics.api(compose.prometheus, "targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        up = {job for job, state in health.items() if state == "up"}
        return health if up >= {"prometheus", "nginx", "nginx-log", "model", "mlflow"} else None

    health = metrics.wait_until(scraped, timeout_s=120, what="every target up")
    assert health["s3"] == "down"  # the stand-in's difference (rclone has no MinIO metrics)
    version = registry.current_production(client(compose)).version
    info = metrics.wait_until(
        lambda: metrics.query(compose.prometheus, "florisense_model_info"), what="model info"
    )
    assert {series["metric"]["version"] for series in info} == {version}
    for label, count in labels.items():

        def counted(label: str = label, count: int = count) -> list:
            # A scrape from before these answers shows the counter at its earlier value: the
            # next one (15 s later in compose) must reach the count.
            query = f'sum(florisense_predictions_total{{label="{label}"}})'
            found = metrics.query(compose.prometheus, query)
            return [series for series in found if float(series["value"][1]) >= count]

        metrics.wait_until(counted, timeout_s=60, what=f"{count} {label} answers in Prometheus")
    door = metrics.wait_until(
        lambda: metrics.query(
            compose.prometheus,
            'sum(florisense_http_requests_total{route="/predict",status="200"})',
        ),
        what="nginx's requests in Prometheus",
    )
    assert float(door[0]["value"][1]) >= 1
    rules = metrics.api(compose.prometheus, "rules")["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {"TargetDown", "ConfidenceDrift"}


def kubernetes_web_pod() -> dict:
    """The web pod of deploy/kubernetes/base, as Kustomize renders it."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", "deploy/kubernetes/base"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    deployment = next(
        o for o in yaml.safe_load_all(rendered)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "web"
    )  # fmt: skip
    return deployment["spec"]["template"]["spec"]


def test_the_kubernetes_web_image_serves_as_non_root_on_a_read_only_root(compose):
    """docker/web.Dockerfile run the way the Kubernetes pod runs it (user 101, read-only root,
    no capabilities, its writable folders on tmpfs, its environment), on the compose network:
    only the model server's address and the resolver change (no cluster DNS here)."""
    subprocess.run(
        ["docker", "build", "-q", "-f", "docker/web.Dockerfile", "-t", "florisense/web:local", "."],
        cwd=ROOT, check=True, capture_output=True, env=os.environ | {"DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    pod = kubernetes_web_pod()
    [container] = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    env |= {"MODEL_SERVER": "model-server:5001", "MODEL_SERVER_STANDBY": "model-server:5002",
            "RESOLVER": "127.0.0.11"}  # fmt: skip
    user = pod["securityContext"]["runAsUser"]
    port = free_port()
    command = ["docker", "run", "-d", "--rm", "--name", "florisense-test-k8s-web",
               "--network", compose.network(), "--user", f"{user}:{user}", "--read-only",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-p", f"127.0.0.1:{port}:8080"]  # fmt: skip
    for mount in container["volumeMounts"]:  # emptyDirs: writable by the pod's user
        command += ["--tmpfs", f"{mount['mountPath']}:uid={user},gid={user}"]
    for name, value in env.items():
        command += ["-e", f"{name}={value}"]
    container_id = subprocess.run(
        [*command, "florisense/web:local", *container["args"]], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    try:
        try:
            wait_for(f"http://127.0.0.1:{port}/", 60)
        except AssertionError:
            logs = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True)
            raise AssertionError(
                f"the web container did not serve: {logs.stderr[-2000:]}"
            ) from None
        image = base64.b64encode(real_photos(2)[0].read_bytes()).decode()
        status, _, payload = post_json(f"http://127.0.0.1:{port}/predict", records(image))
        assert status == 200 and payload["predictions"][0]["label"], payload
        logs = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True)
        output = logs.stdout + logs.stderr
        assert '"POST /predict HTTP/1.1" 200' in output  # the access log reached /dev/stdout
        assert "Permission denied" not in output and "[emerg]" not in output, output[-2000:]
    finally:
        subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)


def test_a_promotion_reaches_predict_by_itself_with_no_failed_request(compose, tmp_path):
    # An ML engineer trains a new version from their own machine against the compose stack.
    photos = make_dataset(tmp_path / "photos", per_class=20)
    trained = mlflow_run(
        compose.tracking_uri, "-P", f"data_dir={photos}", *SMALL, "-P", "promote=skip"
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    new = summary_of(trained)
    image = base64.b64encode(real_photos(2)[0].read_bytes()).decode()
    statuses: list[int] = []
    switched_at: list[float] = []
    stop = threading.Event()

    def ask_without_pause() -> None:
        while not stop.is_set():
            status, _, payload = post_json(f"{compose.web}/predict", records(image), timeout=60)
            statuses.append(status)
            if status == 200 and payload["predictions"][0]["run_id"] == new["run_id"]:
                switched_at.append(time.monotonic())

    asking = threading.Thread(target=ask_without_pause)
    asking.start()
    try:
        time.sleep(2)
        promoted_at = time.monotonic()
        registry.promote(client(compose), new["version"])
        deadline = time.monotonic() + 300
        while not switched_at and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(8)  # the old slot stops after the switch: keep asking meanwhile
    finally:
        stop.set()
        asking.join()
    assert switched_at, "the new version never reached /predict"
    TIMINGS["promotion_switch"] = {
        "promotion_to_new_answers_s": round(switched_at[0] - promoted_at, 1),
        "requests": len(statuses),
        "failed": sum(1 for s in statuses if s != 200),
    }
    assert set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"
    assert "slot a stops in" in compose.logs("model-server")


def test_a_recreated_model_server_is_found_again(compose):
    before = compose.address("model-server")
    compose.run("rm", "--stop", "--force", "model-server")
    # Other containers take the lowest free addresses until one holds the freed one, so the new
    # model server gets a different address (nginx must look it up again).
    squatters: list[str] = []
    try:
        while before not in [address_of(c) for c in squatters] and len(squatters) < 10:
            squatters.append(
                subprocess.run(
                    ["docker", "run", "-d", "--rm", "--network", compose.network(),
                     "florisense-standin/debian:bookworm", "sleep", "600"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()
            )  # fmt: skip
        compose.run("up", "-d", "--no-deps", "model-server")
        started = time.monotonic()
        compose.wait_healthy("model-server")
        after = compose.address("model-server")
        assert after != before, (before, after)
        status, _, payload = post_json(f"{compose.web}/predict", records(_one_photo()))
        assert status == 200 and payload["predictions"][0]["label"], payload
        TIMINGS["recreated_model_server_answers_s"] = round(time.monotonic() - started, 1)
    finally:
        subprocess.run(["docker", "rm", "-f", *squatters], capture_output=True)


def address_of(container: str) -> str:
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    result = subprocess.run(
        ["docker", "inspect", "-f", template, container], capture_output=True, text=True
    )
    return result.stdout.strip()


def _one_photo() -> str:
    return base64.b64encode(real_photos(2)[0].read_bytes()).decode()


def test_credentials_reach_only_the_services_that_need_them(compose):
    holders: dict[str, set[str]] = {name: set() for name in SECRETS}
    for service in (
        "minio",
        "create-bucket",
        "postgres",
        "mlflow",
        "trainer",
        "model-server",
        "web",
        "create-prefect-database",
        "prefect-server",
        "flows",
        "alert-receiver",
        "alertmanager",
    ):
        environment = compose.environment(service)
        for name, value in SECRETS.items():
            if value in environment.values():
                holders[name].add(service)
    assert holders == {
        "S3_ACCESS_KEY": {"minio", "create-bucket", "mlflow", "trainer", "flows"},
        "S3_SECRET_KEY": {"minio", "create-bucket", "mlflow", "trainer", "flows"},
        "POSTGRES_PASSWORD": {"postgres", "mlflow", "create-prefect-database"},
        "PREFECT_API_AUTH_STRING": {"prefect-server", "flows", "alert-receiver"},
        "PREFECT_DB_PASSWORD": {"create-prefect-database", "prefect-server"},
    }


def test_mlflow_login_works_in_compose_and_keeps_its_users_in_a_volume(compose):
    """FLORISENSE_MLFLOW_AUTH=true (README "Security"): anonymous requests refused, the admin
    served, the users' database in the mlflow-auth volume. Then back to the default."""
    password = "an-admin-password-for-the-test"
    auth = {
        "FLORISENSE_MLFLOW_AUTH": "true",
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-csrf-signing-key-for-the-test",
    }
    api = f"{compose.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        compose.run("up", "-d", "--no-deps", "--wait", "mlflow", env=auth, timeout=300)
        assert request(api)[0] == 401
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        assert request(api, headers={"Authorization": f"Basic {token}"})[0] == 200
        listing = compose.run("exec", "-T", "mlflow", "ls", "/var/lib/mlflow-auth").stdout
        assert "basic_auth.db" in listing
    finally:
        compose.run("up", "-d", "--no-deps", "--wait", "mlflow", timeout=300)
    assert request(api)[0] == 200


def registry_state(compose: Compose) -> dict:
    mlflow_client = client(compose)
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    return {
        "runs": sorted(r.info.run_id for r in mlflow_client.search_runs(experiments)),
        "versions": sorted(
            (v.version, v.current_stage, v.run_id)
            for v in mlflow_client.search_model_versions("name='florisense'")
        ),
        "aliases": mlflow_client.get_registered_model("florisense").aliases,
    }


def test_down_then_up_keeps_everything_and_down_v_removes_it(compose):
    state, objects = registry_state(compose), sorted(bucket_files(compose))
    compose.run("down")
    started = time.monotonic()
    compose.run("up", "-d", *services_run_here(), timeout=900)  # the trainer runs and exits
    compose.run(
        "up", "-d", "--wait", "--wait-timeout", "600", *services_run_here(long_running=True),
        timeout=900,
    )  # fmt: skip
    wait_for(f"{compose.web}/healthz", 300)
    TIMINGS["restart_up_to_healthy_s"] = round(time.monotonic() - started, 1)
    assert registry_state(compose) == state
    assert sorted(bucket_files(compose)) == objects
    assert "is Production: not training" in compose.logs("trainer")  # no retraining on `up`
    assert len(compose.volumes()) == 8  # grafana-data: Grafana does not run here
    compose.run("down", "-v")
    assert compose.volumes() == []
