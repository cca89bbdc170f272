"""deploy/kubernetes/ is right by construction: the base, every overlay and the components
together are rendered by the real Kustomize (`kubectl kustomize`), every object is checked
against the Kubernetes API schema offline (kubernetes-validate, strict: an unknown field
fails), and the things that must agree are checked on what Kustomize makes of the files: ports,
probes, Service selectors, NetworkPolicies, the follower's rights, the nginx template's
variables, the Secrets the operator creates. No cluster runs here: nothing is applied."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from florisense_model.stack.nginx import TEMPLATE
from tests.support.project import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE_FILE = ROOT / "docker-compose.yml"
WEB_DOCKERFILE = ROOT / "docker" / "web.Dockerfile"
KSERVE_FILE = KUBERNETES / "kserve" / "inferenceservice.yaml"
JOB_FILES = sorted((KUBERNETES / "jobs").glob("*.yaml"))
NAMESPACE = "florisense"
# The schemas checked against: the kubectl here (1.32) and the newest kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.32", "1.37")
# Every Secret a pod may read, with its keys. The operator creates them (README, "Kubernetes");
# nothing here ships a value.
SECRETS = {
    "florisense-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "florisense-postgres": {"password"},
    "florisense-mlflow-auth": {"admin-password", "flask-secret-key"},  # component mlflow-auth
}
OUR_IMAGES = {"florisense/mlflow:local", "florisense/model-server:local", "florisense/web:local"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
# Who may open a connection to whom (NetworkPolicy), as (peer, port) per workload. "*" is
# anyone; a peer in another namespace is written "ns:<its namespaceSelector>/<podSelector>".
EXPECTED_INGRESS = {
    "web": {("*", 8080)},
    "model-server": {("web", 5001), ("ns:{}/app.kubernetes.io/name=prometheus", 9101)},
    "mlflow": {("model-server", 5050), ("follower", 5050), ("trainer", 5050)},
    "minio": {("mlflow", 9000), ("create-bucket", 9000)},
    "postgres": {("mlflow", 5432)},
    "follower": set(),
    "create-bucket": set(),
    "trainer": set(),
}


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
def jobs() -> list[dict]:
    return [doc for path in JOB_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


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


def test_only_the_follower_holds_a_kubernetes_api_token(renders):
    for name, docs in renders.items():
        holders = {
            w["metadata"]["name"]
            for w in workloads(docs).values()
            if pod_spec(w).get("automountServiceAccountToken") is not False
        }
        assert holders == {"follower"}, name
        account = find(docs, "ServiceAccount", "florisense-follower")
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
    third_party = set(base_images) - ours
    assert third_party == {compose[s]["image"] for s in ("minio", "create-bucket", "postgres")}
    assert compose["mlflow"]["image"] == "florisense/mlflow:local"
    assert compose["model-server"]["image"] == "florisense/model-server:local"


# --- ports, probes, Services --------------------------------------------------------------------


def test_ports_are_compose_ports(base, compose):
    mlflow = " ".join(compose["mlflow"]["command"])
    expected = {
        "mlflow": int(re.search(r"--port (\d+)", mlflow).group(1)),
        "model-server": int(compose["web"]["environment"]["MODEL_SERVER"].split(":")[1]),
        "web": int(compose["web"]["environment"]["LISTEN"]),
        "minio": int(compose["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"].split(":")[-1]),
        "postgres": int(re.search(r"@postgres:(\d+)/", mlflow).group(1)),
    }
    assert expected == {
        "mlflow": 5050,
        "model-server": 5001,
        "web": 8080,
        "minio": 9000,
        "postgres": 5432,
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
        binding = find(docs, "RoleBinding", "florisense-follower")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "florisense-follower",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "florisense-follower", "namespace": NAMESPACE}
        ]
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
    assert not [d for d in external_s3 if d["kind"] == "Job"]
    config = find(external_s3, "ConfigMap", "florisense-config")["data"]
    assert config["MLFLOW_S3_ENDPOINT_URL"].startswith("https://")
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
