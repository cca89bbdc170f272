"""deploy/kubernetes/ is right by construction: the base, every overlay and the components
together are rendered by the real Kustomize (`kubectl kustomize`), every object is checked
against the Kubernetes API schema offline (kubernetes-validate, strict: an unknown field
fails), and the things that must agree are checked on what Kustomize makes of the files: ports,
probes, Service selectors, NetworkPolicies, the follower's and the Prefect worker's rights, the
nginx template's variables, the Secrets the operator creates. The work pool's base job template
is checked as the Job it makes, by hand and by prefect-kubernetes itself, and registered on a
real Prefect server with the worker's and the registration Job's own commands. No cluster runs
here: nothing is applied."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from florisense_model.pins import pinned_versions
from florisense_model.stack.nginx import TEMPLATE
from florisense_model.stack.settings import ARTIFACT_BUCKET, DATA_BUCKET, ORCHESTRATION_ENV
from tests.support.project import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE_FILE = ROOT / "docker-compose.yml"
WEB_DOCKERFILE = ROOT / "docker" / "web.Dockerfile"
KSERVE_FILE = KUBERNETES / "kserve" / "inferenceservice.yaml"
JOB_FILES = sorted((KUBERNETES / "jobs").glob("*.yaml"))
# The work pool's base job template, and the SQL that makes Prefect's database (compose's too).
JOB_TEMPLATE_FILE = KUBERNETES / "base" / "prefect" / "base-job-template.json"
PREFECT_SQL_FILE = KUBERNETES / "base" / "prefect" / "prefect-database.sql"
DEPLOYMENTS_MODULE = ROOT / "florisense_model" / "pipeline" / "deployments.py"
NAMESPACE = "florisense"
WORK_POOL = "florisense"
# The schemas checked against: the kubectl here (1.32) and the newest kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.32", "1.37")
# Every Secret a pod may read, with its keys. The operator creates them (README, "Kubernetes");
# nothing here ships a value.
SECRETS = {
    "florisense-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "florisense-postgres": {"password"},
    "florisense-mlflow-auth": {"admin-password", "flask-secret-key"},  # component mlflow-auth
    "florisense-prefect": {"auth-string", "database-password"},
}
PROJECT_IMAGE = "florisense/project:local"
OUR_IMAGES = {
    "florisense/mlflow:local", "florisense/model-server:local", "florisense/web:local",
    PROJECT_IMAGE,
}  # fmt: skip
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
# Who may open a connection to whom (NetworkPolicy), as (peer, port) per workload. "*" is
# anyone; a peer in another namespace is written "ns:<its namespaceSelector>/<podSelector>".
EXPECTED_INGRESS = {
    "web": {("*", 8080)},
    "model-server": {("web", 5001), ("ns:{}/app.kubernetes.io/name=prometheus", 9101)},
    "mlflow": {("model-server", 5050), ("follower", 5050), ("trainer", 5050), ("flow-run", 5050)},
    "minio": {("mlflow", 9000), ("create-bucket", 9000), ("trainer", 9000), ("flow-run", 9000)},
    "postgres": {("mlflow", 5432), ("prefect-server", 5432)},
    "prefect-server": {
        ("prefect-worker", 4200), ("register-deployments", 4200), ("alert-receiver", 4200),
        ("flow-run", 4200),
    },
    "alert-receiver": {("ns:{}/app.kubernetes.io/name=alertmanager", 9095)},
    "follower": set(),
    "create-bucket": set(),
    "trainer": set(),
    "prefect-worker": set(),
    "register-deployments": set(),
    "flow-run": set(),  # the worker's Jobs, from the work pool's template
}  # fmt: skip
# What prefect-kubernetes's worker and its observer call (base/prefect-worker.yaml).
WORKER_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]  # fmt: skip
# Prefect's validator wants these in the pod spec (its default template has them there); they
# are not PodSpec fields: the API server drops them with a warning, the strict schema refuses them.
PREFECT_POD_FIELDS = {"parallelism": 1, "completions": 1}
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def kustomize(directory: Path) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlay_dirs() -> list[Path]:
    return sorted(path.parent for path in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))


def component_dirs() -> list[Path]:
    return sorted(path.parent for path in (KUBERNETES / "components").glob("*/kustomization.yaml"))


@pytest.fixture(scope="module", autouse=True)
def kubectl() -> None:
    assert shutil.which("kubectl"), "kubectl (with its built-in kustomize) is not installed"


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return kustomize(KUBERNETES / "base")


@pytest.fixture(scope="module")
def combined(tmp_path_factory) -> list[dict]:
    """The base with every component at once: the components must compose."""
    folder = tmp_path_factory.mktemp("all-components")
    relative = os.path.relpath(KUBERNETES, folder)  # kustomize refuses absolute paths
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [f"{relative}/base"],
                "components": [f"{relative}/components/{c.name}" for c in component_dirs()],
            }
        )
    )
    return kustomize(folder)


@pytest.fixture(scope="module")
def renders(base, combined) -> dict[str, list[dict]]:
    """Every way this folder can be applied, by name."""
    found = {"base": base, "all-components": combined}
    for overlay in overlay_dirs():
        found[f"overlays/{overlay.name}"] = kustomize(overlay)
    return found


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads(JOB_TEMPLATE_FILE.read_text())


@pytest.fixture(scope="module")
def flow_run_job(template) -> dict:
    """A flow run's Job as the template makes it, with the variables' defaults (prefect-kubernetes's
    own rendering is checked below), without the two fields Prefect adds to the pod spec."""
    values = variable_defaults(template) | {
        "name": "flow-run",
        "image": PROJECT_IMAGE,
        "command": ["prefect", "flow-run", "execute"],
    }
    job = fill(template["job_configuration"]["job_manifest"], values)
    job["metadata"]["name"] = "flow-run"  # the worker sets generateName; a name for messages
    return without_prefect_pod_fields(job)


@pytest.fixture(scope="module")
def jobs(flow_run_job) -> list[dict]:
    """The Jobs applied beside the base: the files in jobs/, and a flow run of the work pool."""
    files = [doc for path in JOB_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [*files, flow_run_job]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict) -> dict:
    return doc["spec"]["template"]["metadata"].get("labels", {})


def workloads(docs: list[dict]) -> dict[str, dict]:
    """Deployments, StatefulSets and Jobs by their pods' app.kubernetes.io/name."""
    found = {}
    for doc in [d for d in docs if d["kind"] in WORKLOAD_KINDS]:
        name = pod_labels(doc)["app.kubernetes.io/name"]
        assert name not in found, name
        found[name] = doc
    return found


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def env_values(container: dict) -> dict[str, str]:
    return {name: item["value"] for name, item in env_of(container).items() if "value" in item}


def matches(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels form, or a Service's plain map) against labels."""
    assert "matchExpressions" not in selector, "only matchLabels selectors are used here"
    wanted = selector.get("matchLabels", selector)
    return all(labels.get(key) == value for key, value in wanted.items())


def container_port(container: dict, port: int | str) -> int | None:
    """The port number a probe or a Service targets (by number or by name), if declared."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return declared["containerPort"]
    return None


def variable_defaults(template: dict) -> dict:
    return {
        name: schema["default"]
        for name, schema in template["variables"]["properties"].items()
        if schema.get("default") is not None
    }


_MISSING = object()


def fill(node: object, values: dict) -> object:
    """Prefect's templating, for what the template uses: a string that is one placeholder becomes
    the variable's value, a placeholder within text its text; a key without a value is left out."""
    if isinstance(node, dict):
        filled = {key: fill(value, values) for key, value in node.items()}
        return {key: value for key, value in filled.items() if value is not _MISSING}
    if isinstance(node, list):
        return [fill(item, values) for item in node]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return values.get(whole.group(1), _MISSING)
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
    return node


def placeholders(node: object) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(node)))


def without_prefect_pod_fields(job: dict) -> dict:
    job = copy.deepcopy(job)
    spec = job["spec"]["template"]["spec"]
    assert {name: spec.pop(name, None) for name in PREFECT_POD_FIELDS} == PREFECT_POD_FIELDS
    return job


def walk(node: object, key: str) -> Iterator[dict]:
    """Every mapping stored under `key`, anywhere in a document."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, dict):
                yield value
            yield from walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


# --- rendering and schema ---------------------------------------------------------------------


def test_base_every_overlay_and_the_components_together_render(renders):
    assert {"overlays/external-s3", "overlays/minikube"} <= set(renders)
    assert {c.name for c in component_dirs()} == {"external-s3", "external-postgres", "mlflow-auth"}
    for name, docs in renders.items():
        assert docs, name
        kinds = {d["kind"] for d in docs}
        assert {"Namespace", "Deployment", "Service", "NetworkPolicy"} <= kinds, name


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(renders, jobs, version):
    checked = 0
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {path}: {error}")
            checked += 1
    assert checked > 50


def test_the_schema_check_is_strict(base):
    """A misspelt field fails: the check above would catch one in our files."""
    deployment = copy.deepcopy(find(base, "Deployment", "web"))
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, SCHEMA_VERSIONS[0], strict=True)


def test_everything_is_in_one_namespace_and_labelled(renders, base):
    namespace = find(base, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, docs in renders.items():
        for doc in docs:
            labels = doc["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/part-of") == "florisense", (name, doc["kind"])
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == NAMESPACE, (name, doc["kind"])
            if doc["kind"] in WORKLOAD_KINDS:
                template = pod_labels(doc)
                assert template.get("app.kubernetes.io/part-of") == "florisense", name
                assert template.get("app.kubernetes.io/name") == doc["metadata"]["name"], name
                assert template.get("app.kubernetes.io/component"), name


# --- secrets and configuration ------------------------------------------------------------------


def test_no_secret_is_shipped(renders, jobs):
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        assert not [d for d in docs if d["kind"] == "Secret"], name
        for doc in docs:
            text = yaml.safe_dump(doc)
            assert "stringData" not in text, (name, doc["metadata"]["name"])


def test_every_secret_reference_is_in_the_table_and_every_entry_is_used(renders, jobs):
    used: dict[str, set[str]] = {}
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        for doc in docs:
            for ref in walk(doc, "secretKeyRef"):
                assert ref["key"] in SECRETS.get(ref["name"], set()), (name, ref)
                used.setdefault(ref["name"], set()).add(ref["key"])
        # Nor any other way to read a Secret: a volume, envFrom.
        for workload in workloads(docs).values():
            volumes = pod_spec(workload).get("volumes", [])
            assert not [v for v in volumes if "secret" in v or "projected" in v], name
            for container in containers(workload):
                assert not [e for e in container.get("envFrom", []) if "secretRef" in e], name
    assert used == SECRETS


def test_every_config_reference_names_a_key_of_the_config_map(renders):
    for name, docs in renders.items():
        maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
        for doc in docs:
            for ref in walk(doc, "configMapKeyRef"):
                assert ref["key"] in maps.get(ref["name"], {}), (name, ref)


def test_every_variable_a_command_uses_is_set(renders, jobs):
    """Kubernetes leaves an undefined $(NAME) in a command as it is: each must be in env."""
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        for workload in workloads(docs).values():
            for container in containers(workload):
                words = container.get("command", []) + container.get("args", [])
                needed = set(re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(words)))
                assert needed <= set(env_of(container)), (name, container["name"], needed)


# --- pods: resources, security ------------------------------------------------------------------


def test_every_container_has_requests_and_limits(renders, jobs):
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        for workload in workloads(docs).values():
            for container in containers(workload):
                resources = container.get("resources", {})
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(part, {})), (
                        name,
                        container["name"],
                        part,
                    )


def test_nothing_runs_as_root(renders, jobs):
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        for workload in workloads(docs).values():
            spec = pod_spec(workload)
            context = spec["securityContext"]
            where = (name, workload["metadata"]["name"])
            assert context["runAsNonRoot"] is True, where
            assert isinstance(context["runAsUser"], int) and context["runAsUser"] > 0, where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            assert "hostNetwork" not in spec and "hostPID" not in spec, where
            for container in containers(workload):
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["capabilities"]["drop"] == ["ALL"], where
                assert "add" not in security["capabilities"], where
                assert security["readOnlyRootFilesystem"] is True, where
                assert "privileged" not in security and "runAsUser" not in security, where
                # Written files go to volumes: every container mounts a writable /tmp or more.
                assert container.get("volumeMounts"), where


def test_only_the_follower_and_the_prefect_worker_hold_a_kubernetes_api_token(renders, jobs):
    for name, docs in [*renders.items(), ("jobs", jobs)]:
        holders = {
            w["metadata"]["name"]
            for w in workloads(docs).values()
            if pod_spec(w).get("automountServiceAccountToken") is not False
        }
        assert holders == ({"follower", "prefect-worker"} if name != "jobs" else set()), name
        for account in [d for d in docs if d["kind"] == "ServiceAccount"]:
            assert account["automountServiceAccountToken"] is False  # mounted by its pod only


def test_images_are_ours_built_here_or_pinned_like_compose(renders, compose):
    base_images = {
        c["image"]: c.get("imagePullPolicy")
        for w in workloads(renders["base"]).values()
        for c in containers(w)
    }
    ours = {image for image in base_images if image.startswith("florisense/")}
    assert ours == OUR_IMAGES
    assert {base_images[image] for image in ours} == {"IfNotPresent"}
    minikube = [c for w in workloads(renders["overlays/minikube"]).values() for c in containers(w)]
    assert {c["imagePullPolicy"] for c in minikube if c["image"] in OUR_IMAGES} == {"Never"}
    # The flow runs' Jobs too: the pool's template cannot be patched, the registration can.
    (register,) = [c for c in minikube if c["name"] == "register"]
    assert register["command"][-2:] == ["--image-pull-policy", "Never"]
    third_party = set(base_images) - ours
    server = compose["prefect-server"]["image"]
    assert third_party == {
        *(compose[s]["image"] for s in ("minio", "create-bucket", "postgres")),
        server,
        f"{server}-kubernetes",  # the same official image, with prefect-kubernetes
    }
    # Prefect's version is the one .venv-orchestrate and the project image pin.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prefect = pinned_versions(project["optional-dependencies"]["orchestrate"])["prefect"]
    assert server == f"prefecthq/prefect:{prefect}-python3.11"
    assert compose["mlflow"]["image"] == "florisense/mlflow:local"
    assert compose["model-server"]["image"] == "florisense/model-server:local"
    assert compose["alert-receiver"]["image"] == PROJECT_IMAGE


# --- ports, probes, Services --------------------------------------------------------------------


def test_ports_are_compose_ports(base, compose):
    mlflow = " ".join(compose["mlflow"]["command"])
    prefect = " ".join(compose["prefect-server"]["command"])
    receiver = " ".join(compose["alert-receiver"]["command"])
    expected = {
        "mlflow": int(re.search(r"--port (\d+)", mlflow).group(1)),
        "model-server": int(compose["web"]["environment"]["MODEL_SERVER"].split(":")[1]),
        "web": int(compose["web"]["environment"]["LISTEN"]),
        "minio": int(compose["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"].split(":")[-1]),
        "postgres": int(re.search(r"@postgres:(\d+)/", mlflow).group(1)),
        "prefect-server": int(re.search(r"--port (\d+)", prefect).group(1)),
        "alert-receiver": int(re.search(r"--port (\d+)", receiver).group(1)),
    }
    assert expected == {
        "mlflow": 5050,
        "model-server": 5001,
        "web": 8080,
        "minio": 9000,
        "postgres": 5432,
        "prefect-server": 4200,
        "alert-receiver": 9095,
    }
    for service, port in expected.items():
        ports = find(base, "Service", service)["spec"]["ports"]
        assert ports[0]["port"] == port, service
        workload = workloads(base)[service]
        assert container_port(pod_spec(workload)["containers"][0], port) == port, service
    assert "9101" in str(find(base, "Service", "model-server")["spec"]["ports"])


def test_probes_use_declared_ports_and_the_right_paths(renders):
    for name, docs in renders.items():
        for workload in workloads(docs).values():
            for container in containers(workload):
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    get = container.get(probe, {}).get("httpGet")
                    if get:
                        port = container_port(container, get["port"])
                        assert port is not None, (name, container["name"], probe)
    paths = {
        name: {
            probe: c[probe]["httpGet"]["path"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe")
            if "httpGet" in c.get(probe, {})
        }
        for name, w in workloads(renders["base"]).items()
        for c in pod_spec(w)["containers"]
    }
    assert paths["model-server"] == dict.fromkeys(
        ("startupProbe", "readinessProbe", "livenessProbe"), "/ping"
    )
    # The page is up before any model: never /healthz, which asks the model server.
    assert paths["web"] == {"readinessProbe": "/", "livenessProbe": "/"}
    assert set(paths["mlflow"].values()) == {"/health"}
    assert paths["minio"] == {
        "readinessProbe": "/minio/health/ready",
        "livenessProbe": "/minio/health/live",
    }
    # Prefect answers these two without its login; /api/ready also asks the database.
    assert paths["prefect-server"] == {
        "startupProbe": "/api/health",
        "readinessProbe": "/api/ready",
        "livenessProbe": "/api/health",
    }
    assert paths["prefect-worker"] == {"livenessProbe": "/health"}  # --with-healthcheck
    assert paths["alert-receiver"] == {"readinessProbe": "/healthz", "livenessProbe": "/healthz"}
    server = pod_spec(workloads(renders["base"])["model-server"])["containers"][0]
    startup = server["startupProbe"]
    # The first start waits for a first trained version: at least 20 minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60


def test_every_service_selects_one_workload_and_targets_its_ports(renders):
    for name, docs in renders.items():
        for service in [d for d in docs if d["kind"] == "Service"]:
            selector = service["spec"]["selector"]
            selected = [w for w in workloads(docs).values() if matches(selector, pod_labels(w))]
            where = (name, service["metadata"]["name"])
            assert [w["metadata"]["name"] for w in selected] == [service["metadata"]["name"]]
            workload = selected[0]
            assert matches(workload["spec"]["selector"], pod_labels(workload)), where
            main = pod_spec(workload)["containers"][0]
            for port in service["spec"]["ports"]:
                target = container_port(main, port.get("targetPort", port["port"]))
                assert target == port["port"], (where, port)
        for workload in workloads(docs).values():
            if workload["kind"] == "StatefulSet":
                governing = find(docs, "Service", workload["spec"]["serviceName"])
                assert governing["spec"]["clusterIP"] == "None"


def test_the_ingress_reaches_the_web_service_with_room_for_photos(base):
    ingress = find(base, "Ingress", "web")
    rule = ingress["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert (rule["http"]["paths"][0]["path"], rule["http"]["paths"][0]["pathType"]) == (
        "/",
        "Prefix",
    )
    assert ingress["spec"]["ingressClassName"] == "nginx"
    service = find(base, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    web = env_values(pod_spec(workloads(base)["web"])["containers"][0])
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == web["MAX_BODY_SIZE"]
    timeout = int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    assert timeout > int(web["PREDICT_TIMEOUT"].rstrip("s"))


# --- the model server and its follower ----------------------------------------------------------


def test_model_server_rolls_one_pod_at_a_time_and_scales_on_cpu(base):
    deployment = find(base, "Deployment", "model-server")
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    # The HPA owns the replica count; the follower owns the version: neither is in the file.
    assert "replicas" not in deployment["spec"]
    container = pod_spec(deployment)["containers"][0]
    assert "FLORISENSE_MODEL_VERSION" not in env_of(container)
    assert container["command"] == [
        "python", "-m", "florisense_model.stack.serve", "--host", "0.0.0.0", "--port", "5001",
    ]  # fmt: skip
    values = env_values(container)
    assert values["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] == "false"
    assert values["FLORISENSE_METRICS_PORT"] == "9101"
    assert container_port(container, "metrics") == 9101
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == values["FLORISENSE_METRICS_PORT"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert not [k for k in values if k.startswith("AWS_")]  # no S3 credential: the proxy

    hpa = find(base, "HorizontalPodAutoscaler", "model-server")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "model-server",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in container["resources"]["requests"]  # what utilisation is measured against

    pdb = find(base, "PodDisruptionBudget", "model-server")
    selector = pdb["spec"]["selector"]
    selected = [name for name, w in workloads(base).items() if matches(selector, pod_labels(w))]
    assert selected == ["model-server"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def assert_bound_to_its_account(docs: list[dict], name: str) -> None:
    """The Role `name` is bound, in the namespace, to the ServiceAccount of the same name only."""
    binding = find(docs, "RoleBinding", name)
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    assert binding["roleRef"] == role
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]


def test_the_follower_may_only_read_and_patch_the_model_server_deployment(renders):
    for name, docs in renders.items():
        role = find(docs, "Role", "florisense-follower")
        assert role["rules"] == [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": ["model-server"],
                "verbs": ["get", "patch"],
            }
        ], name
        assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        assert_bound_to_its_account(docs, "florisense-follower")
        follower = find(docs, "Deployment", "follower")
        spec = pod_spec(follower)
        assert spec["serviceAccountName"] == "florisense-follower"
        assert follower["spec"]["replicas"] == 1
        assert follower["spec"]["strategy"] == {"type": "Recreate"}
        container = spec["containers"][0]
        assert container["command"][-1] == "--kubernetes"
        values = env_values(container)
        target = find(docs, "Deployment", values["FLORISENSE_K8S_DEPLOYMENT"])
        assert [values["FLORISENSE_K8S_DEPLOYMENT"]] == role["rules"][0]["resourceNames"]
        names = [c["name"] for c in pod_spec(target)["containers"]]
        assert values["FLORISENSE_K8S_CONTAINER"] in names
        assert container["image"] == pod_spec(target)["containers"][0]["image"]
        # Both names: MLflow's client reads one, the stack's settings (settings.py) the other.
        variables = env_of(container)
        tracking = {
            variables[n]["valueFrom"]["configMapKeyRef"]["key"]
            for n in ("MLFLOW_TRACKING_URI", "FLORISENSE_TRACKING_URI")
        }
        assert tracking == {"MLFLOW_TRACKING_URI"}


# --- the tracking server ------------------------------------------------------------------------


def test_tracking_server_matches_compose_and_keeps_the_password_out_of_the_uri(base, compose):
    container = pod_spec(find(base, "Deployment", "mlflow"))["containers"][0]
    args = container["args"]
    config = find(base, "ConfigMap", "florisense-config")["data"]
    uri = args[args.index("--backend-store-uri") + 1]
    assert uri == "postgresql+psycopg2://$(PGUSER)@$(PGHOST):$(PGPORT)/$(PGDATABASE)"
    assert env_of(container)["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "florisense-postgres",
        "key": "password",
    }
    rendered = re.sub(r"\$\((\w+)\)", lambda m: config[m.group(1)], uri)
    compose_command = " ".join(compose["mlflow"]["command"])
    assert f"--backend-store-uri {rendered}" in compose_command
    destination = config[args[args.index("--artifacts-destination") + 1][2:-1]]
    assert f"--artifacts-destination {destination} --serve-artifacts" in compose_command
    assert args[args.index("--workers") + 1] == "1"
    assert "--expose-prometheus" in args
    hosts = config[args[args.index("--allowed-hosts") + 1][2:-1]].split(",")
    assert {"mlflow", "mlflow:*", "localhost:*", "127.0.0.1:*"} <= set(hosts)
    assert f"mlflow.{NAMESPACE}.svc.cluster.local:*" in hosts
    assert (
        config["MLFLOW_S3_ENDPOINT_URL"]
        == compose["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"]
    )
    assert (
        config["MLFLOW_TRACKING_URI"]
        == compose["model-server"]["environment"]["MLFLOW_TRACKING_URI"]
    )


def test_the_external_components_remove_what_they_replace(renders):
    external_s3 = renders["overlays/external-s3"]
    assert "minio" not in yaml.safe_dump_all(external_s3)
    assert [d["metadata"]["name"] for d in external_s3 if d["kind"] == "Job"] == [
        "register-deployments"
    ]
    config = find(external_s3, "ConfigMap", "florisense-config")["data"]
    assert config["MLFLOW_S3_ENDPOINT_URL"].startswith("https://")
    assert config["FLORISENSE_S3_URL"] == config["MLFLOW_S3_ENDPOINT_URL"]  # the data bucket
    mlflow = pod_spec(find(external_s3, "Deployment", "mlflow"))["containers"][0]
    assert "AWS_DEFAULT_REGION" in env_of(mlflow)
    combined = renders["all-components"]
    assert not [d for d in combined if d["metadata"]["name"] in ("postgres", "minio")]
    assert find(combined, "ConfigMap", "florisense-config")["data"]["PGHOST"] != "postgres"
    mlflow = find(combined, "Deployment", "mlflow")
    assert mlflow["spec"]["strategy"] == {"type": "Recreate"}  # its users' volume is RWO
    args = pod_spec(mlflow)["containers"][0]["args"]
    assert args[args.index("--app-name") + 1] == "basic-auth"


# --- network policies -------------------------------------------------------------------------


def admitted(docs: list[dict], target: dict) -> set[tuple[str, int]]:
    """(peer, port) pairs the NetworkPolicies let open a connection to `target`'s pods."""
    peers_of = workloads(docs)
    found: set[tuple[str, int]] = set()
    for policy in [d for d in docs if d["kind"] == "NetworkPolicy"]:
        if not matches(policy["spec"]["podSelector"], pod_labels(target)):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {port["port"] for port in rule.get("ports", [])}
            assert ports, f"{policy['metadata']['name']}: a rule without ports admits all"
            names: set[str] = set()
            for peer in rule.get("from", [{"*": True}]):
                if "*" in peer:
                    names.add("*")
                elif "ipBlock" in peer:
                    names.add("ipBlock")
                elif "namespaceSelector" in peer:
                    selector = peer["podSelector"]["matchLabels"]
                    names.add(
                        f"ns:{peer['namespaceSelector'] or '{}'}/"
                        + ",".join(f"{k}={v}" for k, v in selector.items())
                    )
                else:
                    names |= {
                        name
                        for name, workload in peers_of.items()
                        if matches(peer["podSelector"], pod_labels(workload))
                    }
            found |= {(name, port) for name in names for port in ports}
    return found


def test_network_policies_admit_exactly_the_expected_peers(renders, jobs, base):
    for name, docs in renders.items():
        deny = find(docs, "NetworkPolicy", "default-deny-ingress")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}, name
    docs = base + jobs  # the training Job runs beside the base
    for workload_name, workload in workloads(docs).items():
        allowed = admitted(docs, workload)
        assert allowed == EXPECTED_INGRESS[workload_name], workload_name
        for _, port in allowed:
            assert container_port(pod_spec(workload)["containers"][0], port) == port


def test_only_the_front_talks_to_the_model_server(base):
    """The web pods, and nothing else in the cluster, may send /invocations."""
    server = workloads(base)["model-server"]
    callers = {peer for peer, port in admitted(base, server) if port == 5001}
    assert callers == {"web"}
    web = workloads(base)["web"]
    policy = find(base, "NetworkPolicy", "model-server")
    peer = policy["spec"]["ingress"][0]["from"]
    assert peer == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}]
    assert matches(peer[0]["podSelector"], pod_labels(web))


# --- the web front ------------------------------------------------------------------------------


def test_web_sets_every_nginx_template_variable_for_a_non_root_nginx(base, compose):
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", TEMPLATE.read_text()))
    web = find(base, "Deployment", "web")
    container = pod_spec(web)["containers"][0]
    values = env_values(container)
    assert names <= set(values), names - set(values)
    # Compose sets the same names (its own test checks them there).
    assert names <= set(compose["web"]["environment"])
    # nginx's resolver knows no search domains: the Service's full name and port.
    service = find(base, "Service", "model-server")
    full = f"model-server.{NAMESPACE}.svc.cluster.local:{service['spec']['ports'][0]['port']}"
    assert values["MODEL_SERVER"] == values["MODEL_SERVER_STANDBY"] == full
    assert values["RESOLVER"] == "kube-dns.kube-system.svc.cluster.local"
    assert values["RESOLVE"] == "resolve"
    assert container_port(container, int(values["LISTEN"])) == 8080
    output = values["NGINX_ENVSUBST_OUTPUT_DIR"]
    assert container["args"] == ["nginx", "-c", f"{output}/nginx.conf", "-g", "daemon off;"]
    # Everything nginx writes is on an emptyDir (the root file system is read-only).
    volumes = {v["name"]: v for v in pod_spec(web)["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert values["METRICS_LOG"] == "/dev/null"  # no mtail in the cluster: nothing grows
    for folder in (output, values["RUNTIME_DIR"]):
        assert "emptyDir" in mounts[folder], folder
    assert pod_spec(web)["securityContext"]["runAsUser"] == 101


def test_the_web_image_holds_what_the_pod_serves(base, compose):
    dockerfile = WEB_DOCKERFILE.read_text()
    assert re.search(r"^FROM (\S+)$", dockerfile, re.MULTILINE).group(1) == compose["web"]["image"]
    copies = dict(re.findall(r"^COPY (\S+) (\S+)$", dockerfile, re.MULTILINE))
    values = env_values(pod_spec(find(base, "Deployment", "web"))["containers"][0])
    assert copies == {
        "nginx/nginx.conf.template": "/etc/nginx/templates/nginx.conf.template",
        "nginx/html": values["HTML_DIR"],
        "nginx/njs": values["NJS_DIR"],
    }
    for source in copies:
        assert (ROOT / source).exists(), source
    assert re.search(r"^USER 101$", dockerfile, re.MULTILINE)
    # The build context sends nginx/ (only its node_modules are left out).
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "nginx" not in ignored and "nginx/html" not in ignored


# --- the retraining loop: Prefect's server, the work pool and its flow runs ---------------------

# Run in .venv-orchestrate (Prefect and prefect-kubernetes, pinned): a flow run's Job as the
# worker makes it, from the template and a deployment's job variables, with the worker's own
# settings in the environment; and what its observer watches. Prints JSON.
PREFECT_KUBERNETES_SCRIPT = """
import asyncio, json, sys, uuid
from datetime import datetime, timezone
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.flows import load_flow_from_entrypoint
from prefect_kubernetes.settings import KubernetesSettings
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

given = json.load(sys.stdin)

async def main():
    job = await KubernetesWorkerJobConfiguration.from_template_and_values(
        given["template"], given["variables"]
    )
    flow = Flow(id=uuid.uuid4(), name=given["flow"])
    deployment = DeploymentResponse(
        id=uuid.uuid4(), name="florisense", flow_id=flow.id, updated=datetime.now(timezone.utc)
    )
    run = FlowRun(id=uuid.uuid4(), name="a-flow-run", flow_id=flow.id, deployment_id=deployment.id)
    job.prepare_for_flow_run(run, deployment, flow, worker_name="prefect-worker")
    settings = KubernetesSettings()
    worker = settings.worker
    if worker.api_auth_string_secret_name and worker.api_auth_string_secret_key:  # as _create_job
        await KubernetesWorker(work_pool_name="florisense")._replace_env_variable_with_secret(
            "PREFECT_API_AUTH_STRING", job,
            worker.api_auth_string_secret_name, worker.api_auth_string_secret_key,
        )
    loaded = given.get("entrypoint") and load_flow_from_entrypoint(given["entrypoint"]).name
    print(json.dumps({
        "manifest": job.job_manifest,
        "observer_namespaces": sorted(settings.observer.namespaces),
        "flow": loaded,
    }))

asyncio.run(main())
"""
FAKE_SECRET = "fake-secret-value"


def generated_config_map(docs: list[dict], name: str) -> dict:
    """A ConfigMap of Kustomize's configMapGenerator: its name ends in a hash of its content."""
    found = [
        d
        for d in docs
        if d["kind"] == "ConfigMap"
        and re.fullmatch(rf"{name}-[a-z0-9]{{10}}", d["metadata"]["name"])
    ]
    assert len(found) == 1, name
    return found[0]


def mounted_file(docs: list[dict], workload: dict, container: dict, path: str) -> str:
    """The text a container reads at `path`, from the ConfigMap volume mounted at its folder."""
    folder, filename = path.rsplit("/", 1)
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == folder)
    name = volumes[mount["name"]]["configMap"]["name"]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
    return config_map["data"][filename]


def resolved_env(container: dict, config: dict[str, str]) -> dict[str, str]:
    """A container's environment as the kubelet would give it (Secrets: a fake value)."""
    env = {}
    for name, item in env_of(container).items():
        source = item.get("valueFrom", {})
        if "value" in item:
            env[name] = item["value"]
        elif "configMapKeyRef" in source:
            env[name] = config[source["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in source:
            env[name] = FAKE_SECRET
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[name] = NAMESPACE
        else:
            raise AssertionError(f"{container['name']}: {name}: {item}")
    return env


def quantity(value: str) -> float:
    units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30}
    unit = next((u for u in units if value.endswith(u)), "")
    return float(value.removesuffix(unit)) * units.get(unit, 1)


def watcher_job_variables() -> dict[str, str]:
    """deployments.py's WATCHER_JOB_VARIABLES (read from the source: Prefect is not in .venv)."""
    tree = ast.parse(DEPLOYMENTS_MODULE.read_text())
    node = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and [t.id for t in n.targets] == ["WATCHER_JOB_VARIABLES"]
    )
    return ast.literal_eval(node.value)


def flow_run_jobs(template: dict, variables: dict, worker_env: dict, **given) -> dict:
    """PREFECT_KUBERNETES_SCRIPT's answer, in a folder of its own (Prefect reads a .env there)."""
    python = ORCHESTRATION_ENV / "bin" / "python"
    assert python.is_file(), f"no {python}: `make orchestration-env`"
    found = subprocess.run(
        [str(python), "-c", "import prefect_kubernetes"], capture_output=True, text=True
    )
    assert found.returncode == 0, (
        f"prefect-kubernetes is not installed in {ORCHESTRATION_ENV} (pyproject.toml's "
        "`orchestrate` extra pins it; the Makefile's orchestration-env must name it)"
    )
    with tempfile.TemporaryDirectory(prefix="florisense-worker-") as home:
        result = subprocess.run(
            [str(python), "-c", PREFECT_KUBERNETES_SCRIPT],
            input=json.dumps({"template": template, "variables": variables, **given}),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=home,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": home, **worker_env},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_prefect_server_has_a_database_of_its_own_and_no_password_in_a_url(renders, base, compose):
    deployment = find(base, "Deployment", "prefect-server")
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    env, values = env_of(container), env_values(container)
    assert container["args"] == compose["prefect-server"]["command"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two servers at once
    # The database in parts, the password from the Secret: no connection URL, nothing in a URL.
    assert values["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg"
    assert not [n for n in env if "CONNECTION_URL" in n]
    assert not [v for v in values.values() if re.search(r"://[^/]*@", v)]
    for name, key in (("HOST", "PGHOST"), ("PORT", "PGPORT")):
        ref = env[f"PREFECT_SERVER_DATABASE_{name}"]["valueFrom"]["configMapKeyRef"]
        assert ref == {"name": "florisense-config", "key": key}
    secret = {"name": "florisense-prefect", "key": "database-password"}
    assert env["PREFECT_SERVER_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
    for name in ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "florisense-prefect", "key": "auth-string"}, name
    # The CLI in the pod (`kubectl exec deploy/prefect-server -- prefect ...`) reaches this server.
    assert values["PREFECT_API_URL"] == f"http://127.0.0.1:{container_port(container, 'http')}/api"
    # Offline, as the no-Docker stack and compose.
    assert values["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert values["PREFECT_SERVER_UI_V2_ENABLED"] == "false"
    for variable in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_SERVER_UI_V2_ENABLED"):
        assert compose["prefect-server"]["environment"][variable] == values[variable]
    # What Prefect writes is on the emptyDir (its UI's files, its home).
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = [(m["mountPath"], volumes[m["name"]]) for m in container["volumeMounts"]]
    for variable in ("PREFECT_SERVER_UI_STATIC_DIRECTORY", "PREFECT_HOME", "HOME"):
        assert [v for path, v in mounts if values[variable].startswith(path) and "emptyDir" in v]

    # Its role and database: created by the init container, as the admin, with the SQL that
    # compose runs too; the role and database the server logs in with are the ones it creates.
    init = spec["initContainers"][0]
    statefulset = find(base, "StatefulSet", "postgres")
    assert init["image"] == pod_spec(statefulset)["containers"][0]["image"]
    script = " ".join(init["args"])
    path = re.search(r"psql -v ON_ERROR_STOP=1 -q -f (\S+)$", script).group(1)
    sql = mounted_file(base, deployment, init, path)
    assert sql == PREFECT_SQL_FILE.read_text()

    mount = f"./{PREFECT_SQL_FILE.relative_to(ROOT)}:/prefect-database.sql:ro"
    assert mount in compose["create-prefect-database"]["volumes"]  # the same file in compose
    assert "\\getenv prefect_password PREFECT_DB_PASSWORD" in sql  # never on a command line
    assert re.findall(r"CREATE ROLE (\w+) LOGIN", sql) == [values["PREFECT_SERVER_DATABASE_USER"]]
    database = re.search(r"CREATE DATABASE (\w+) OWNER (\w+)", sql).groups()
    assert database == (
        values["PREFECT_SERVER_DATABASE_NAME"],
        values["PREFECT_SERVER_DATABASE_USER"],
    )
    assert values["PREFECT_SERVER_DATABASE_USER"] != "mlflow"
    init_env = env_of(init)
    assert init_env["PGUSER"]["valueFrom"]["configMapKeyRef"]["key"] == "PGUSER"  # the admin
    assert init_env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "florisense-postgres",
        "key": "password",
    }
    assert init_env["PREFECT_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret

    # A database of your own (external-postgres): no init container (its owner may not create
    # roles), TLS.
    combined = pod_spec(find(renders["all-components"], "Deployment", "prefect-server"))
    assert not combined.get("initContainers")
    assert "database-sql" not in {v["name"] for v in combined["volumes"]}
    tls = env_values(combined["containers"][0])
    assert tls["PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED"] == "true"


def test_the_prefect_worker_may_only_run_the_flow_runs_jobs(renders, template):
    for name, docs in renders.items():
        role = find(docs, "Role", "florisense-prefect-worker")
        assert role["rules"] == WORKER_RULES, name
        assert_bound_to_its_account(docs, "florisense-prefect-worker")
        worker = find(docs, "Deployment", "prefect-worker")
        spec = pod_spec(worker)
        assert spec["serviceAccountName"] == "florisense-prefect-worker"
        container = spec["containers"][0]
        args = container["args"]
        assert args[:3] == ["prefect", "worker", "start"]
        for option, value in (("--pool", WORK_POOL), ("--type", "kubernetes")):
            assert args[args.index(option) + 1] == value
        assert args[args.index("--install-policy") + 1] == "never"  # read-only root, offline
        values = env_values(container)
        # The flow runs get the login as a reference to the Secret, never its value.
        reference = (
            values["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"],
            values["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"],
        )
        auth = env_of(container)["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]
        assert (auth["name"], auth["key"]) == reference
        # Its observer watches its own namespace, where the template starts the Jobs.
        namespaces = env_of(container)["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"]
        assert namespaces["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert template["job_configuration"]["namespace"] == worker["metadata"]["namespace"]
        assert values["PREFECT_WORKER_WEBSERVER_PORT"] == str(container_port(container, "health"))
        # The init container writes the template from the ConfigMap into the pool.
        init = spec["initContainers"][0]
        assert init["image"] == container["image"]
        assert init["args"][:4] == ["prefect", "work-pool", "create", WORK_POOL]
        assert init["args"][init["args"].index("--type") + 1] == "kubernetes"
        assert "--overwrite" in init["args"]
        path = init["args"][init["args"].index("--base-job-template") + 1]
        assert mounted_file(docs, worker, init, path) == JOB_TEMPLATE_FILE.read_text()
        generated_config_map(docs, "prefect-base-job-template")


def test_the_deployments_are_registered_on_the_pool_as_jobs_of_the_project_image(renders, compose):
    for name, docs in renders.items():
        job = find(docs, "Job", "register-deployments")
        container = pod_spec(job)["containers"][0]
        command = container["command"]
        assert command[:3] == [
            "/opt/orchestrate/bin/python",
            "-m",
            "florisense_model.pipeline.deployments",
        ]
        assert command[command.index("--work-pool") + 1] == WORK_POOL
        # Each flow run's Job runs the image this Job runs (Kustomize rewrites only the latter).
        assert command[command.index("--image") + 1] == container["image"] == PROJECT_IMAGE, name
        config = find(docs, "ConfigMap", "florisense-config")["data"]
        service = find(docs, "Service", "prefect-server")
        assert config["PREFECT_API_URL"] == (
            f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/api"
        )
        for client in (
            container,
            pod_spec(find(docs, "Deployment", "alert-receiver"))["containers"][0],
        ):
            env = env_of(client)
            assert (
                env["PREFECT_API_URL"]["valueFrom"]["configMapKeyRef"]["key"] == "PREFECT_API_URL"
            )
            assert env["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"] == {
                "name": "florisense-prefect",
                "key": "auth-string",
            }
    receiver = pod_spec(find(renders["base"], "Deployment", "alert-receiver"))["containers"][0]
    assert receiver["command"] == compose["alert-receiver"]["command"]
    assert receiver["image"] == PROJECT_IMAGE


def test_create_bucket_makes_the_artifact_and_the_data_buckets(base):
    script = " ".join(pod_spec(find(base, "Job", "create-bucket"))["containers"][0]["args"])
    made = re.findall(r"mc mb --ignore-existing florisense/([\w-]+)", script)
    assert made == [ARTIFACT_BUCKET, DATA_BUCKET]


def test_the_base_job_template_makes_the_train_jobs_pod(template, flow_run_job, jobs, base):
    configuration = template["job_configuration"]
    variables = template["variables"]["properties"]
    # Every placeholder is a declared variable, and every variable is used.
    assert placeholders(configuration) == set(variables)
    assert configuration["namespace"] == flow_run_job["metadata"]["namespace"] == NAMESPACE
    # Strictly a Job of the schema, once Prefect's two pod-spec fields are left out (the API
    # server drops them); with them, the strict check refuses exactly those.
    for version in SCHEMA_VERSIONS:
        kubernetes_validate.validate(flow_run_job, version, strict=True)
    raw = copy.deepcopy(flow_run_job)
    raw["spec"]["template"]["spec"] |= PREFECT_POD_FIELDS
    with pytest.raises(kubernetes_validate.ValidationError, match=r"parallelism|completions"):
        kubernetes_validate.validate(raw, SCHEMA_VERSIONS[0], strict=True)

    train = find(jobs, "Job", "train-first-version")
    pod, train_pod = pod_spec(flow_run_job), pod_spec(train)
    for field in ("securityContext", "volumes", "automountServiceAccountToken", "restartPolicy"):
        assert pod[field] == train_pod[field], field
    container, trainer = pod["containers"][0], train_pod["containers"][0]
    assert container["name"] == "prefect-job"  # Prefect's validator requires it
    assert "command" not in container  # the image has no entrypoint: args are the command
    for field in ("securityContext", "resources", "volumeMounts", "image", "imagePullPolicy"):
        assert container[field] == trainer[field], field
    assert flow_run_job["spec"]["backoffLimit"] == 0  # Prefect retries, not Kubernetes
    assert flow_run_job["spec"]["ttlSecondsAfterFinished"] > 0
    assert flow_run_job["spec"]["activeDeadlineSeconds"] > 0  # a stuck run frees its slot
    # The NetworkPolicies' labels are on the pod; Prefect would replace app.kubernetes.io/name
    # and part-of with its own unless the labels variable sets them.
    labels = pod_labels(flow_run_job)
    assert variables["labels"]["default"].items() <= labels.items()
    assert {
        "florisense.io/mlflow-client",
        "florisense.io/s3-client",
        "florisense.io/prefect-client",
    } <= {key for key, value in labels.items() if value == "true"}
    # Prefect's settings come from the worker; a secret only as a reference; what the flows read.
    env = env_of(container)
    assert not [n for n in env if n.startswith("PREFECT_")]
    config = find(base, "ConfigMap", "florisense-config")["data"]
    for variable in ("MLFLOW_TRACKING_URI", "FLORISENSE_S3_URL"):
        assert env[variable]["valueFrom"]["configMapKeyRef"]["key"] in config
    assert config["MLFLOW_TRACKING_URI"] == env_values(trainer)["MLFLOW_TRACKING_URI"]
    assert env["FLORISENSE_S3_URL"] == env_of(trainer)["FLORISENSE_S3_URL"]
    for variable in ("S3_ACCESS_KEY", "S3_SECRET_KEY"):
        assert env[variable] == env_of(trainer)[variable]
        assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "florisense-s3"
    # With the mlflow-auth component, the flow runs log in as admin; without it, no password.
    password = env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "florisense-mlflow-auth", "key": "admin-password", "optional": True}
    run_dir = env_values(container)["FLORISENSE_RUN_DIR"]
    assert [m for m in container["volumeMounts"] if run_dir.startswith(m["mountPath"] + "/")]
    # The watcher's smaller job only lowers the defaults.
    smaller = watcher_job_variables()
    assert set(smaller) == {"cpu_request", "cpu_limit", "memory_request", "memory_limit"}
    for name, value in smaller.items():
        assert 0 < quantity(value) <= quantity(variables[name]["default"]), name


def test_prefect_kubernetes_makes_the_jobs_the_network_policies_admit(base, template):
    worker = pod_spec(find(base, "Deployment", "prefect-worker"))["containers"][0]
    config = find(base, "ConfigMap", "florisense-config")["data"]
    worker_env = resolved_env(worker, config)
    for flow, variables in (
        ("retrain", {"image": PROJECT_IMAGE}),
        ("watch-photos", {"image": PROJECT_IMAGE, **watcher_job_variables()}),
    ):
        made = flow_run_jobs(template, variables, worker_env, flow=flow)
        assert made["observer_namespaces"] == [NAMESPACE]
        job = made["manifest"]
        assert FAKE_SECRET not in json.dumps(job), "a secret's value is written into the Job"
        job = without_prefect_pod_fields(job) | {"metadata": job["metadata"] | {"name": "flow-run"}}
        for version in SCHEMA_VERSIONS:
            kubernetes_validate.validate(job, version, strict=True)
        container = pod_spec(job)["containers"][0]
        env = env_of(container)
        assert env["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"] == {
            "name": "florisense-prefect",
            "key": "auth-string",
        }
        assert env["PREFECT_API_URL"]["value"] == config["PREFECT_API_URL"]
        assert env["S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "florisense-s3"
        assert container["args"] == ["prefect", "flow-run", "execute"]
        assert container["image"] == PROJECT_IMAGE
        expected = variable_defaults(template) | variables
        assert container["resources"] == {
            "requests": {"cpu": expected["cpu_request"], "memory": expected["memory_request"]},
            "limits": {"cpu": expected["cpu_limit"], "memory": expected["memory_limit"]},
        }
        # After Prefect's own labels, the pod still passes the policies of the three servers.
        assert pod_labels(job)["app.kubernetes.io/name"] == "flow-run"
        docs = [*base, job]
        for server, port in (("mlflow", 5050), ("minio", 9000), ("prefect-server", 4200)):
            assert ("flow-run", port) in admitted(docs, workloads(docs)[server]), server


@pytest.mark.integration
def test_the_worker_and_the_registration_job_commands_against_a_real_prefect_server(
    base, jobs, template, tmp_path
):
    """The worker's init container and register-deployments, their own commands run from
    .venv-orchestrate against a real Prefect server (the no-Docker stack's, on a free port): the
    pool holds the template, both deployments are on it with the serve() triggers and limits, and
    their flows load by module path from another working directory."""
    from florisense_model.pipeline.prefect_api import PrefectAPI
    from florisense_model.stack import lifecycle
    from florisense_model.stack.orchestration import prefect_client_env
    from tests.support.stack import free_port_config

    config = free_port_config(tmp_path)
    worker = find(base, "Deployment", "prefect-worker")
    init = pod_spec(worker)["initContainers"][0]
    register = pod_spec(find(base, "Job", "register-deployments"))["containers"][0]
    # The ConfigMap's file where the init container reads it.
    path = init["args"][init["args"].index("--base-job-template") + 1]
    local = tmp_path / "etc" / Path(path).name
    local.parent.mkdir()
    local.write_text(mounted_file(base, worker, init, path))
    elsewhere = tmp_path / "workdir"  # neither the repository nor the image's /app
    elsewhere.mkdir()
    try:
        list(lifecycle.up(config, only={"prefect"}))
        client = prefect_client_env(config)
        env = {"PATH": os.environ["PATH"], **client}
        create = [str(ORCHESTRATION_ENV / "bin" / "prefect"), *init["args"][1:]]
        create[create.index(path)] = str(local)
        for _ in range(2):  # at every start of the worker: created, then updated
            done = subprocess.run(create, env=env, cwd=elsewhere, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        command = [str(ORCHESTRATION_ENV / "bin" / "python"), *register["command"][1:]]
        done = subprocess.run(
            command,
            # The image's PYTHONPATH; this test's own Prefect home, not the pod's /tmp/prefect.
            env=env
            | env_values(register)
            | {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect-home")},
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

        api = PrefectAPI(client["PREFECT_API_URL"], client["PREFECT_API_AUTH_STRING"])
        pool = api.call("GET", f"/work_pools/{WORK_POOL}")
        assert pool["type"] == "kubernetes"
        assert pool["base_job_template"] == template
        deployments = {
            api.call("GET", f"/flows/{d['flow_id']}")["name"]: d
            for d in api.call("POST", "/deployments/filter", {})
        }
        assert set(deployments) == {"retrain", "watch-photos"}
        automations = api.call("POST", "/automations/filter", {})
        worker_env = resolved_env(
            pod_spec(worker)["containers"][0], find(base, "ConfigMap", "florisense-config")["data"]
        )
        for flow, deployment in deployments.items():
            assert deployment["name"] == "florisense"
            assert deployment["work_pool_name"] == WORK_POOL
            assert deployment["job_variables"]["image"] == PROJECT_IMAGE
            assert deployment["pull_steps"] == [] and deployment["path"] is None
            assert deployment["global_concurrency_limit"]["limit"] == 1
            assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
            # What the worker makes of the server's template and this deployment's variables.
            made = flow_run_jobs(
                pool["base_job_template"],
                deployment["job_variables"],
                worker_env,
                flow=flow,
                entrypoint=deployment["entrypoint"],
            )
            assert made["flow"] == flow  # loaded by module path, from another folder
            pod = pod_spec(made["manifest"])
            resources = pod["containers"][0]["resources"]
            if flow == "watch-photos":
                assert resources["limits"]["memory"] == watcher_job_variables()["memory_limit"]
                assert [s["schedule"]["interval"] for s in deployment["schedules"]] == [300.0]
            else:
                train = find(jobs, "Job", "train-first-version")
                assert resources == pod_spec(train)["containers"][0]["resources"]
                assert deployment["schedules"] == []  # FLORISENSE_RETRAIN_CRON is empty
                triggers = [
                    a for a in automations
                    if deployment["id"] in json.dumps(a["actions"])
                ]  # fmt: skip
                expected = {"florisense.photos.arrived", "florisense.drift.detected"}
                assert {e for a in triggers for e in a["trigger"]["expect"]} == expected
    finally:
        lifecycle.down(config)


# --- the KServe example -------------------------------------------------------------------------


def test_the_kserve_example_is_well_formed(base):
    docs = [doc for doc in yaml.safe_load_all(KSERVE_FILE.read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert set(by_kind) == {"Namespace", "ServiceAccount", "InferenceService", "NetworkPolicy"}
    for doc in docs:
        if doc["kind"] != "InferenceService":
            for version in SCHEMA_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
    # No CRD schema offline: KServe's v1beta1 fields, checked by hand.
    service = by_kind["InferenceService"]
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert set(service) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(service["spec"]) == {"predictor"}
    predictor = service["spec"]["predictor"]
    assert set(predictor) <= {"serviceAccountName", "minReplicas", "maxReplicas", "model"}
    model = predictor["model"]
    assert set(model) <= {"modelFormat", "protocolVersion", "storageUri", "env", "resources"}
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2"
    # MLflow 3's layout of a registered version's files, under the base's bucket.
    config = find(base, "ConfigMap", "florisense-config")["data"]
    pattern = rf"{re.escape(config['ARTIFACTS_DESTINATION'])}/\d+/models/m-[\w-]+/artifacts"
    assert re.fullmatch(pattern, model["storageUri"])
    account = by_kind["ServiceAccount"]
    namespace = by_kind["Namespace"]["metadata"]["name"]
    assert predictor["serviceAccountName"] == account["metadata"]["name"]
    assert service["metadata"]["namespace"] == account["metadata"]["namespace"] == namespace
    assert [s["name"] for s in account["secrets"]] == ["florisense-s3"]
    assert "florisense-s3" in SECRETS
    annotations = account["metadata"]["annotations"]
    minio = find(base, "Service", "minio")
    endpoint = f"minio.{NAMESPACE}.svc.cluster.local:{minio['spec']['ports'][0]['port']}"
    assert annotations["serving.kserve.io/s3-endpoint"] == endpoint
    assert annotations["serving.kserve.io/s3-usehttps"] == "0"
    # Its pods may read MinIO: the policy selects them by the label KServe gives them.
    policy = by_kind["NetworkPolicy"]
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert matches(policy["spec"]["podSelector"], pod_labels(workloads(base)["minio"]))
    peer = policy["spec"]["ingress"][0]["from"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
    assert peer["podSelector"]["matchLabels"] == {
        "serving.kserve.io/inferenceservice": service["metadata"]["name"]
    }
