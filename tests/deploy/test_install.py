"""The chart installs with `helm install --wait` into a namespace that enforces Pod Security
"restricted", with local and with production values, upgrades keeping its generated secret key, and
uninstalls leaving only what it promises to keep. (In the simulated cluster admission, scheduling,
volumes, Jobs and readiness are real API behaviour; the containers themselves do not run.)"""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import CHART_DIR, LOCAL_VALUES, PROD_VALUES

pytestmark = pytest.mark.cluster

RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")} | {
    "pod-security.kubernetes.io/enforce-version": "latest"
}


@pytest.fixture
def restricted_namespace(kube_api_client):
    core = client.CoreV1Api(kube_api_client)
    name = f"so-install-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def helm(cluster, namespace: str, *args: str):
    return cluster.run(cluster.helm, "--namespace", namespace, *args, check=False, timeout=600)


def assert_clean(result) -> None:
    assert result.returncode == 0, result.stderr
    # warn=restricted makes the API server warn about any pod template that would be refused.
    assert "PodSecurity" not in result.stderr, result.stderr


def assert_workloads_available(api: client.ApiClient, namespace: str, release: str) -> set[str]:
    apps = client.AppsV1Api(api)
    selector = f"app.kubernetes.io/instance={release}"
    ready = set()
    for deployment in apps.list_namespaced_deployment(namespace, label_selector=selector).items:
        assert deployment.status.available_replicas, deployment.metadata.name
        ready.add(deployment.metadata.name.removeprefix(f"{release}-store-orchestrator-"))
    for statefulset in apps.list_namespaced_stateful_set(namespace, label_selector=selector).items:
        assert statefulset.status.ready_replicas == 1, statefulset.metadata.name
        ready.add(statefulset.metadata.name.removeprefix(f"{release}-store-orchestrator-"))
    return ready


def secret_key(api: client.ApiClient, namespace: str, name: str) -> str:
    return client.CoreV1Api(api).read_namespaced_secret(name, namespace).data["django-secret-key"]


def test_local_values_install_upgrade_and_uninstall(kube_cluster, kube_api_client, restricted_namespace):
    ns, release = restricted_namespace, f"so-{secrets.token_hex(3)}"
    try:
        assert_clean(helm(kube_cluster, ns, "install", release, str(CHART_DIR), "--wait", "--timeout", "5m"))
        assert assert_workloads_available(kube_api_client, ns, release) == {
            "web", "worker", "beat", "postgres", "redis",
        }  # fmt: skip
        generated = f"{release}-store-orchestrator-generated"
        key = secret_key(kube_api_client, ns, generated)

        # An upgrade reruns the migrations hook and must not rotate the secret key or DB password.
        upgrade = helm(kube_cluster, ns, "upgrade", release, str(CHART_DIR), "--wait", "--timeout", "5m")
        assert_clean(upgrade)
        assert secret_key(kube_api_client, ns, generated) == key
        migrate_jobs = client.BatchV1Api(kube_api_client).list_namespaced_job(ns).items
        assert not migrate_jobs, "a succeeded migrations Job is removed (hook-succeeded)"
        reasons = {e.reason for e in client.CoreV1Api(kube_api_client).list_namespaced_event(ns).items}
        assert "Completed" in reasons, "the migrations Job ran to completion"
    finally:
        uninstall = helm(kube_cluster, ns, "uninstall", release, "--wait")
    assert uninstall.returncode == 0, uninstall.stderr
    core = client.CoreV1Api(kube_api_client)
    # Kept on purpose: the generated credentials and Postgres' data, which belong together.
    core.read_namespaced_secret(f"{release}-store-orchestrator-generated", ns)
    assert core.list_namespaced_persistent_volume_claim(ns).items
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    names = {r.metadata.name for r in rbac.list_cluster_role().items}
    assert not [n for n in names if n.startswith(f"{release}-")], "cluster-scoped objects go with the release"


def test_production_values_install_with_existing_secrets(kube_cluster, kube_api_client, restricted_namespace):
    ns, release = restricted_namespace, f"so-{secrets.token_hex(3)}"
    client.CoreV1Api(kube_api_client).create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="store-orchestrator-secrets"),
            string_data={
                k: secrets.token_urlsafe(32) for k in ("django-secret-key", "postgres-password", "redis-password")
            },
        ),
    )
    args = ["--values", str(LOCAL_VALUES), "--values", str(PROD_VALUES), "--wait", "--timeout", "5m"]
    try:
        # The migrations Job runs pre-install here: it needs only the operator's Secret.
        assert_clean(helm(kube_cluster, ns, "install", release, str(CHART_DIR), *args))
        assert assert_workloads_available(kube_api_client, ns, release) == {"web", "worker", "beat"}
        hpas = client.AutoscalingV2Api(kube_api_client).list_namespaced_horizontal_pod_autoscaler(ns).items
        assert {h.spec.scale_target_ref.name for h in hpas} == {
            f"{release}-store-orchestrator-web",
            f"{release}-store-orchestrator-worker",
        }
        ingress = client.NetworkingV1Api(kube_api_client).read_namespaced_ingress(f"{release}-store-orchestrator", ns)
        assert ingress.spec.tls[0].hosts == ["orchestrator.example.com"]
    finally:
        uninstall = helm(kube_cluster, ns, "uninstall", release, "--wait")
    assert uninstall.returncode == 0, uninstall.stderr
