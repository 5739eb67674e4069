"""deploy/deploy-prod.sh against a real API server: it refuses to deploy, naming every missing piece,
until the namespace, the Secret and the ClusterIssuer exist, and then installs the chart with the
production values (the HPAs, TLS and the external database settings it passes end up on the cluster)."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import REPO_ROOT

pytestmark = pytest.mark.cluster

SCRIPT = REPO_ROOT / "deploy" / "deploy-prod.sh"
CLUSTER_ISSUER_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "clusterissuers.cert-manager.io"},
    "spec": {
        "group": "cert-manager.io",
        "scope": "Cluster",
        "names": {"kind": "ClusterIssuer", "plural": "clusterissuers", "singular": "clusterissuer"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def deploy(kube_cluster, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT)], env={**kube_cluster.env, **env}, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.fixture
def cluster_issuer(kube_api_client):
    """A ClusterIssuer object (only its CRD's shape; cert-manager itself does not run here)."""
    extensions = client.ApiextensionsV1Api(kube_api_client)
    custom = client.CustomObjectsApi(kube_api_client)
    try:
        extensions.create_custom_resource_definition(CLUSTER_ISSUER_CRD)
        created_crd = True
    except ApiException as exc:
        if exc.status != 409:
            raise
        created_crd = False
    name = f"issuer-{secrets.token_hex(3)}"
    body = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": name}, "spec": {}}
    for _ in range(30):  # the new CRD is served a moment after it is created
        try:
            custom.create_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", body)
            break
        except ApiException as exc:
            if exc.status != 404:
                raise
            time.sleep(1)
    yield name
    custom.delete_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", name)
    if created_crd:
        extensions.delete_custom_resource_definition(CLUSTER_ISSUER_CRD["metadata"]["name"])


def test_refuses_without_what_it_needs(kube_cluster):
    result = deploy(kube_cluster, DOMAIN="example.com", NAMESPACE=f"absent-{secrets.token_hex(3)}")
    assert result.returncode == 1
    for complaint in (
        "DOMAIN=example.com is a placeholder",
        "IMAGE is not set",
        "MEDUSA_IMAGE is not set",
        "DATABASE_HOST is not set",
        "REDIS_HOST is not set",
        "does not exist: kubectl create namespace",
        "ClusterIssuer 'letsencrypt-prod' not found",
    ):
        assert complaint in result.stderr
    assert "helm upgrade" not in result.stderr


def test_deploys_once_everything_is_in_place(kube_cluster, kube_api_client, cluster_issuer):
    core = client.CoreV1Api(kube_api_client)
    namespace = f"so-prod-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    env = {
        "DOMAIN": "shops.test.invalid",
        "IMAGE": "registry.test.invalid/store-orchestrator:1.2.3",
        "MEDUSA_IMAGE": "registry.test.invalid/store-orchestrator/medusa:2.21.2",
        "DATABASE_HOST": "pg.test.invalid",
        "REDIS_HOST": "redis.test.invalid",
        "NAMESPACE": namespace,
        "CLUSTER_ISSUER": cluster_issuer,
    }
    try:
        missing = deploy(kube_cluster, **env)
        assert missing.returncode == 1
        assert f"Secret {namespace}/store-orchestrator-secrets is missing" in missing.stderr

        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="store-orchestrator-secrets"),
                string_data={"django-secret-key": "x" * 50, "postgres-password": "p"},
            ),
        )
        incomplete = deploy(kube_cluster, **env)
        assert incomplete.returncode == 1
        assert "has no key redis-password" in incomplete.stderr
        assert "has no key metrics-token" in incomplete.stderr
        keys = {"redis-password": "r", "metrics-token": "t" * 32}
        core.patch_namespaced_secret("store-orchestrator-secrets", namespace, {"stringData": keys})

        result = deploy(kube_cluster, **env)
        assert result.returncode == 0, result.stderr
        assert "https://orchestrator.shops.test.invalid/" in result.stdout

        web = client.AppsV1Api(kube_api_client).read_namespaced_deployment("store-orchestrator-web", namespace)
        container = web.spec.template.spec.containers[0]
        assert container.image == "registry.test.invalid/store-orchestrator:1.2.3"
        env_vars = {e.name: e for e in container.env}
        assert env_vars["POSTGRES_HOST"].value == "pg.test.invalid"
        assert env_vars["STORE_BASE_DOMAIN"].value == "stores.shops.test.invalid"
        assert env_vars["STORE_TLS_CLUSTER_ISSUER"].value == cluster_issuer
        ingress = client.NetworkingV1Api(kube_api_client).read_namespaced_ingress("store-orchestrator", namespace)
        assert ingress.metadata.annotations["cert-manager.io/cluster-issuer"] == cluster_issuer
        engine_values = core.read_namespaced_config_map("store-orchestrator-engine-values", namespace)
        assert "repository: registry.test.invalid/store-orchestrator/medusa" in engine_values.data["medusa.yaml"]
        assert "tag: 2.21.2" in engine_values.data["medusa.yaml"]
        hpas = client.AutoscalingV2Api(kube_api_client).list_namespaced_horizontal_pod_autoscaler(namespace).items
        assert len(hpas) == 2
    finally:
        kube_cluster.run(kube_cluster.helm, "uninstall", "store-orchestrator", "-n", namespace, "--wait", check=False)
        core.delete_namespace(namespace)
