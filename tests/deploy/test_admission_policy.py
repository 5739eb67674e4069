"""The admission policies, against the real API server with a token of the chart's ServiceAccount:
namespaces and RoleBindings only of this installation (another orchestrator's are refused, an unlabelled
older store namespace may be claimed once), and store Ingresses only for <store>.<base domain>."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .identity import INSTALLATION_LABEL
from .test_least_privilege import create_store_namespace, delete_as_admin, forbidden, role_binding, wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def orchestrator(orchestrator_identity) -> client.ApiClient:
    return orchestrator_identity.api_client()


@pytest.fixture
def store_namespace(orchestrator, orchestrator_identity, kube_api_client):
    name = f"store-ap-{secrets.token_hex(3)}"
    try:
        create_store_namespace(orchestrator, orchestrator_identity, name)
        yield name
    finally:
        delete_as_admin(kube_api_client, name)


@pytest.fixture
def admin_namespace(kube_api_client):
    """make(labels) -> a namespace created by the cluster admin, removed afterwards."""
    made = []

    def make(labels: dict[str, str]) -> str:
        name = f"store-other-{secrets.token_hex(3)}"
        client.CoreV1Api(kube_api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        made.append(name)
        return name

    yield make
    for name in made:
        delete_as_admin(kube_api_client, name)


# --- installations ---------------------------------------------------------------------------------


def test_another_installations_namespaces_are_out_of_reach(orchestrator, orchestrator_identity, admin_namespace):
    theirs = admin_namespace({**orchestrator_identity.managed_labels, INSTALLATION_LABEL: "someone-else"})
    core = client.CoreV1Api(orchestrator)
    assert "installation=" + orchestrator_identity.installation_id in forbidden(core.delete_namespace, theirs).body
    forbidden(core.patch_namespace, theirs, {"metadata": {"labels": {INSTALLATION_LABEL: "x"}}})
    forbidden(core.patch_namespace, theirs, {"metadata": {"labels": orchestrator_identity.managed_labels}})
    rbac = client.RbacAuthorizationV1Api(orchestrator)
    sa = (orchestrator_identity.namespace, orchestrator_identity.service_account)
    refusal = forbidden(
        rbac.create_namespaced_role_binding, theirs, role_binding(orchestrator_identity.store_cluster_role, *sa)
    )
    assert "only create RoleBindings in namespaces labelled" in refusal.body


def test_it_creates_namespaces_only_with_its_own_installation(orchestrator, orchestrator_identity):
    core = client.CoreV1Api(orchestrator)
    name = f"store-ap-{secrets.token_hex(3)}"
    for labels in (
        {k: v for k, v in orchestrator_identity.managed_labels.items() if k != INSTALLATION_LABEL},
        {**orchestrator_identity.managed_labels, INSTALLATION_LABEL: "someone-else"},
    ):
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        assert "must be labelled" in forbidden(core.create_namespace, body, dry_run="All").body
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=orchestrator_identity.managed_labels))
    core.create_namespace(body, dry_run="All")


def test_it_never_hands_a_namespace_to_another_installation(orchestrator, store_namespace):
    core = client.CoreV1Api(orchestrator)
    forbidden(core.patch_namespace, store_namespace, {"metadata": {"labels": {INSTALLATION_LABEL: "someone-else"}}})
    forbidden(core.patch_namespace, store_namespace, {"metadata": {"labels": {INSTALLATION_LABEL: None}}})


def test_an_older_store_namespace_without_the_label_is_claimed_once(
    orchestrator, orchestrator_identity, admin_namespace
):
    """Store namespaces made before the installation label existed: the orchestrator may add its own
    label (and then manage them), but not delete them as they are, nor label them as someone else's."""
    older = admin_namespace({k: v for k, v in orchestrator_identity.managed_labels.items() if k != INSTALLATION_LABEL})
    core = client.CoreV1Api(orchestrator)
    forbidden(core.delete_namespace, older, dry_run="All")
    forbidden(core.patch_namespace, older, {"metadata": {"labels": {INSTALLATION_LABEL: "someone-else"}}})
    core.patch_namespace(older, {"metadata": {"labels": {INSTALLATION_LABEL: orchestrator_identity.installation_id}}})
    core.delete_namespace(older, dry_run="All")


# --- store Ingresses -------------------------------------------------------------------------------


def _ingress(host: str | None, tls_host: str | None = None, default_backend: bool = False) -> client.V1Ingress:
    backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(name="web", port={"number": 80}))
    path = client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)
    spec = client.V1IngressSpec(
        ingress_class_name="nginx",
        rules=[client.V1IngressRule(host=host, http=client.V1HTTPIngressRuleValue(paths=[path]))],
    )
    if tls_host:
        spec.tls = [client.V1IngressTLS(hosts=[tls_host], secret_name="tls")]
    if default_backend:
        spec.default_backend = backend
    return client.V1Ingress(metadata=client.V1ObjectMeta(name=f"ing-{secrets.token_hex(3)}"), spec=spec)


def test_store_ingresses_serve_only_hosts_under_the_base_domain(orchestrator, orchestrator_identity, store_namespace):
    networking = client.NetworkingV1Api(orchestrator)
    base = orchestrator_identity.store_base_domain
    create = networking.create_namespaced_ingress

    def refused(ingress) -> bool:
        try:
            create(store_namespace, ingress, dry_run="All")
        except ApiException as exc:
            if exc.status == 403 and "store Ingress" in (exc.body or ""):
                return True
            raise
        return False

    # The policy takes effect a moment after it is created, like the namespace policy.
    wait_until(lambda: refused(_ingress("dashboard.example.com")), 60, "the Ingress policy to take effect")
    for bad in (
        _ingress(f"orchestrator.{base}.example.com"),  # the base domain inside another one
        _ingress(f"a.b.{base}"),  # deeper than one label
        _ingress(f"*.{base}"),  # every store at once
        _ingress(base),  # the bare base domain
        _ingress(None),  # no host: every host
        _ingress(f"shop.{base}", tls_host="login.example.com"),
        _ingress(f"shop.{base}", default_backend=True),
    ):
        assert refused(bad), bad.spec
    assert not refused(_ingress(f"corner-shop.{base}", tls_host=f"corner-shop.{base}"))
