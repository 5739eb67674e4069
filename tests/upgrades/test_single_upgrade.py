"""One store upgraded on the simulated cluster with the real helm and the real store chart, acting as
the orchestrator's least-privilege identity, each step driven in-process the way the task layer runs it.

A healthy new version: the store ends ready on it at a new revision, with the address, Secret and
settings it was installed with (recorded values win over changed defaults), its credentials untouched,
and the upgrade in its timeline and the audit log. A new version that never becomes healthy: the
health gate gives up after its (shortened) timeout, the store is rolled back, the rollback is checked,
and the store ends ready on its old chart at a new revision, with its data volumes never replaced and
the failure recorded."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client as k8s

from stores_app import services
from stores_app.models import AuditEntry, Status, Store, StoreUpgrade
from tests.orchestrator.helpers import describe, drive

from .versions import NEW_VERSION, OLD_VERSION, helm_history, release_new_version, revisions_at

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


@pytest.fixture
def core(kube_api_client):
    return k8s.CoreV1Api(kube_api_client)


@pytest.fixture
def ready_store(as_orchestrator, charts_dir, owner, core):
    """A ready WooCommerce store on today's chart; deleted (and waited for) afterwards."""
    store = services.create_store(owner, "Upgrade Me", "woocommerce")
    store = drive(store.pk)
    assert store.status == Status.READY, describe(store)
    yield store
    services.delete_store(Store.objects.get(pk=store.pk), owner)
    assert drive(store.pk, first="teardown").status == Status.DELETED


def secret_data(core, store) -> dict:
    return core.read_namespaced_secret(store.secret_name, store.namespace).data


def claims(core, store) -> dict[str, str]:
    return {
        c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(store.namespace).items
    }


def test_upgrade_to_a_new_version_keeps_settings_and_credentials(
    ready_store, charts_dir, owner, core, kube_cluster, settings
):
    store = ready_store
    assert (store.chart_version, store.helm_revision) == (OLD_VERSION, 1)
    assert store.release_values["store"]["host"] == store.host and not store.update_available
    credentials = secret_data(core, store)
    host = store.host

    release_new_version(charts_dir)
    settings.STORE_BASE_DOMAIN = "elsewhere.test"  # a changed default must not move an existing store
    store.refresh_from_db()
    assert store.update_available and store.target_version == NEW_VERSION
    record = services.upgrade_store(store, owner)
    assert Store.objects.get(pk=store.pk).status == Status.UPGRADING
    store = drive(store.pk, first="upgrade")

    assert store.status == Status.READY, describe(store)
    assert (store.chart_version, store.helm_revision, store.update_available) == (NEW_VERSION, 2, False)
    record.refresh_from_db()
    assert (record.state, record.from_version, record.from_revision) == (StoreUpgrade.State.SUCCEEDED, OLD_VERSION, 1)
    assert (record.to_version, record.to_revision) == (NEW_VERSION, 2)
    history = helm_history(kube_cluster, store)
    assert [h["status"] for h in history] == ["superseded", "deployed"]
    assert len(revisions_at(history, "woocommerce", NEW_VERSION)) == 1
    given = kube_cluster.run(
        kube_cluster.helm, "get", "values", store.release_name, "-n", store.namespace, "-o", "json"
    )
    assert f'"host":"{host}"' in given.stdout.replace(" ", ""), given.stdout
    assert secret_data(core, store) == credentials, "an upgrade never regenerates a credential"
    steps = [(e.step, e.outcome) for e in store.events.all()]
    assert ("upgrade", "succeeded") in steps and ("upgrade_check", "succeeded") in steps, steps
    actions = set(AuditEntry.objects.filter(store=store).values_list("action", flat=True))
    assert {"store.upgrade", "store.upgraded"} <= actions
    password = base64.b64decode(credentials["admin-password"]).decode()
    assert not AuditEntry.objects.filter(details__icontains=password).exists()
    assert not StoreUpgrade.objects.filter(message__contains=password).exists()


def test_a_version_that_never_gets_healthy_is_rolled_back_and_the_store_stays_ready(
    ready_store, charts_dir, owner, core, kube_cluster, settings
):
    store = ready_store
    settings.UPGRADE_HEALTH_TIMEOUT_SECONDS = 15  # this test only: the new pods can never be scheduled
    volumes = claims(core, store)
    release_new_version(charts_dir, failing_stores=(store.pk,))
    record = services.upgrade_store(store, owner)
    store = drive(store.pk, first="upgrade", timeout=300)

    assert store.status == Status.READY, describe(store)
    assert (store.chart_version, store.helm_revision) == (OLD_VERSION, 3), describe(store)
    assert store.update_available, "still behind: the owner may try again later"
    record.refresh_from_db()
    assert record.state == StoreUpgrade.State.ROLLED_BACK
    assert "not healthy after 15 s" in record.message, record.message
    assert "failed and was rolled back" in store.status_message
    history = helm_history(kube_cluster, store)
    assert [(h["revision"], h["chart"], h["status"]) for h in history] == [
        (1, f"woocommerce-{OLD_VERSION}", "superseded"),
        (2, f"woocommerce-{NEW_VERSION}", "superseded"),
        (3, f"woocommerce-{OLD_VERSION}", "deployed"),
    ]
    assert claims(core, store) == volumes, "the store's data volumes are the same ones: nothing reinstalled"
    pods = core.list_namespaced_pod(store.namespace).items
    assert all(p.spec.node_name for p in pods if p.status.phase != "Succeeded"), "every pod scheduled again"
    steps = [(e.step, e.outcome) for e in store.events.all()]
    assert ("upgrade", "failed") in steps and ("rollback", "succeeded") in steps, steps
    # MariaDB's StatefulSet waits for its never-scheduled pod before it rolls anything back: replaced.
    assert store.events.filter(step="rollback", message__contains="mariadb-0 of the failed revision").exists()
    rolled_back = AuditEntry.objects.get(store=store, action="store.rolled_back")
    assert rolled_back.outcome == AuditEntry.Outcome.FAILED and rolled_back.details["to_version"] == NEW_VERSION


def test_a_medusa_store_upgrades_with_its_database_kept(as_orchestrator, charts_dir, owner, core, kube_cluster):
    """Medusa's Postgres is a StatefulSet whose volumeClaimTemplates Kubernetes never lets change: a label
    there that moved with the chart version (helm.sh/chart) made every Medusa upgrade fail ("updates to
    statefulset spec for fields other than … are forbidden"), and the rollback after it fail too."""
    store = drive(services.create_store(owner, "Upgrade Medusa", "medusa").pk)
    assert store.status == Status.READY, describe(store)
    volumes = claims(core, store)
    release_new_version(charts_dir, "medusa")
    services.upgrade_store(Store.objects.get(pk=store.pk), owner)
    store = drive(store.pk, first="upgrade")
    try:
        assert store.status == Status.READY, describe(store)
        assert (store.chart_version, store.helm_revision) == (NEW_VERSION, 2)
        assert claims(core, store) == volumes, "the database's volume was kept"
        assert [h["status"] for h in helm_history(kube_cluster, store)] == ["superseded", "deployed"]
    finally:
        services.delete_store(Store.objects.get(pk=store.pk), owner)
        assert drive(store.pk, first="teardown").status == Status.DELETED


def test_an_upgrade_helm_refuses_halfway_is_rolled_back_over_the_old_setup_job(
    ready_store, charts_dir, owner, kube_cluster
):
    """The new version changes something Kubernetes refuses to change (a StatefulSet's volumeClaimTemplates):
    `helm upgrade` fails after applying part of it, before it removes the old revision's setup Job. The
    rollback re-applies that Job, which helm cannot patch (a Job's selector is generated), unless the
    finished Job is deleted first: the store must end ready on its old chart, the failure recorded."""
    store = ready_store
    release_new_version(charts_dir)
    mariadb = charts_dir / "woocommerce" / "templates" / "mariadb.yaml"
    text = mariadb.read_text()
    marker = "  volumeClaimTemplates:\n    - metadata:\n        name: data\n"
    assert marker in text
    mariadb.write_text(text.replace(marker, marker + "        annotations: {changed: in-this-version}\n"))
    record = services.upgrade_store(Store.objects.get(pk=store.pk), owner)
    store = drive(store.pk, first="upgrade")
    record.refresh_from_db()
    assert store.status == Status.READY, describe(store)
    assert record.state == StoreUpgrade.State.ROLLED_BACK and "forbidden" in record.message, record.message
    assert (store.chart_version, store.helm_revision) == (OLD_VERSION, 3)
    assert [h["status"] for h in helm_history(kube_cluster, store)] == ["superseded", "failed", "deployed"]
