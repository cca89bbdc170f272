"""The follower on Kubernetes (`python -m florisense_model.stack.follower --kubernetes`, see
deploy/kubernetes/): a new Production version becomes a rolling update of the model-server
Deployment. The follower patches the pod template (the version in an environment variable and an
annotation); Kubernetes then replaces the pods one at a time (maxUnavailable 0), each taking
traffic only once its /ping answers, so /predict keeps answering. Only the follower talks to the
Kubernetes API, with its service account (a Role allows get and patch on that one Deployment)."""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from florisense_model import registry
from florisense_model.cli import first_line

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
VERSION_ENV = "FLORISENSE_MODEL_VERSION"  # read by stack/serve.py in each model-server pod
VERSION_ANNOTATION = "florisense.io/model-version"
PATCH_TYPE = "application/strategic-merge-patch+json"


def rollout_patch(version: str, container: str) -> dict:
    """The strategic-merge patch that serves `version`: containers and env merge by name, so
    nothing else of the pod template changes."""
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": {VERSION_ANNOTATION: version}},
                "spec": {
                    "containers": [
                        {"name": container, "env": [{"name": VERSION_ENV, "value": version}]}
                    ]
                },
            }
        }
    }


def served_version(deployment: dict) -> str | None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(VERSION_ANNOTATION)


def stalled(deployment: dict) -> bool:
    """Whether Kubernetes gave up on the rollout (progressDeadlineSeconds passed: pods that never
    became ready, an image that cannot be pulled)."""
    conditions = deployment.get("status", {}).get("conditions") or []
    return any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in conditions
    )


def rolled_out(deployment: dict) -> bool:
    """Whether every pod runs the latest template and is available (what `kubectl rollout
    status` waits for)."""
    status, wanted = deployment.get("status", {}), deployment["spec"].get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted  # no old pod left
    )


@dataclass(frozen=True)
class Cluster:
    """The API server as a pod sees it, with the pod's service-account token."""

    api: str
    namespace: str
    token_file: Path  # read at every call: Kubernetes rotates bound service-account tokens
    context: ssl.SSLContext

    @classmethod
    def in_cluster(cls) -> Cluster:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return cls(
            api=f"https://{host}:{port}",
            namespace=(SERVICE_ACCOUNT / "namespace").read_text().strip(),
            token_file=SERVICE_ACCOUNT / "token",
            context=ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt")),
        )

    def deployment_url(self, name: str) -> str:
        return f"{self.api}/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}"

    def call(self, url: str, method: str = "GET", body: dict | None = None) -> dict:
        token = self.token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), PATCH_TYPE
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
            return json.load(answer)


def follow(
    cluster: Cluster,
    deployment: str,
    container: str,
    tracking_uri: str,
    log: Callable[[str], None],
    interval_s: float,
    rollout_timeout_s: float = 1800.0,
) -> None:
    """Poll the registry; roll the Deployment out to each new Production version."""
    url = cluster.deployment_url(deployment)
    while True:
        try:
            version = registry.production_version(tracking_uri)
            current = served_version(cluster.call(url))
            if version is not None and version != current:
                log(f"Production is now version {version}: rolling {deployment} out to it")
                cluster.call(url, "PATCH", rollout_patch(version, container))
                log(wait_for_rollout(cluster, url, version, rollout_timeout_s))
        except Exception as exc:  # keep following: the next round may succeed
            log(f"could not follow the registry this round: {first_line(exc)}")
        time.sleep(interval_s)


def wait_for_rollout(cluster: Cluster, url: str, version: str, timeout_s: float) -> str:
    """Wait until every pod serves `version`, or Kubernetes gives up, or the timeout; says which.
    A stalled rollout keeps the old pods serving (maxUnavailable 0): the operator promotes
    another version or fixes the cause, and the follower acts on the next change."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        deployment = cluster.call(url)
        if rolled_out(deployment):
            return f"every pod serves version {version}"
        if stalled(deployment):
            return (
                f"the rollout to version {version} stalled (ProgressDeadlineExceeded): the "
                "old pods keep serving; see kubectl -n NAMESPACE describe deploy/model-server"
            )
        time.sleep(5)
    return f"the rollout to version {version} is not complete after {timeout_s:.0f} s"
