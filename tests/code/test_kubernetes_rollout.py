"""The follower's Kubernetes mode (florisense_model/stack/kubernetes.py): its patch, applied by
kubectl itself (strategic merge, offline) to the model-server Deployment as rendered from
deploy/kubernetes/base, pins exactly the new version and changes nothing else; the rollout is
complete only when every pod runs the new template. (No cluster runs here: the API calls
themselves are not exercised.)"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from florisense_model.stack import kubernetes
from tests.support.project import ROOT


def kubectl(*args: str, stdin: str | None = None) -> str:
    assert shutil.which("kubectl"), "kubectl is missing (see README, 'Kubernetes')"
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> dict:
    rendered = yaml.safe_load_all(kubectl("kustomize", str(ROOT / "deploy/kubernetes/base")))
    return next(o for o in rendered if o["kind"] == "Deployment" and o["metadata"]["name"] ==
                "model-server")  # fmt: skip


def patched(deployment: dict, version: str, tmp_path) -> dict:
    source = tmp_path / "deployment.json"
    source.write_text(json.dumps(deployment))
    patch = json.dumps(kubernetes.rollout_patch(version, "model-server"))
    command = ["patch", "--local", "-f", str(source), "--type", "strategic", "-p", patch]
    return json.loads(kubectl(*command, "-o", "json"))


def test_the_patch_pins_the_version_and_keeps_everything_else(deployment, tmp_path):
    assert kubernetes.served_version(deployment) is None  # as installed: the Production stage
    first = patched(deployment, "7", tmp_path)
    second = patched(first, "8", tmp_path)
    assert kubernetes.served_version(first) == "7" and kubernetes.served_version(second) == "8"
    [container] = second["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env[kubernetes.VERSION_ENV] == {"name": kubernetes.VERSION_ENV, "value": "8"}
    # Every other variable, port, probe and annotation is as rendered.
    [original] = deployment["spec"]["template"]["spec"]["containers"]
    assert [e for e in container["env"] if e["name"] != kubernetes.VERSION_ENV] == original["env"]
    assert {k: v for k, v in container.items() if k != "env"} == {
        k: v for k, v in original.items() if k != "env"
    }
    annotations = second["spec"]["template"]["metadata"]["annotations"]
    rendered_annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == rendered_annotations | {kubernetes.VERSION_ANNOTATION: "8"}
    assert second["spec"]["strategy"] == deployment["spec"]["strategy"]


def status(generation: int, observed: int, replicas: int, updated: int, available: int) -> dict:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("deployment_status", "complete"),
    [
        (status(4, 3, 3, 3, 3), False),  # the controller has not seen the patch yet
        (status(4, 4, 4, 1, 3), False),  # one new pod, three old ones still serving
        (status(4, 4, 4, 3, 3), False),  # all new, the last old pod still terminating
        (status(4, 4, 3, 3, 2), False),  # a new pod not ready
        (status(4, 4, 3, 3, 3), True),
    ],
)
def test_a_rollout_is_complete_only_when_every_pod_is_new_and_available(
    deployment_status, complete
):
    assert kubernetes.rolled_out(deployment_status) is complete


def test_a_rollout_kubernetes_gave_up_on_is_reported_as_stalled():
    given_up = status(4, 4, 4, 1, 3)
    given_up["status"]["conditions"] = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
    ]
    assert kubernetes.stalled(given_up) and not kubernetes.rolled_out(given_up)
    assert not kubernetes.stalled(status(4, 4, 4, 1, 3))
