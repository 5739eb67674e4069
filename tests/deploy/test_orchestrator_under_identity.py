"""The orchestrator's own code, provisioning and tearing down both engines with nothing but the
rights of its chart's ServiceAccount (a real token, the real API server, RBAC and admission policy):
least privilege is enough for the product, and the same identity can do nothing outside stores."""

from __future__ import annotations

import secrets

import pytest
from kubernetes.client.exceptions import ApiException

from stores_app import services
from stores_app.kube import KubeGateway, NotManaged
from stores_app.models import OrphanNamespace, Status
from tests.orchestrator.helpers import describe, drive

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _quick_readiness_checks(settings):
    settings.READY_CHECK_INTERVAL_SECONDS = 1  # drive() sleeps at most 0.5 s anyway


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_provision_and_teardown_with_the_charts_service_account(as_orchestrator, owner, engine):
    store = services.create_store(owner, f"Least {engine}", engine)
    store = drive(store.pk)
    assert store.status == Status.READY, describe(store)
    binding = KubeGateway().rbac.read_namespaced_role_binding("store-orchestrator", store.namespace)
    assert binding.role_ref.name == as_orchestrator.store_cluster_role

    services.delete_store(store, owner)
    store = drive(store.pk, first="teardown")
    assert store.status == Status.DELETED, describe(store)
    assert KubeGateway().get_namespace(store.namespace) is None


def test_same_identity_cannot_reach_outside_store_namespaces(as_orchestrator):
    gateway = KubeGateway()
    with pytest.raises(ApiException) as denied:
        gateway.core.list_namespaced_secret("kube-system")
    assert denied.value.status == 403
    with pytest.raises(NotManaged):
        gateway.delete_namespace("kube-system")  # RBAC cannot say "only ours"; the code refuses


@pytest.fixture
def adoptee(kube_cluster):
    name = f"store-{secrets.randbelow(10**6)}-adoptee"  # unique: a previous run's may still be terminating
    yield name
    # Adopted means the operator's now; as the test's operator, remove it.
    kube_cluster.run(kube_cluster.kubectl, "delete", "namespace", name, "--wait=false", check=False)


def test_adopting_an_orphan_removes_our_rights_there(as_orchestrator, staff, adoptee):
    gateway = KubeGateway()
    gateway.ensure_namespace(adoptee, 888888, 1, "medusa")
    gateway.ensure_role_binding(adoptee)
    orphan = OrphanNamespace.objects.create(name=adoptee, labels={}, last_seen="2026-01-01T00:00Z")
    services.request_orphan_action(orphan, "adopt", staff)
    assert services.carry_out_orphan_action(orphan.pk, "adopt", staff.pk) == "done"  # what the worker does
    namespace = gateway.get_namespace(adoptee)
    assert namespace is not None  # kept
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "adopted-by-operator"
    with pytest.raises(ApiException) as denied:  # and our rights in it are gone
        gateway.core.list_namespaced_secret(adoptee)
    assert denied.value.status == 403
