"""Orphaned namespaces are adopted or deleted from the dashboard through the worker. The web request only
records staff's decision (web's own ServiceAccount could not touch a namespace); the worker, under the
orchestrator's least-privilege ServiceAccount, carries it out; the dashboard and the audit log show how
it went, a failure included."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest
from django.utils import timezone
from kubernetes import client

from stores_app import provisioning, services
from stores_app.kube import KubeError, KubeGateway, reset_client
from stores_app.models import AuditEntry, OrphanNamespace
from tests.conftest import csrf_post
from tests.deploy.test_least_privilege import delete_as_admin


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
    return result


@pytest.fixture
def namespaces(as_orchestrator, kube_api_client):
    """make(suffix) -> a namespace the orchestrator made for a store that no longer exists."""
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"store-{secrets.randbelow(10**6)}-{suffix}"
        gateway = KubeGateway()
        gateway.ensure_namespace(name, 900000 + len(made), 1, "medusa")
        gateway.ensure_role_binding(name)
        made.append(name)
        return name

    yield make
    for name in made:
        delete_as_admin(kube_api_client, name)


def row(name: str) -> OrphanNamespace | None:
    return OrphanNamespace.objects.filter(name=name).first()


def audit_steps(name: str) -> list[tuple[str, str, str]]:
    entries = AuditEntry.objects.filter(details__namespace=name).order_by("id")
    return [(e.action, e.outcome, e.details.get("step", "")) for e in entries]


def startup_scan_done(worker) -> None:
    """The worker scans once when it starts and drops rows it does not find; let that pass first."""
    wait_until(lambda: "reconcile_stores" in worker.log_path.read_text(), 60, "the start-up scan")
    wait_until(lambda: "succeeded" in worker.log_path.read_text(), 60, "the start-up scan to finish")


def orphan_cell(staff_client, name: str) -> str:
    page = staff_client.get("/").content.decode()
    start = page.index(f'data-orphan="{name}"')
    return page[start : page.index("</tr>", start)]


@pytest.mark.cluster
@pytest.mark.slow
def test_staff_delete_and_adopt_orphans_through_the_worker(
    celery_worker, as_orchestrator, namespaces, staff, staff_client, kube_api_client, settings
):
    doomed, kept = namespaces("orphan"), namespaces("adoptee")
    startup_scan_done(celery_worker)
    report, _ = provisioning.reconcile()
    assert {doomed, kept} <= set(report.orphans)

    # The web process could not do this itself: its identity has no rights on namespaces.
    settings.KUBECONFIG = as_orchestrator.web_kubeconfig
    reset_client()
    with pytest.raises(KubeError, match="403"):
        KubeGateway().delete_namespace(doomed)

    response = csrf_post(staff_client, f"/orphans/{row(doomed).pk}", {"action": "delete", "confirm_name": doomed})
    assert response.status_code == 302
    assert csrf_post(staff_client, f"/orphans/{row(kept).pk}", {"action": "adopt"}).status_code == 302
    # The worker carries both out: the deleted one stays listed as being deleted until it is gone...
    deleting = wait_until(lambda: (found := row(doomed)) and found.requested_at is None and found, 90, "deletion")
    assert deleting.requested_action == "delete" and deleting.action_error == ""
    assert "Being deleted" in orphan_cell(staff_client, doomed)
    core = client.CoreV1Api(kube_api_client)
    gone_or_going = core.list_namespace(field_selector=f"metadata.name={doomed}").items
    assert not gone_or_going or gone_or_going[0].status.phase == "Terminating"
    # ...the adopted one leaves the list, is kept, and neither identity has rights in it any more.
    wait_until(lambda: row(kept) is None, 90, "the adoption")
    assert f'data-orphan="{kept}"' not in staff_client.get("/").content.decode()
    namespace = core.read_namespace(kept)
    assert namespace.status.phase == "Active"
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "adopted-by-operator"
    bindings = client.RbacAuthorizationV1Api(kube_api_client).list_namespaced_role_binding(kept).items
    assert not {b.metadata.name for b in bindings} & {"store-orchestrator", "store-orchestrator-web"}

    for name, action in ((doomed, "orphan.delete"), (kept, "orphan.adopt")):
        assert audit_steps(name) == [(action, "success", "requested"), (action, "success", "done")]
        requested, done = AuditEntry.objects.filter(details__namespace=name).order_by("id")
        assert requested.actor == staff and requested.address == "127.0.0.1"
        assert done.actor == staff  # carried out for the staff member who asked

    wait_until(lambda: not core.list_namespace(field_selector=f"metadata.name={doomed}").items, 120, "deletion")
    settings.KUBECONFIG = as_orchestrator.kubeconfig
    reset_client()
    provisioning.reconcile()
    assert row(doomed) is None


@pytest.mark.cluster
@pytest.mark.slow
def test_a_refused_action_is_shown_and_can_be_asked_again(celery_worker, namespaces, staff_client, kube_api_client):
    """An operator took a reported namespace over by hand (relabelled it) before staff chose to delete
    it: the worker refuses, the dashboard says why and offers the actions again, the audit log records
    the failure, and the namespace is untouched."""
    taken = namespaces("taken-over")
    startup_scan_done(celery_worker)
    provisioning.reconcile()
    orphan = row(taken)
    relabel = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "the-ops-team"}}}
    client.CoreV1Api(kube_api_client).patch_namespace(taken, relabel)

    response = csrf_post(staff_client, f"/orphans/{orphan.pk}", {"action": "delete", "confirm_name": taken})
    assert response.status_code == 302
    failed = wait_until(lambda: (found := row(taken)) and found.action_error and found, 90, "the worker's refusal")
    assert "not managed by the store orchestrator" in failed.action_error and failed.requested_action == ""
    cell = orphan_cell(staff_client, taken)
    assert "Last attempt failed: Refusing to delete namespace" in cell and 'value="delete"' in cell
    assert audit_steps(taken)[-1] == ("orphan.delete", "failed", "")
    assert client.CoreV1Api(kube_api_client).read_namespace(taken).status.phase == "Active"


@pytest.mark.cluster
def test_the_scan_reports_only_this_installations_namespaces(namespaces, kube_api_client, as_orchestrator, db):
    """Another orchestrator in the same cluster (or one started on a restored copy of the database) has
    namespaces labelled as managed too: they are not this one's orphans to adopt or delete."""
    ours = namespaces("ours")
    core = client.CoreV1Api(kube_api_client)
    others = []
    for installation in ("someone-else", None):  # another installation's; one from before the label
        labels = {"app.kubernetes.io/managed-by": "store-orchestrator", "store-orchestrator.io/store-id": "7"}
        if installation:
            labels["store-orchestrator.io/installation"] = installation
        name = f"store-{secrets.randbelow(10**6)}-theirs"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        others.append(name)
    try:
        report, _ = provisioning.reconcile()
        assert ours in report.orphans
        assert not set(others) & set(report.orphans)
        assert not OrphanNamespace.objects.filter(name__in=others).exists()
    finally:
        for name in others:
            delete_as_admin(kube_api_client, name)


# --- the request side alone ----------------------------------------------------------------------


@pytest.fixture
def orphan(db):
    return OrphanNamespace.objects.create(name="store-9-left-over", labels={}, last_seen=timezone.now())


def test_a_second_request_while_one_is_under_way_is_refused(orphan, staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        services.request_orphan_action(orphan, "delete", staff)
        with pytest.raises(services.Conflict, match="already has a request under way"):
            services.request_orphan_action(orphan, "adopt", staff)
    assert len(queued) == 1
    orphan.refresh_from_db()
    assert orphan.requested_action == "delete"


def test_a_request_that_never_ran_may_be_made_again(orphan, staff, django_capture_on_commit_callbacks):
    """The broker lost the task: after a while staff may ask again instead of waiting for ever."""
    services.request_orphan_action(orphan, "delete", staff)
    stale = timezone.now() - dt.timedelta(seconds=services.ORPHAN_REQUEST_STALE_SECONDS + 1)
    OrphanNamespace.objects.filter(pk=orphan.pk).update(requested_at=stale)
    assert services.orphans_for_staff().get(pk=orphan.pk).open
    with django_capture_on_commit_callbacks() as queued:
        services.request_orphan_action(orphan, "adopt", staff)
    assert len(queued) == 1


def test_delete_needs_the_typed_name_and_changes_nothing_without_it(orphan, staff_client):
    response = csrf_post(staff_client, f"/orphans/{orphan.pk}", {"action": "delete", "confirm_name": "wrong"})
    assert response.status_code == 302
    orphan.refresh_from_db()
    assert orphan.requested_action == "" and not AuditEntry.objects.exists()
    assert csrf_post(staff_client, f"/orphans/{orphan.pk}", {"action": "explode"}).status_code == 302
    orphan.refresh_from_db()
    assert orphan.requested_action == ""
