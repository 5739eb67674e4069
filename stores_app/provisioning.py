"""The worker side of a store's life: provision, watch readiness, tear down, reconcile.

Each step first observes what is there (store row, namespace, Secret, Helm
release, workloads), reduces it to one state and takes the one action that state
calls for, so running any step twice is harmless. A step never sleeps waiting
for the cluster: it returns a `Next` telling the task layer when to look again,
which keeps worker slots free while stores come up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import audit
from .helm import HelmError, HelmGateway, ReleaseState, ReleaseStatus
from .kube import (
    LABEL_ENGINE,
    LABEL_INSTALLATION,
    LABEL_MANAGED_BY,
    LABEL_STORE_ID,
    MANAGED_BY,
    KubeError,
    KubeGateway,
    NotManaged,
)
from .locking import is_locked, store_lock
from .models import ACTIVE_STATUSES, AuditEntry, OrphanNamespace, Status, Store, StoreEvent
from .services import add_event, admin_email

log = logging.getLogger(__name__)
Step = StoreEvent.Step
Outcome = StoreEvent.Outcome


@dataclass(frozen=True)
class Next:
    """What the task layer should schedule after a step."""

    action: str  # "done" | "provision" | "check_ready" | "teardown"
    delay: float = 0.0


DONE = Next("done")


class StepFailed(Exception):
    """A permanent failure of the current step, with a short reason category for metrics."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _backoff(attempt: int) -> float:
    return float(min(60, 3 * 2 ** max(0, attempt - 1)))


def _lease(store: Store, seconds: float) -> None:
    Store.objects.filter(pk=store.pk).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=seconds + 60))


def _fail(store: Store, message: str, reason: str) -> Next:
    won = Store.objects.filter(pk=store.pk, status=store.status).update(
        status=Status.FAILED,
        status_message=message[:2000],
        failure_reason=reason[:40],
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    if won:
        add_event(store, Step.FAILED, Outcome.FAILED, message)
        audit.record(
            AuditEntry.Action.STORE_FAILED,
            outcome=AuditEntry.Outcome.FAILED,
            store=store,
            actor_name="system",
            reason=reason,
            message=message[:500],
        )
        log.warning("store failed", extra={"store_id": store.pk, "reason": reason})
    return DONE


def _set_message(store: Store, message: str) -> None:
    Store.objects.filter(pk=store.pk).update(status_message=message[:2000], updated_at=timezone.now())


def _last_event(store: Store):
    return store.events.order_by("-created_at", "-id").first()


def _event_once(store: Store, step: str, outcome: str, message: str) -> None:
    """Add an event unless the timeline already ends with the same one (keeps re-runs quiet)."""
    last = _last_event(store)
    if last is None or (last.step, last.outcome, last.message) != (step, outcome, message):
        add_event(store, step, outcome, message)


def chart_values(store: Store) -> dict:
    values = {
        "store": {"id": str(store.pk), "host": store.host},
        "existingSecret": store.secret_name,
        "admin": {"username": "admin", "email": admin_email(store)},
        "ingress": {
            "className": settings.STORE_INGRESS_CLASS,
            "tls": {
                "enabled": bool(settings.STORE_TLS_CLUSTER_ISSUER),
                "clusterIssuer": settings.STORE_TLS_CLUSTER_ISSUER,
            },
        },
        # The store's NetworkPolicies admit the ingress controller that serves its class, and only it.
        "networkPolicy": {
            "ingressController": {
                "namespaces": settings.STORE_INGRESS_NAMESPACES,
                "podLabels": settings.STORE_INGRESS_POD_LABELS,
            }
        },
    }
    return _merge(_extra_values(store.engine), values)


def _extra_values(engine: str) -> dict:
    import yaml

    merged: dict = {}
    for path in settings.STORE_EXTRA_VALUES.get(engine, []):
        with open(path) as fh:
            merged = _merge(merged, yaml.safe_load(fh) or {})
    return merged


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# --- provisioning ---------------------------------------------------------------------------


@contextlib.contextmanager
def _owned_store(store_id: int, *statuses: str) -> Iterator[Store | None]:
    """Hold the store's lock and yield the store if it is in one of `statuses`; otherwise yield None.

    None means there is nothing to do here: another worker holds the lock (and will schedule what
    follows), or the store has moved on (deleted, ready, failed) since this task was queued.
    """
    with store_lock(store_id) as got:
        yield Store.objects.filter(pk=store_id, status__in=statuses).first() if got else None


def provision(store_id: int) -> Next:
    with _owned_store(store_id, Status.PENDING, Status.PROVISIONING) as store:
        if store is None:
            return DONE
        Store.objects.filter(pk=store.pk).update(
            status=Status.PROVISIONING,
            attempts=F("attempts") + 1,
            lease_expires_at=None,
            provisioning_started_at=store.provisioning_started_at or timezone.now(),
            updated_at=timezone.now(),
        )
        store.refresh_from_db()
        if store.attempts > settings.PROVISION_MAX_ATTEMPTS:
            return _fail(
                store,
                f"Gave up after {settings.PROVISION_MAX_ATTEMPTS} attempts: {store.status_message or 'no progress'}",
                "attempts_exhausted",
            )
        try:
            fresh = _ensure_namespace(store)
            _ensure_credentials(store)
            _ensure_release(store, fresh_namespace=fresh)
        except StepFailed as exc:
            return _fail(store, str(exc), exc.reason)
        except (KubeError, HelmError) as exc:
            if not exc.temporary:
                return _fail(store, str(exc), "helm" if isinstance(exc, HelmError) else "cluster")
            delay = _backoff(store.attempts)
            _event_once(store, Step.HELM_INSTALL, Outcome.WAITING, f"{exc}; retrying in {delay:.0f}s")
            _set_message(store, f"Temporary problem: {exc}; retrying")
            _lease(store, delay)
            return Next("provision", delay)
        _set_message(store, "Installed; waiting for the workloads")
        interval = settings.READY_CHECK_INTERVAL_SECONDS
        _lease(store, interval)
        return Next("check_ready", interval)


def _ensure_namespace(store: Store) -> bool:
    kube = KubeGateway()
    created = kube.ensure_namespace(store.namespace, store.pk, store.owner_id, store.engine)
    kube.ensure_role_binding(store.namespace)
    _event_once(
        store, Step.NAMESPACE, Outcome.SUCCEEDED, f"Namespace {store.namespace} {'created' if created else 'in place'}"
    )
    return created


def _ensure_credentials(store: Store) -> None:
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_STORE_ID: str(store.pk), LABEL_ENGINE: store.engine}
    created = KubeGateway().ensure_credentials(store.namespace, store.secret_name, store.engine, labels)
    _event_once(store, Step.SECRETS, Outcome.SUCCEEDED, "Credentials generated" if created else "Credentials in place")


def _ensure_release(store: Store, fresh_namespace: bool = False) -> None:
    """Reduce Helm's record of the release to one state and take the action it calls for.

    A namespace created a moment ago holds no release, so its `helm status` call is skipped: it
    held a worker slot for a second per store, the orchestrator's largest cost in the benchmark.
    """
    helm = HelmGateway()
    status = ReleaseStatus(ReleaseState.ABSENT) if fresh_namespace else helm.status(store.namespace, store.release_name)
    if status.state == ReleaseState.DEPLOYED:
        failed = KubeGateway().readiness(store.namespace, store.release_name).failed
        if not failed:
            _record_revision(store, status.revision, "Release deployed")
            return
        # A setup Job of this revision failed (a retry after such a failure): a new revision,
        # whose Jobs are named after it, runs the setup again.
    if status.state == ReleaseState.PENDING:
        if status.age_seconds() < settings.HELM_STALE_PENDING_SECONDS:
            raise HelmError(f"Another helm operation is in progress ({status.raw_status})", temporary=True)
        _repair_pending(store, helm, status)
    elif status.state == ReleaseState.UNINSTALLING or (
        status.state == ReleaseState.FAILED and not status.has_deployed_history
    ):
        # A failed first install (or a half-done uninstall) cannot be upgraded: clear it first.
        helm.uninstall(store.namespace, store.release_name)
        _record_repair(store, f"Removed {status.raw_status} release before installing again")
    add_event(store, Step.HELM_INSTALL, Outcome.STARTED, f"helm upgrade --install {store.engine} chart")
    revision = helm.install_or_upgrade(store.namespace, store.release_name, store.engine, chart_values(store))
    _record_revision(store, revision, f"Release revision {revision} applied")


def _repair_pending(store: Store, helm: HelmGateway, status) -> None:
    if status.has_deployed_history:
        helm.rollback(store.namespace, store.release_name)
        _record_repair(store, f"Rolled back release stuck in {status.raw_status}")
    else:
        helm.uninstall(store.namespace, store.release_name)
        _record_repair(store, f"Uninstalled release stuck in {status.raw_status}")


def _record_repair(store: Store, message: str) -> None:
    add_event(store, Step.REPAIR, Outcome.SUCCEEDED, message)
    audit.record(AuditEntry.Action.STORE_REPAIR, store=store, actor_name="system", message=message)


def _record_revision(store: Store, revision: int | None, message: str) -> None:
    Store.objects.filter(pk=store.pk).update(helm_revision=revision)
    _event_once(store, Step.HELM_INSTALL, Outcome.SUCCEEDED, message)


# --- readiness ------------------------------------------------------------------------------


def check_ready(store_id: int) -> Next:
    with _owned_store(store_id, Status.PROVISIONING) as store:
        if store is None:
            return DONE
        started = store.provisioning_started_at or store.created_at
        elapsed = (timezone.now() - started).total_seconds()
        try:
            readiness = KubeGateway().readiness(store.namespace, store.release_name)
        except KubeError as exc:
            if not exc.temporary:
                return _fail(store, str(exc), "cluster")
            return _wait(store, f"Cluster not reachable ({exc})", Step.WORKLOADS, elapsed)
        if readiness.failed:
            return _fail(store, f"Setup did not complete: {readiness.summary()}", "setup_job")
        if not readiness.ready:
            if elapsed > settings.READY_TIMEOUT_SECONDS:
                return _fail(
                    store,
                    f"Not ready after {settings.READY_TIMEOUT_SECONDS // 60} minutes: {readiness.summary()}",
                    "timeout",
                )
            return _wait(store, readiness.summary().capitalize(), Step.WORKLOADS, elapsed)
        _event_once(store, Step.WORKLOADS, Outcome.SUCCEEDED, "All workloads ready and setup jobs complete")
        if settings.STORE_SMOKE_TEST:
            try:
                HelmGateway().test(store.namespace, store.release_name)
            except HelmError as exc:
                if exc.temporary and elapsed <= settings.READY_TIMEOUT_SECONDS:
                    return _wait(store, f"Smoke test could not run yet ({exc})", Step.SMOKE_TEST, elapsed)
                return _fail(store, f"Smoke test failed: {exc}", "smoke_test")
            _event_once(store, Step.SMOKE_TEST, Outcome.SUCCEEDED, "helm test passed (the chart's order smoke test)")
        return _mark_ready(store)


def _wait(store: Store, message: str, step: str, elapsed: float) -> Next:
    _event_once(store, step, Outcome.WAITING, message)
    _set_message(store, message)
    # Look often at first, then every 10 s: stores come up in seconds to minutes.
    interval = min(10.0, settings.READY_CHECK_INTERVAL_SECONDS + elapsed / 30)
    _lease(store, interval)
    return Next("check_ready", interval)


def _mark_ready(store: Store) -> Next:
    won = Store.objects.filter(pk=store.pk, status=Status.PROVISIONING).update(
        status=Status.READY,
        status_message="Ready",
        failure_reason="",
        attempts=0,
        ready_at=timezone.now(),
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    if won:
        add_event(store, Step.READY, Outcome.SUCCEEDED, f"Store ready at {store.url}")
        audit.record(AuditEntry.Action.STORE_READY, store=store, actor_name="system")
    return DONE


# --- teardown -------------------------------------------------------------------------------


def teardown(store_id: int) -> Next:
    with _owned_store(store_id, Status.DELETING) as store:
        if store is None:
            return DONE
        Store.objects.filter(pk=store.pk).update(attempts=F("attempts") + 1, lease_expires_at=None)
        store.refresh_from_db()
        try:
            return _teardown_step(store)
        except NotManaged as exc:
            return _fail(store, str(exc), "teardown")
        except (KubeError, HelmError) as exc:
            if not exc.temporary and store.attempts > settings.PROVISION_MAX_ATTEMPTS:
                return _fail(store, f"Teardown failed: {exc}", "teardown")
            delay = _backoff(min(store.attempts, 5))
            _event_once(store, Step.TEARDOWN_RELEASE, Outcome.WAITING, f"{exc}; retrying in {delay:.0f}s")
            _lease(store, delay)
            return Next("teardown", delay)


def _teardown_step(store: Store) -> Next:
    kube = KubeGateway()
    namespace = kube.get_namespace(store.namespace) if store.namespace else None
    if namespace is not None and namespace.status.phase != "Terminating":
        removed = HelmGateway().uninstall(store.namespace, store.release_name)
        _event_once(
            store,
            Step.TEARDOWN_RELEASE,
            Outcome.SUCCEEDED,
            "Release uninstalled" if removed else "No release to uninstall",
        )
        kube.delete_namespace(store.namespace)
        add_event(store, Step.TEARDOWN_NAMESPACE, Outcome.STARTED, f"Deleting namespace {store.namespace}")
        namespace = kube.get_namespace(store.namespace)
    leftovers = kube.leftover_volumes(store.namespace) if store.namespace else []
    if namespace is not None or leftovers:
        started = store.updated_at
        waiting_for = f"namespace {store.namespace}" if namespace is not None else ", ".join(leftovers)
        if (timezone.now() - started).total_seconds() > settings.TEARDOWN_TIMEOUT_SECONDS:
            raise KubeError(f"Still waiting for {waiting_for} to be deleted", temporary=False)
        _event_once(store, Step.TEARDOWN_NAMESPACE, Outcome.WAITING, f"Waiting for {waiting_for} to go")
        _lease(store, 2)
        return Next("teardown", 2)
    won = Store.objects.filter(pk=store.pk, status=Status.DELETING).update(
        status=Status.DELETED,
        status_message="Deleted",
        deleted_at=timezone.now(),
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    if won:
        add_event(store, Step.DELETED, Outcome.SUCCEEDED, "Namespace, release, volumes and secrets are gone")
    return DONE


# --- reconciliation -------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    resumed: list[int]
    vanished: list[int]
    orphans: list[str]


def reconcile() -> tuple[ReconcileReport, list[tuple[int, Next]]]:
    """Resume stores nobody is working on, fail ready stores whose namespace vanished, report orphans.

    Never deletes anything in the cluster.
    """
    now = timezone.now()
    report = ReconcileReport(resumed=[], vanished=[], orphans=[])
    follow_ups: list[tuple[int, Next]] = []
    stale = Store.objects.filter(status__in=ACTIVE_STATUSES).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )
    for store in stale:
        if is_locked(store.pk):
            continue  # a live task holds it
        report.resumed.append(store.pk)
        # Provisioning is re-entrant: it re-observes everything and continues where the store is.
        action = "teardown" if store.status == Status.DELETING else "provision"
        follow_ups.append((store.pk, Next(action)))
    managed = KubeGateway().list_managed_namespaces()
    for store in Store.objects.filter(status=Status.READY):
        if store.namespace not in managed:
            report.vanished.append(store.pk)
            _fail(
                store,
                f"Namespace {store.namespace} vanished from the cluster; the store is not serving. "
                "Retry to rebuild it or delete it.",
                "namespace_vanished",
            )
    accounted = set(Store.objects.live().exclude(namespace=None).values_list("namespace", flat=True))
    for name, labels in managed.items():
        # Another installation's namespaces (one cluster, two orchestrators; a restored database) are not ours.
        if name not in accounted and labels.get(LABEL_INSTALLATION) == settings.ORCHESTRATOR_INSTALLATION_ID:
            report.orphans.append(name)
            OrphanNamespace.objects.update_or_create(name=name, defaults={"labels": labels, "last_seen": now})
    OrphanNamespace.objects.exclude(name__in=report.orphans).delete()
    if report.resumed or report.vanished or report.orphans:
        log.info(
            "reconciled", extra={"resumed": report.resumed, "vanished": report.vanished, "orphans": report.orphans}
        )
    return report, follow_ups
