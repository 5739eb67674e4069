"""The health watcher on the simulated cluster: a ready store's snapshot (workloads, pods, quota against
its limits, the namespace's events, the log tail or why there is none), a store whose workload stops being
ready turning degraded and back to ready by itself (status, timeline, audit and the owner's email), and
the watcher never touching a store some other step is moving. Plus the pure parts: the decision table
and the redaction of the log tail."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.db import connections
from kubernetes import client, config

from stores_app import health_watch, locking, notify, services
from stores_app.health_snapshot import REDACTED, bounded_tail, redact
from stores_app.health_watch import HealthChange, decide_health
from stores_app.models import AuditEntry, Status, Store, StoreHealth
from tests.orchestrator.helpers import describe, drive

SECRET = "kR7v-2Qh_9sXw3LmPz8TnB4cYd6FjE1uA5oGi0HqVbN"


def test_decision_table():
    assert decide_health(Status.READY, healthy=False) == HealthChange.DEGRADE
    assert decide_health(Status.DEGRADED, healthy=True) == HealthChange.RECOVER
    assert decide_health(Status.READY, healthy=True) is None
    assert decide_health(Status.DEGRADED, healthy=False) is None
    for other in (Status.PENDING, Status.PROVISIONING, Status.FAILED, Status.DELETING, Status.DELETED, "upgrading"):
        assert decide_health(other, healthy=False) is None and decide_health(other, healthy=True) is None


def test_redaction_removes_the_stores_secrets_and_anything_that_looks_like_one():
    log = "\n".join(
        [
            f"connecting with {SECRET} now",
            "DB_PASSWORD=hunter2-but-longer and api_key: abcdef123456",
            "GET https://admin:s3cr3t-pass@db.internal/ 200",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "an ordinary line",
        ]
    )
    clean = redact(log, [SECRET, SECRET[:20]])
    for secret in (
        SECRET,
        "hunter2-but-longer",
        "abcdef123456",
        "s3cr3t-pass",
        "eyJhbGciOiJIUzI1NiJ9",
        "MIIEpAIBAAKCAQEA",
    ):
        assert secret not in clean
    assert clean.count(REDACTED) >= 6 and "an ordinary line" in clean and "admin:" in clean
    tail = bounded_tail("first line\n" + "x" * 50 + "\nlast line", 20)
    assert tail == "last line" and len(tail.encode()) <= 20


def _admin_apps(kube_cluster) -> client.AppsV1Api:
    return client.AppsV1Api(config.new_client_from_config(config_file=kube_cluster.kubeconfig))


def _refresh_until(store_id: int, wanted: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    outcome = ""
    while time.monotonic() < deadline:
        outcome = health_watch.refresh(store_id)
        if outcome == wanted:
            return outcome
        time.sleep(1)
    raise AssertionError(
        f"health refresh never said {wanted!r} (last {outcome!r}): {describe(Store.objects.get(pk=store_id))}"
    )


@pytest.mark.cluster
@pytest.mark.django_db
def test_a_running_store_is_watched_degrades_recovers_and_its_owner_hears_of_it(
    as_orchestrator, kube_cluster, owner, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.READY_CHECK_INTERVAL_SECONDS = 1
    owner.email = "owner@example.test"
    owner.save()
    store = services.create_store(owner, "Watched Shop", "woocommerce")
    try:
        assert drive(store.pk).status == Status.READY
        assert health_watch.claim_due() == [store.pk]
        assert health_watch.claim_due() == []  # claimed: a second pass does not queue it again
        assert health_watch.refresh(store.pk) == "unchanged"
        health = StoreHealth.objects.get(store=store)
        assert health.healthy is True and health.refreshed_at and health.claimed_until is None
        kinds = {(w["kind"], w["ready"] >= w["desired"]) for w in health.workloads}
        assert ("Deployment", True) in kinds and ("StatefulSet", True) in kinds
        assert any(p["component"] == "wordpress" for p in health.pods)
        resources = {q["resource"]: q for q in health.quota}
        assert {"requests.cpu", "limits.memory"} <= set(resources) and resources["requests.cpu"]["percent"] > 0
        assert health.events and all({"time", "type", "reason", "object", "message"} <= set(e) for e in health.events)
        assert health.log_tail or health.log_note  # simulated pods have no real log: the note says why

        # An operator's change leaves the shop's pods unschedulable: the store degrades, by itself.
        apps = _admin_apps(kube_cluster)
        web = apps.list_namespaced_deployment(store.namespace, label_selector="app.kubernetes.io/component=wordpress")
        name = web.items[0].metadata.name
        unschedulable = {"spec": {"template": {"spec": {"nodeSelector": {"example.test/none": "x"}}}}}
        apps.patch_namespaced_deployment(name, store.namespace, unschedulable)
        _refresh_until(store.pk, "degraded")
        store.refresh_from_db()
        assert store.status == Status.DEGRADED and "deployment/" in store.status_message
        assert store.events.filter(step="health", outcome="failed").count() == 1
        assert AuditEntry.objects.filter(action=AuditEntry.Action.STORE_DEGRADED, store=store).count() == 1
        assert StoreHealth.objects.get(store=store).healthy is False

        apps.patch_namespaced_deployment(
            name, store.namespace, {"spec": {"template": {"spec": {"nodeSelector": None}}}}
        )
        _refresh_until(store.pk, "recovered")
        store.refresh_from_db()
        assert store.status == Status.READY and store.status_message == "Ready"
        assert AuditEntry.objects.filter(action=AuditEntry.Action.STORE_RECOVERED, store=store).count() == 1

        notify.notify_pass()
        subjects = sorted(m.subject for m in mail.outbox)
        assert subjects == [
            "[Store Orchestrator] Watched Shop is degraded",
            "[Store Orchestrator] Watched Shop is healthy again",
            "[Store Orchestrator] Watched Shop is ready",
        ], subjects

        # Never fights another step: a locked store is skipped, a store being deleted is not watched.
        other = connections["default"].copy()  # another session, as another worker's task would be
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [locking._NAMESPACE, store.pk])
                assert cursor.fetchone()[0] is True
            assert health_watch.refresh(store.pk) == "busy"
        finally:
            other.close()
        services.delete_store(store, owner)
        assert health_watch.refresh(store.pk) == "not-running"
        assert Store.objects.get(pk=store.pk).status == Status.DELETING
    finally:
        store.refresh_from_db()
        if store.status != Status.DELETED:
            if store.status != Status.DELETING:
                services.delete_store(store, owner)
            assert drive(store.pk, first="teardown").status == Status.DELETED
