"""The web process runs as its own ServiceAccount, which can read a store's credentials Secret (bound in
each store namespace by the orchestrator, as provisioning does) and nothing else: no listing, no other
namespace, no namespace changes. The credentials view and API work with exactly that, never cached."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from stores_app.kube import KubeGateway, reset_client
from stores_app.models import Store
from stores_app.naming import namespace_for, release_for
from tests.conftest import csrf_post

from .test_least_privilege import delete_as_admin, forbidden, role_binding

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


@pytest.fixture
def provisioned(as_orchestrator, owner, kube_api_client):
    """A store as far as provisioning's first steps take it, done as the orchestrator: namespace, both
    RoleBindings, credentials Secret."""
    store = Store.objects.create(owner=owner, name="Web Reads", slug="web-reads", engine="woocommerce", status="ready")
    store.namespace, store.release_name = namespace_for(store.pk, store.slug), release_for(store.pk, store.slug)
    store.save()
    gateway = KubeGateway()
    try:
        gateway.ensure_namespace(store.namespace, store.pk, owner.pk, store.engine)
        gateway.ensure_role_binding(store.namespace)
        gateway.ensure_credentials(store.namespace, store.secret_name, store.engine, {})
        yield store
    finally:
        delete_as_admin(kube_api_client, store.namespace)


@pytest.fixture
def as_web(as_orchestrator, settings):
    settings.KUBECONFIG = as_orchestrator.web_kubeconfig
    reset_client()
    yield as_orchestrator
    reset_client()


def _until_granted(call, timeout: float = 20):
    """The API server's RBAC cache learns of a new binding moments after it is made."""
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_web_reads_the_owners_credentials_and_nothing_is_cached(provisioned, as_web, owner_client, owner_api):
    page = _until_granted(lambda: csrf_post(owner_client, f"/stores/{provisioned.pk}/credentials"))
    assert page.status_code == 200, page.content
    assert "no-store" in page["Cache-Control"]
    api = owner_api.post(f"/api/stores/{provisioned.pk}/credentials/")
    assert api.status_code == 200 and api.json()["password"]
    assert api.json()["password"] in page.content.decode()
    assert "no-store" in api["Cache-Control"]


def test_web_can_do_nothing_else(provisioned, as_web):
    web = kube_config.new_client_from_config(config_file=as_web.web_kubeconfig)
    core = client.CoreV1Api(web)
    deadline = time.monotonic() + 20
    while True:  # once the binding is known: the one thing web may do, then everything around it
        try:
            core.read_namespaced_secret(provisioned.secret_name, provisioned.namespace)
            break
        except ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    forbidden(core.list_namespaced_secret, provisioned.namespace)
    forbidden(core.read_namespaced_secret, provisioned.secret_name, "kube-system")
    forbidden(core.read_namespaced_secret, "anything", as_web.namespace)
    forbidden(core.patch_namespaced_secret, provisioned.secret_name, provisioned.namespace, {"stringData": {"x": "y"}})
    forbidden(core.delete_namespace, provisioned.namespace)
    forbidden(core.list_namespace)
    forbidden(client.AppsV1Api(web).list_namespaced_deployment, provisioned.namespace)
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="web-escalation"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
        subjects=[
            client.RbacV1Subject(kind="ServiceAccount", name=as_web.web_service_account, namespace=as_web.namespace)
        ],
    )
    forbidden(client.RbacAuthorizationV1Api(web).create_namespaced_role_binding, provisioned.namespace, binding)


def test_adopting_the_namespace_takes_webs_access_away_too(provisioned, as_orchestrator, kube_api_client):
    KubeGateway().release_namespace(provisioned.namespace)
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    names = {b.metadata.name for b in rbac.list_namespaced_role_binding(provisioned.namespace).items}
    assert names.isdisjoint({"store-orchestrator", "store-orchestrator-web"})


def test_the_credentials_reader_goes_to_web_and_nobody_else(as_orchestrator, provisioned):
    """The admission policy: the orchestrator may hand the credentials reader to web's ServiceAccount only,
    and its own store role not to web."""
    rbac = client.RbacAuthorizationV1Api(as_orchestrator.api_client())
    namespace, role = provisioned.namespace, as_orchestrator.credentials_cluster_role
    web = (as_orchestrator.namespace, as_orchestrator.web_service_account)
    for who in ((as_orchestrator.namespace, as_orchestrator.service_account), (namespace, "default")):
        refusal = forbidden(rbac.create_namespaced_role_binding, namespace, role_binding(role, *who, name="x"))
        assert "may name only the web ServiceAccount" in refusal.body
    store_role = as_orchestrator.store_cluster_role
    forbidden(rbac.create_namespaced_role_binding, namespace, role_binding(store_role, *web, name="y"))
