"""The orchestrator itself on the real node: its chart (deploy/helm/store-orchestrator) installed
with the image built here and the bundled Postgres and Redis from the stand-ins. The migrations hook
runs, the web pod serves /healthz/ready and the login page through its Service, the worker's
liveness probe passes, and then that in-cluster worker (its own ServiceAccount, helm inside its
read-only container) provisions a store asked for through the web Service's API, and tears it
down. This proves the image, the chart, its RBAC and the in-cluster helm path together."""

from __future__ import annotations

import json
import secrets

import pytest
import yaml
from kubernetes import client

from tests.simcluster.helpers import namespace_gone, wait_for

from .conftest import REAL_NODE, REPO, on_real_node, restricted_container, scheduling_values

# Longer than pytest.ini's 900 s: image imports, migrations and helm waits on two shared cores.
pytestmark = [pytest.mark.realnode, pytest.mark.slow, pytest.mark.timeout(2400)]

CHART = REPO / "deploy" / "helm" / "store-orchestrator"
RELEASE = "so"
FULLNAME = f"{RELEASE}-store-orchestrator"


@pytest.fixture
def orchestrator(kube_cluster, core_api, real_namespace, node_images, tmp_path):
    """The chart installed (helm --wait --wait-for-jobs) in a 'restricted' namespace on the real node."""
    images = node_images("orchestrator", "postgres", "redis")
    namespace = real_namespace("so")
    values = {
        "image": images["orchestrator"].values(),
        "postgres": {"image": images["postgres"].values()},
        "redis": {"image": images["redis"].values()},
        "django": {"extraAllowedHosts": [f"{FULLNAME}-web.{namespace}.svc.cluster.local"]},
        "stores": {"baseDomain": "stores.test"},
        **scheduling_values(),
    }
    values_file = tmp_path / "orchestrator-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    installed = kube_cluster.run(
        kube_cluster.helm,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        namespace,
        "-f",
        str(values_file),
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        "15m",
        check=False,
        timeout=1000,
    )
    if installed.returncode != 0:
        pods = kube_cluster.run(kube_cluster.kubectl, "get", "pods", "-n", namespace, "-o", "wide", check=False)
        pytest.fail(f"helm install failed:\n{installed.stderr}\n{pods.stdout}")
    yield namespace
    kube_cluster.run(kube_cluster.helm, "uninstall", RELEASE, "-n", namespace, "--wait", check=False)


class InClusterClient:
    """HTTP from a pod in the orchestrator's namespace to its web Service, as a browser behind the
    ingress controller would reach it (busybox wget and nc in the toolbox image)."""

    def __init__(self, kube_cluster, namespace: str):
        self.cluster, self.namespace = kube_cluster, namespace
        self.host = f"{FULLNAME}-web.{namespace}.svc.cluster.local"

    def sh(self, script: str) -> str:
        result = self.cluster.run(
            self.cluster.kubectl, "exec", "-n", self.namespace, "client", "--", "sh", "-c", script, check=False
        )
        assert result.returncode == 0, f"{script!r} failed: {result.stdout}{result.stderr}"
        return result.stdout

    def get(self, path: str, token: str = "") -> str:
        header = f"--header 'Authorization: Token {token}' " if token else ""
        return self.sh(f"timeout 30 wget -q -O- {header}http://{self.host}{path}")

    def post_json(self, path: str, body: dict, token: str) -> dict:
        data = json.dumps(body)
        return json.loads(
            self.sh(
                f"timeout 30 wget -q -O- --header 'Authorization: Token {token}' "
                f"--header 'Content-Type: application/json' --post-data '{data}' http://{self.host}{path}"
            )
        )

    def delete(self, path: str, token: str) -> str:
        """busybox wget has no DELETE: the request by hand, over nc."""
        request = f"DELETE {path} HTTP/1.0\\r\\nHost: {self.host}\\r\\nAuthorization: Token {token}\\r\\n\\r\\n"
        return self.sh(f"printf '{request}' | timeout 30 nc {self.host} 80")


def started_client(core_api, kube_cluster, namespace: str) -> InClusterClient:
    spec = on_real_node({"containers": [restricted_container("client", ["sleep", "3600"])]})
    core_api.create_namespaced_pod(namespace, {"metadata": {"name": "client"}, "spec": spec})
    wait_for(lambda: core_api.read_namespaced_pod("client", namespace).status.phase == "Running", 60, "client pod")
    return InClusterClient(kube_cluster, namespace)


def component_pod(core_api, namespace: str, component: str) -> client.V1Pod:
    pods = core_api.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/component={component}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def test_orchestrator_runs_in_cluster_and_its_worker_provisions_a_store(orchestrator, core_api, kube_cluster):
    namespace = orchestrator
    pods = core_api.list_namespaced_pod(namespace).items
    assert all(p.spec.node_name == REAL_NODE for p in pods), [(p.metadata.name, p.spec.node_name) for p in pods]
    http = started_client(core_api, kube_cluster, namespace)

    assert "ok" in http.get("/healthz/ready").lower()
    login_page = http.get("/accounts/login/")
    assert "csrfmiddlewaretoken" in login_page and 'name="password"' in login_page

    # A user made the way an operator would (manage.py in the web pod), a token through the API.
    password = secrets.token_urlsafe(16)
    web_pod = component_pod(core_api, namespace, "web").metadata.name
    kube_cluster.run(
        kube_cluster.kubectl,
        "exec",
        "-n",
        namespace,
        web_pod,
        "--",
        "env",
        f"DEMO_PASSWORD={password}",
        "python",
        "manage.py",
        "ensure_demo_user",
        "--username",
        "tester",
    )
    token = json.loads(
        http.sh(f"timeout 30 wget -q -O- --post-data '' http://tester:{password}@{http.host}/api/auth/token/")
    )["token"]

    store = http.post_json("/api/stores/", {"name": "In cluster", "engine": "woocommerce"}, token)
    store_id = store["id"]

    def status() -> str:
        return json.loads(http.get(f"/api/stores/{store_id}/", token))["status"]

    wait_for(lambda: status() in ("ready", "failed"), 600, f"store {store_id} ready", interval=3)
    detail = json.loads(http.get(f"/api/stores/{store_id}/", token))
    assert detail["status"] == "ready", detail
    store_namespace = detail["namespace"]
    # Made by the in-cluster worker, under its own ServiceAccount: helm's record is in the store namespace.
    releases = kube_cluster.run(kube_cluster.helm, "list", "-n", store_namespace, "-o", "json").stdout
    assert [r["status"] for r in json.loads(releases)] == ["deployed"]

    worker = component_pod(core_api, namespace, "worker")
    assert worker.spec.containers[0].liveness_probe is not None
    assert worker.status.container_statuses[0].restart_count == 0
    unhealthy = [
        e.message
        for e in core_api.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={worker.metadata.name}"
        ).items
        if e.reason == "Unhealthy"
    ]
    assert unhealthy == [], unhealthy

    assert " 202 " in http.delete(f"/api/stores/{store_id}/", token).splitlines()[0] + " "
    wait_for(lambda: status() in ("deleted", "failed"), 600, f"store {store_id} deleted", interval=3)
    assert status() == "deleted"
    assert namespace_gone(core_api, store_namespace), "the worker reports deleted only once the namespace is gone"
