"""Release safety, each behaviour against the real database and cluster: a delete is never undone by a
provisioning step, worker-side state changes are atomic, duplicate tasks do nothing, a retry restarts
the readiness clock, a broker outage does not turn a saved store into an error, a lock held by a lost
node's lingering connection is taken over, namespaces carry the installation's identity, and the
readiness and teardown timeouts and a Retain volume end as the product says."""

from __future__ import annotations

import datetime as dt
import secrets

import psycopg
import pytest
import yaml
from django.db import connection
from django.utils import timezone
from kubernetes import client as k8s

from stores_app import audit, locking, provisioning, services
from stores_app.kube import LABEL_INSTALLATION, KubeGateway, NamespaceConflict, reset_client
from stores_app.models import AuditEntry, Status, Store, StoreEvent, WorkerHeartbeat
from tests.orchestrator.helpers import describe, drive, timeline

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def cluster(kube_cluster, settings):
    settings.HELM_BIN = kube_cluster.helm
    settings.KUBECONFIG = kube_cluster.kubeconfig
    reset_client()
    from stores_app import helm

    helm.reset_clients()
    return kube_cluster


@pytest.fixture
def cleanup():
    namespaces: list[str] = []
    yield namespaces
    for name in namespaces:
        KubeGateway().delete_namespace(name)


# --- no cluster needed ------------------------------------------------------------------------------


def test_a_delete_landing_between_a_steps_read_and_its_write_is_not_undone(owner, monkeypatch):
    store = services.create_store(owner, "Deleted Meanwhile", "woocommerce")
    real = provisioning._provision

    def delete_first(seen: Store):
        services.delete_store(Store.objects.get(pk=seen.pk), owner)  # lands after the step read the store
        return real(seen)

    monkeypatch.setattr(provisioning, "_provision", delete_first)
    assert provisioning.provision(store.pk).action == "done"
    store.refresh_from_db()
    assert store.status == Status.DELETING, describe(store)


def test_a_failure_is_recorded_whole_or_not_at_all(owner, monkeypatch):
    store = services.create_store(owner, "Atomic Failure", "woocommerce")
    Store.objects.filter(pk=store.pk).update(status=Status.PROVISIONING)
    store.refresh_from_db()
    events = StoreEvent.objects.filter(store=store).count()

    def broken(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        provisioning._fail(store, "Setup did not complete", "setup_job")
    store.refresh_from_db()
    assert store.status == Status.PROVISIONING  # status, timeline event and audit row: all or nothing
    assert StoreEvent.objects.filter(store=store).count() == events


def test_a_superseded_task_does_nothing(owner):
    store = services.create_store(owner, "Old Task", "woocommerce")
    assert provisioning.provision(store.pk, task_id="a-task-that-was-superseded").action == "done"
    store.refresh_from_db()
    assert store.status == Status.PENDING and store.attempts == 0


def test_the_reconciler_queues_a_store_once_and_refreshes_its_lease(owner, cluster):
    store = services.create_store(owner, "Queued Once", "woocommerce")
    Store.objects.filter(pk=store.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    _, first = provisioning.reconcile()
    _, second = provisioning.reconcile()
    assert [pk for pk, _ in first] == [store.pk]
    assert second == []  # its lease was refreshed: no duplicate task eating attempts
    store.refresh_from_db()
    assert store.next_task_id == first[0][1].task_id
    assert store.attempts == 0  # a lost queued task is not an interrupted step


@pytest.mark.django_db(transaction=True)  # the enqueue runs on commit
def test_a_broker_outage_after_commit_still_saves_the_store(owner_api, settings):
    from orchestrator.celery import app

    app.conf.broker_write_url = "redis://127.0.0.1:9/0"  # nothing listens there
    app._after_fork()  # drops the cached producer pools
    try:
        response = owner_api.post("/api/stores/", {"name": "Saved Anyway", "engine": "medusa"}, format="json")
    finally:
        app.conf.broker_write_url = None
        app._after_fork()
    assert response.status_code == 202, response.content
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == Status.PENDING
    assert store.lease_expires_at <= timezone.now()  # the reconciler's next pass queues it


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_by_a_lost_nodes_lingering_connection_is_taken_over(owner):
    store = services.create_store(owner, "Lingering Lock", "woocommerce")
    params = connection.get_connection_params()
    lingering = psycopg.connect(
        **{k: v for k, v in params.items() if k in ("host", "port", "dbname", "user", "password")},
        autocommit=True,
    )
    try:
        lingering.execute("SELECT pg_advisory_lock(%s, %s)", [locking._NAMESPACE, store.pk])
        backend = lingering.execute("SELECT pg_backend_pid()").fetchone()[0]
        # The lost worker registered its connection, then stopped beating (its node is gone).
        WorkerHeartbeat.objects.create(name="lost-node:1", backend_pid=backend, beat_at=timezone.now())
        with locking.store_lock(store.pk) as got:
            assert not got  # a live holder is never taken over
        WorkerHeartbeat.objects.filter(name="lost-node:1").update(beat_at=timezone.now() - dt.timedelta(minutes=5))
        Store.objects.filter(pk=store.pk).update(lease_expires_at=None, status=Status.PROVISIONING)
        assert locking.holder_lost(store.pk)
        with locking.store_lock(store.pk) as got:
            assert got
        assert lingering.closed or lingering.broken or _dead(lingering)
    finally:
        lingering.close()


def _dead(conn) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


# --- on the cluster ---------------------------------------------------------------------------------


@pytest.mark.cluster
def test_retry_of_an_old_store_gets_a_fresh_readiness_clock(owner, cluster, cleanup):
    store = services.create_store(owner, "Old Failure", "woocommerce")
    cleanup.append(store.namespace)
    long_ago = timezone.now() - dt.timedelta(hours=2)
    Store.objects.filter(pk=store.pk).update(
        status=Status.FAILED, failure_reason="cluster", provisioning_started_at=long_ago, created_at=long_ago
    )
    services.retry_store(Store.objects.get(pk=store.pk), owner)
    store = drive(store.pk)
    assert store.status == Status.READY, describe(store)


@pytest.mark.cluster
def test_namespaces_carry_the_installation_and_another_installations_are_left_alone(owner, cluster, settings, cleanup):
    gateway = KubeGateway()
    ours = f"{settings.STORE_NAMESPACE_PREFIX}-{secrets.randbelow(10**6)}-ours"
    theirs = f"{settings.STORE_NAMESPACE_PREFIX}-{secrets.randbelow(10**6)}-theirs"
    cleanup.extend([ours, theirs])
    gateway.ensure_namespace(ours, 424242, owner.pk, "woocommerce")
    labels = gateway.get_namespace(ours).metadata.labels
    assert labels[LABEL_INSTALLATION] == settings.ORCHESTRATOR_INSTALLATION_ID
    # The same store id and owner, but another installation's (sharing the cluster or a restored database).
    settings.ORCHESTRATOR_INSTALLATION_ID = "another-installation"
    gateway.ensure_namespace(theirs, 424243, owner.pk, "woocommerce")
    settings.ORCHESTRATOR_INSTALLATION_ID = labels[LABEL_INSTALLATION]
    with pytest.raises(NamespaceConflict):
        gateway.ensure_namespace(theirs, 424243, owner.pk, "woocommerce")
    with pytest.raises(NamespaceConflict):
        gateway.ensure_namespace(ours, 424242, owner.pk + 1, "woocommerce")  # another owner's
    report, _ = provisioning.reconcile()
    assert ours in report.orphans and theirs not in report.orphans


@pytest.mark.cluster
def test_a_namespace_conflict_fails_the_store_with_a_reason(owner, cluster, cleanup):
    store = services.create_store(owner, "Taken Name", "woocommerce")
    cleanup.append(store.namespace)
    KubeGateway().ensure_namespace(store.namespace, store.pk + 1000, owner.pk, "woocommerce")  # someone else's
    store = drive(store.pk)
    assert store.status == Status.FAILED and store.failure_reason == "cluster"
    assert "does not belong to this store" in store.status_message
    assert AuditEntry.objects.filter(store=store, action=AuditEntry.Action.STORE_FAILED).exists()


@pytest.mark.cluster
def test_workloads_not_ready_within_the_ready_timeout_fail_the_store(owner, cluster, settings, cleanup):
    # The production timeout is 20 minutes; what is tested is that it is measured from the start of
    # provisioning and fails the store with the reason, so the store here starts 21 minutes late.
    store = services.create_store(owner, "Slow Workloads", "woocommerce")
    cleanup.append(store.namespace)
    settings.STORE_SMOKE_TEST = False
    provisioning.provision(store.pk)
    Store.objects.filter(pk=store.pk).update(provisioning_started_at=timezone.now() - dt.timedelta(minutes=21))
    provisioning.check_ready(store.pk)
    store.refresh_from_db()
    assert store.status == Status.FAILED and store.failure_reason == "timeout", describe(store)
    assert "Not ready after 20 minutes" in store.status_message


@pytest.mark.cluster
def test_a_failed_setup_job_fails_the_store_and_a_retry_after_the_fix_is_ready(
    owner, cluster, settings, tmp_path, cleanup
):
    """Every try of the setup Job fails (its pods exit 1 on the simulated node, through the chart's
    setup.podAnnotations): the store fails with the reason. Once the operator has removed the cause (here the
    values file that made it fail) Retry applies a new revision, whose own setup Job completes: ready."""
    failing = tmp_path / "failing-setup.yaml"
    annotations = {"pod-fail.stage.kwok.x-k8s.io/exit-code": "1"}
    failing.write_text(yaml.safe_dump({"setup": {"backoffLimit": 0, "podAnnotations": annotations}}))
    settings.STORE_EXTRA_VALUES = {**settings.STORE_EXTRA_VALUES, "woocommerce": [str(failing)]}
    store = services.create_store(owner, "Broken Setup", "woocommerce")
    cleanup.append(store.namespace)
    store = drive(store.pk)
    assert (store.status, store.failure_reason) == (Status.FAILED, "setup_job"), describe(store)
    assert store.status_message.startswith("Setup did not complete"), store.status_message
    assert AuditEntry.objects.filter(store=store, action=AuditEntry.Action.STORE_FAILED).exists()

    settings.STORE_EXTRA_VALUES = {**settings.STORE_EXTRA_VALUES, "woocommerce": []}
    services.retry_store(store, owner)
    store = drive(store.pk)
    assert store.status == Status.READY, describe(store)
    assert store.helm_revision == 2 and store.failure_reason == ""
    jobs = k8s.BatchV1Api(KubeGateway().core.api_client).list_namespaced_job(store.namespace).items
    names = [job.metadata.name for job in jobs]
    assert len(names) == 1 and names[0].endswith("-setup-2"), f"only the new revision's Job is left: {names}"


@pytest.mark.cluster
def test_a_namespace_that_never_goes_fails_teardown_after_the_timeout(owner, cluster, kube_api_client, cleanup):
    store = services.create_store(owner, "Stuck Namespace", "woocommerce")
    assert drive(store.pk).status == Status.READY
    core = k8s.CoreV1Api(kube_api_client)
    blocker = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="blocker", finalizers=["example.com/hold"]))
    core.create_namespaced_config_map(store.namespace, blocker)
    try:
        services.delete_store(Store.objects.get(pk=store.pk), owner)
        provisioning.teardown(store.pk)  # uninstalls and deletes the namespace, which now cannot finish
        # Deletion was requested 11 minutes ago (production TEARDOWN_TIMEOUT_SECONDS is 10 minutes).
        past = timezone.now() - dt.timedelta(minutes=11)
        Store.objects.filter(pk=store.pk).update(deletion_requested_at=past)
        provisioning.teardown(store.pk)
        store.refresh_from_db()
        assert store.status == Status.FAILED and store.failure_reason == "teardown", describe(store)
        assert f"namespace {store.namespace}" in store.status_message
    finally:
        core.patch_namespaced_config_map("blocker", store.namespace, {"metadata": {"finalizers": None}})
    services.delete_store(Store.objects.get(pk=store.pk), owner)  # a failed teardown can be retried
    assert drive(store.pk, first="teardown").status == Status.DELETED


@pytest.mark.cluster
def test_a_retain_volume_does_not_hold_teardown_or_the_quota_slot(owner, cluster, kube_api_client):
    store = services.create_store(owner, "Retained Data", "woocommerce")
    assert drive(store.pk).status == Status.READY
    core = k8s.CoreV1Api(kube_api_client)
    pv_name = f"retained-{store.namespace}"
    core.create_persistent_volume(
        k8s.V1PersistentVolume(
            metadata=k8s.V1ObjectMeta(name=pv_name),
            spec=k8s.V1PersistentVolumeSpec(
                capacity={"storage": "1Gi"},
                access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                host_path=k8s.V1HostPathVolumeSource(path=f"/tmp/{pv_name}"),
                claim_ref=k8s.V1ObjectReference(namespace=store.namespace, name="kept-data"),
            ),
        )
    )
    try:
        claim = k8s.V1PersistentVolumeClaim(
            metadata=k8s.V1ObjectMeta(name="kept-data"),
            spec=k8s.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name="",
                volume_name=pv_name,
                resources=k8s.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        )
        core.create_namespaced_persistent_volume_claim(store.namespace, claim)
        services.delete_store(Store.objects.get(pk=store.pk), owner)
        store = drive(store.pk, first="teardown", timeout=180)
        assert store.status == Status.DELETED, describe(store)
        assert services.live_store_count(owner) == 0  # the quota slot is free
        assert any(pv_name in m and "Retain" in m for _, _, m in timeline(store)), timeline(store)
        assert core.read_persistent_volume(pv_name).spec.persistent_volume_reclaim_policy == "Retain"  # kept
    finally:
        core.delete_persistent_volume(pv_name)


def test_only_a_store_whose_own_helm_operation_was_cut_off_counts_an_attempt(owner):
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    victim = services.create_store(owner, "Killed In Helm", "woocommerce")
    bystander = services.create_store(owner, "Just In Flight", "woocommerce")
    Store.objects.filter(pk__in=[victim.pk, bystander.pk]).update(status=Status.PROVISIONING, lease_expires_at=None)
    Store.objects.filter(pk=victim.pk).update(
        helm_operation="install", helm_operation_owner=f"{socket.gethostname()}:{gone.pid}"
    )
    for store in Store.objects.filter(pk__in=[victim.pk, bystander.pk]):
        assert provisioning._resume(store, timezone.now()).action == "provision"
    assert Store.objects.get(pk=victim.pk).attempts == 1
    assert Store.objects.get(pk=bystander.pk).attempts == 0
    # Counted once: resumed again before a new operation of its own was lost, it counts nothing more.
    Store.objects.filter(pk=victim.pk).update(lease_expires_at=None)
    provisioning._resume(Store.objects.get(pk=victim.pk), timezone.now())
    assert Store.objects.get(pk=victim.pk).attempts == 1
    # A store whose work keeps killing its worker ends failed with the reason, instead of looping.
    Store.objects.filter(pk=victim.pk).update(attempts=6)
    provisioning.provision(victim.pk)
    victim.refresh_from_db()
    assert victim.status == Status.FAILED and victim.failure_reason == "attempts_exhausted", describe(victim)
