"""End to end on the simulated cluster: the REST API, a real Celery worker, the real helm binary and
the real store charts. Both engines become ready with the right namespace, quota objects and Secret,
then are deleted until nothing of them is left in the cluster."""

from __future__ import annotations

import pytest
from django.conf import settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from stores_app.models import AuditEntry, Status, Store
from tests.conftest import wait_for_status

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def core(kube_cluster):
    api = k8s_config.new_client_from_config(config_file=kube_cluster.kubeconfig)
    return k8s.CoreV1Api(api)


def test_create_both_engines_ready_then_delete_leaves_nothing(celery_worker, owner_api, owner, core, kube_cluster):
    created = {}
    for engine in ("woocommerce", "medusa"):
        response = owner_api.post("/api/stores/", {"name": f"E2E {engine}", "engine": engine}, format="json")
        assert response.status_code == 202, response.content
        created[engine] = response.json()["id"]

    for engine, store_id in created.items():
        store = wait_for_status(store_id, {Status.READY, Status.FAILED}, timeout=420)
        assert store.status == Status.READY, f"{engine}: {store.status_message}"
        ns = core.read_namespace(store.namespace)
        labels = ns.metadata.labels
        assert labels["app.kubernetes.io/managed-by"] == "store-orchestrator"
        assert labels["store-orchestrator.io/store-id"] == str(store.pk)
        assert labels["store-orchestrator.io/owner-id"] == str(owner.pk)
        assert labels["store-orchestrator.io/engine"] == engine
        assert labels["store-orchestrator.io/installation"] == settings.ORCHESTRATOR_INSTALLATION_ID
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert core.list_namespaced_resource_quota(store.namespace).items, "no ResourceQuota"
        assert core.list_namespaced_limit_range(store.namespace).items, "no LimitRange"
        secret = core.read_namespaced_secret(store.secret_name, store.namespace)
        assert "admin-password" in secret.data
        steps = [e.step for e in store.events.all()]
        for step in ("namespace", "secrets", "helm_install", "workloads", "smoke_test", "ready"):
            assert step in steps, steps
        release = kube_cluster.run(kube_cluster.helm, "status", store.release_name, "-n", store.namespace)
        assert "STATUS: deployed" in release.stdout

        # The owner can read the admin login; it never touched the database.
        creds = owner_api.post(f"/api/stores/{store_id}/credentials/")
        assert creds.status_code == 200 and creds.json()["password"]
        password = creds.json()["password"]
        assert not Store.objects.filter(status_message__contains=password).exists()
        assert not AuditEntry.objects.filter(details__icontains=password).exists()

    # The volumes each store has now, by name: after the delete each is looked up again, so the check
    # does not merely repeat teardown's own condition (claims of the namespace).
    volumes = {
        store_id: [
            pv.metadata.name
            for pv in core.list_persistent_volume().items
            if pv.spec.claim_ref and pv.spec.claim_ref.namespace == Store.objects.get(pk=store_id).namespace
        ]
        for store_id in created.values()
    }
    assert volumes[created["woocommerce"]], "a WooCommerce store has volumes (database, uploads)"
    for store_id in created.values():
        assert owner_api.delete(f"/api/stores/{store_id}/").status_code == 202
    for engine, store_id in created.items():
        store = wait_for_status(store_id, {Status.DELETED, Status.FAILED}, timeout=300)
        assert store.status == Status.DELETED, f"{engine}: {store.status_message}"
        names = [ns.metadata.name for ns in core.list_namespace().items]
        assert store.namespace not in names
        for volume in volumes[store_id]:
            with pytest.raises(k8s.ApiException) as gone:
                core.read_persistent_volume(volume)
            assert gone.value.status == 404, f"{engine}: volume {volume} left behind"
    assert owner_api.get("/api/stores/").json()["results"] == []
    assert owner_api.get(f"/api/stores/{created['medusa']}/").json()["status"] == "deleted"
