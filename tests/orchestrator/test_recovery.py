"""Crash recovery with a real worker: kill it (SIGKILL, the whole process group) in the middle of
provisioning; a new worker's start-up reconciliation resumes the store, which ends ready, with no
release left pending. The scripted helm only slows the install down so the kill lands inside it."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import pytest

from stores_app.kube import KubeGateway
from stores_app.models import Status, Store, StoreEvent
from tests.conftest import WorkerProcess, wait_for_status, worker_env

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FAKE_HELM = Path(__file__).resolve().parents[1] / "fakes" / "helm"


def test_worker_killed_mid_install_store_still_ends_ready(
    as_orchestrator, kube_cluster, transactional_db, tmp_path, owner_api
):
    script = tmp_path / "helm-script.json"
    # The first install sleeps long enough to be killed inside helm's run.
    script.write_text(json.dumps([{"command": "upgrade", "sleep": 30, "then_real": True}]))
    env = worker_env(
        as_orchestrator,
        tmp_path,
        HELM_BIN=str(FAKE_HELM),
        FAKE_HELM_SCRIPT=str(script),
        REAL_HELM=kube_cluster.helm,
        FAKE_HELM_PYTHON=sys.executable,
        HELM_STALE_PENDING_SECONDS="5",
    )
    first = WorkerProcess(env, tmp_path / "worker-1.log").start()
    try:
        response = owner_api.post("/api/stores/", {"name": "Crash Test", "engine": "woocommerce"}, format="json")
        store_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while not StoreEvent.objects.filter(store_id=store_id, step="helm_install", outcome="started").exists():
            assert time.monotonic() < deadline, "install never started"
            time.sleep(0.2)
        time.sleep(1)
        first.kill()
    finally:
        first.stop()
    assert Store.objects.get(pk=store_id).status == Status.PROVISIONING

    second = WorkerProcess(env, tmp_path / "worker-2.log").start()
    try:
        store = wait_for_status(store_id, {Status.READY, Status.FAILED}, timeout=300)
        assert store.status == Status.READY, store.status_message
        release = kube_cluster.run(kube_cluster.helm, "status", store.release_name, "-n", store.namespace, "-o", "json")
        assert json.loads(release.stdout)["info"]["status"] == "deployed"
    finally:
        second.stop()
        KubeGateway().delete_namespace(Store.objects.get(pk=store_id).namespace)


def test_ready_store_whose_namespace_vanished_is_failed_not_deleted(kube_cluster, db, owner, settings):
    from stores_app import provisioning, services
    from stores_app.kube import reset_client

    settings.KUBECONFIG = kube_cluster.kubeconfig
    reset_client()
    store = services.create_store(owner, "Vanishing Shop", "woocommerce")
    Store.objects.filter(pk=store.pk).update(status=Status.READY)
    report, _ = provisioning.reconcile()
    store.refresh_from_db()
    assert store.pk in report.vanished
    assert store.status == Status.FAILED and "vanished" in store.status_message


def test_unaccounted_managed_namespace_is_reported_never_deleted(kube_cluster, db, settings):
    from stores_app import provisioning
    from stores_app.kube import reset_client
    from stores_app.models import OrphanNamespace

    settings.KUBECONFIG = kube_cluster.kubeconfig
    reset_client()
    gateway = KubeGateway()
    name = f"store-{secrets.randbelow(10**6)}-orphan"  # unique: a previous run's may still be terminating
    gateway.ensure_namespace(name, 999999, 1, "woocommerce")
    try:
        report, _ = provisioning.reconcile()
        assert name in report.orphans
        assert OrphanNamespace.objects.filter(name=name).exists()
        assert gateway.get_namespace(name) is not None
    finally:
        gateway.delete_namespace(name)


def test_orchestrator_refuses_to_delete_namespaces_it_does_not_manage(kube_cluster, settings):
    from stores_app.kube import NotManaged, reset_client

    settings.KUBECONFIG = kube_cluster.kubeconfig
    reset_client()
    with pytest.raises(NotManaged):
        KubeGateway().delete_namespace("kube-system")
    assert KubeGateway().get_namespace("kube-system") is not None
