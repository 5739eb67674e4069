"""The worker side of a store's life: provision, watch readiness, tear down, reconcile.

Each step first observes what is there (store row, namespace, Secret, Helm
release, workloads), reduces it to one state and takes the one action that state
calls for (stores_app/decisions.py), so running any step twice is harmless. A step
never sleeps waiting for the cluster: it returns a `Next` telling the task layer when
to look again, which keeps worker slots free while stores come up.

Every step runs under the store's lock and only as the store's one current task
(`Store.next_task_id`): a superseded duplicate does nothing, and the current task that
finds the lock busy (a delete arriving during an install) looks again shortly instead
of being lost. Status changes are compare-and-swaps, so a step never undoes a delete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import audit
from .decisions import (
    NamespaceState,
    ObservedRelease,
    ObservedTeardown,
    PendingOwner,
    ReleaseAction,
    ReleaseLimits,
    TeardownAction,
    UnknownReleaseState,
    decide_release,
    decide_teardown,
)
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
from .locking import holder_lost, is_locked, owner_alive, process_name, store_lock
from .models import (
    ACTIVE_STATUSES,
    WATCHED_STATUSES,
    AuditEntry,
    OrphanNamespace,
    Status,
    Store,
    StoreEvent,
    WorkerHeartbeat,
)
from .services import QUEUED_LEASE_SECONDS, add_event, admin_email

log = logging.getLogger(__name__)
Step = StoreEvent.Step
Outcome = StoreEvent.Outcome


@dataclass(frozen=True)
class Next:
    """What the task layer should schedule after a step: `action` after `delay`, as task `task_id`."""

    action: str  # "done" | "provision" | "check_ready" | "teardown"
    delay: float = 0.0
    task_id: str = ""


DONE = Next("done")
# A queued task normally starts within seconds of its countdown; past this margin the reconciler takes
# it for lost (a Redis that lost its data, a worker killed while holding it) and queues the store again.
LEASE_MARGIN_SECONDS = 30
BUSY_RETRY_SECONDS = 2.0


class StepFailed(Exception):
    """A permanent failure of the current step, with a short reason category for metrics."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class ReleaseBusy(Exception):
    """A live helm operation owns the release: not an error, look again soon (bounded by time)."""


def _retry_delay(trouble_seconds: float) -> float:
    """Look again soon at first, then every 30 s: most trouble (a killed helm, a busy release) clears in seconds."""
    return float(min(30.0, 2.0 + trouble_seconds / 2))


def _schedule(store: Store, action: str, delay: float, *statuses: str, task_id: str | None = None) -> Next:
    """Make `action` after `delay` the store's one next task, unless the store moved on (compare-and-swap on
    its status, and on the current task id when given): then there is nothing to schedule."""
    matching = Store.objects.filter(pk=store.pk, status__in=statuses)
    if task_id is not None:
        matching = matching.filter(next_task_id=task_id)
    next_id = str(uuid.uuid4())
    won = matching.update(
        next_task_id=next_id, lease_expires_at=timezone.now() + dt.timedelta(seconds=delay + LEASE_MARGIN_SECONDS)
    )
    return Next(action, delay, next_id) if won else DONE


def _fail(store: Store, message: str, reason: str) -> Next:
    """Fail the store, if it is still where this step found it: status, timeline and audit in one transaction."""
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=store.status).update(
            status=Status.FAILED,
            status_message=message[:2000],
            failure_reason=reason[:40],
            lease_expires_at=None,
            next_task_id="",
            trouble_since=None,
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
    if won:
        log.warning(
            "store %s failed (%s): %s", store.pk, reason, message[:300], extra={"store_id": store.pk, "reason": reason}
        )
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
    """Values for the store's release: the operator's values files of today (STORE_<ENGINE>_VALUES), and over
    them the store's own values, as recorded at its first install (upgrades keep its address and settings)."""
    return _merge(_extra_values(store.engine), store.release_values or store_values(store))


def store_values(store: Store) -> dict:
    """The values the orchestrator sets per store (docs/CONVENTIONS.md), from today's settings. None is secret:
    the chart reads credentials from the Secret named here."""
    return {
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


# The top-level keys of store_values(): what a store's recorded values hold.
STORE_VALUE_KEYS = ("store", "existingSecret", "admin", "ingress", "networkPolicy")


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


# --- one step at a time, as the store's current task ----------------------------------------


def _locked_step(
    store_id: int, task_id: str | None, action: str, statuses: tuple[str, ...], body: Callable[[Store], Next]
) -> Next:
    """Run `body` under the store's lock if this task is the store's current one and the store is in `statuses`.

    In-process callers (tests, the management command) pass no task id and are always current.
    """
    with store_lock(store_id) as got:
        if not got:
            return _when_busy(store_id, task_id, action, statuses)
        store = Store.objects.filter(pk=store_id, status__in=statuses).first()
        if store is None or (task_id and store.next_task_id and store.next_task_id != task_id):
            return DONE  # the store moved on, or this is a superseded duplicate
        return body(store)


def _when_busy(store_id: int, task_id: str | None, action: str, statuses: tuple[str, ...]) -> Next:
    """Another task holds the lock (say, an install when a delete arrives). The holder schedules only
    what it was doing, so the store's current task must not be dropped: it looks again shortly."""
    store = Store.objects.filter(pk=store_id, status__in=statuses).first()
    if store is None or not task_id or store.next_task_id != task_id:
        return DONE
    return _schedule(store, action, BUSY_RETRY_SECONDS, *statuses, task_id=task_id)


def _still(store: Store, status: str) -> bool:
    """Whether the store is still in `status` (a delete may have arrived while this step worked)."""
    return Store.objects.filter(pk=store.pk, status=status).exists()


def _retry_later(store: Store, message: str, action: str, step: str, delay: float | None = None) -> Next:
    """A temporary problem: look again later, for at most TEMPORARY_ERROR_TIMEOUT_SECONDS of trouble in a row."""
    now = timezone.now()
    trouble = (now - (store.trouble_since or now)).total_seconds()
    if trouble > settings.TEMPORARY_ERROR_TIMEOUT_SECONDS:
        minutes = settings.TEMPORARY_ERROR_TIMEOUT_SECONDS / 60
        return _fail(store, f"Gave up after {minutes:.0f} minutes of temporary problems: {message}", "gave_up")
    delay = delay if delay is not None else _retry_delay(trouble)
    Store.objects.filter(pk=store.pk, trouble_since__isnull=True).update(trouble_since=now)
    _event_once(store, step, Outcome.WAITING, f"{message}; retrying in {delay:.0f}s")
    _set_message(store, f"Temporary problem: {message}; retrying")
    return _schedule(store, action, delay, store.status)


# --- provisioning ---------------------------------------------------------------------------


def provision(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "provision", (Status.PENDING, Status.PROVISIONING), _provision)


def _provision(store: Store) -> Next:
    now = timezone.now()
    won = Store.objects.filter(pk=store.pk, status=store.status).update(
        status=Status.PROVISIONING,
        lease_expires_at=None,  # a step in progress: the lock, not a lease, says someone works on it
        provisioning_started_at=store.provisioning_started_at or now,
        updated_at=now,
    )
    if not won:
        return DONE
    store.refresh_from_db()
    if store.attempts > settings.PROVISION_MAX_ATTEMPTS:
        return _fail(
            store,
            f"Its helm operation was cut off {store.attempts} times (the worker running it was lost); last: "
            f"{store.status_message or 'no progress'}",
            "attempts_exhausted",
        )
    elapsed = (now - store.provisioning_started_at).total_seconds()
    if elapsed > settings.READY_TIMEOUT_SECONDS:
        minutes = settings.READY_TIMEOUT_SECONDS // 60
        return _fail(store, f"Not ready after {minutes} minutes: {store.status_message or 'no progress'}", "timeout")
    if not store.release_values:
        # Recorded once, before the first install: every later helm operation (repairs, upgrades) reuses them.
        store.release_values = store_values(store)
        Store.objects.filter(pk=store.pk).update(release_values=store.release_values)
    try:
        fresh = _ensure_namespace(store)
        if _still(store, Status.PROVISIONING):
            _ensure_credentials(store)
        if _still(store, Status.PROVISIONING):
            _ensure_release(store, fresh_namespace=fresh)
    except StepFailed as exc:
        return _fail(store, str(exc), exc.reason)
    except ReleaseBusy as exc:
        return _retry_later(store, str(exc), "provision", Step.HELM_INSTALL, delay=5.0)
    except (KubeError, HelmError) as exc:
        if not exc.temporary:
            return _fail(store, str(exc), "helm" if isinstance(exc, HelmError) else "cluster")
        return _retry_later(store, str(exc), "provision", Step.HELM_INSTALL)
    if not _still(store, Status.PROVISIONING):
        return DONE  # deleted meanwhile: the teardown task, waiting for this lock, takes over
    Store.objects.filter(pk=store.pk).update(
        trouble_since=None, status_message="Installed; waiting for the workloads", updated_at=timezone.now()
    )
    return _schedule(store, "check_ready", settings.READY_CHECK_INTERVAL_SECONDS, Status.PROVISIONING)


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


def _release_limits() -> ReleaseLimits:
    return ReleaseLimits(
        stale_pending_seconds=settings.HELM_STALE_PENDING_SECONDS,
        operation_seconds=settings.HELM_TIMEOUT_SECONDS + 60,
    )


def _ensure_release(store: Store, fresh_namespace: bool = False) -> None:
    """Observe the release, decide (stores_app/decisions.py), act; again after a repair, until installed.

    A namespace created a moment ago holds no release, so its `helm status` call is skipped: it
    held a worker slot for a second per store, the orchestrator's largest cost in the benchmark.
    """
    helm = HelmGateway()
    for _ in range(3):
        seen = ObservedRelease(ReleaseState.ABSENT) if fresh_namespace else _observe_release(store, helm)
        fresh_namespace = False
        try:
            decision = decide_release(seen, _release_limits())
        except UnknownReleaseState as exc:
            raise StepFailed(str(exc), "release_state") from exc
        action = decision.action
        if action == ReleaseAction.KEEP:
            _record_revision(store, seen.revision, "Release deployed")
            return
        if action == ReleaseAction.WAIT:
            raise ReleaseBusy(decision.reason)
        if action in (ReleaseAction.INSTALL, ReleaseAction.UPGRADE):
            add_event(store, Step.HELM_INSTALL, Outcome.STARTED, f"helm upgrade --install {store.engine} chart")
            values = chart_values(store)
            with _helm_operation(store, action.value):
                revision = helm.install_or_upgrade(store.namespace, store.release_name, store.engine, values)
            chart = helm.chart(store.engine).metadata
            _record_revision(
                store, revision, f"Release revision {revision} applied", chart.version, chart.app_version or ""
            )
            return
        if action == ReleaseAction.UNLOCK:
            helm.mark_failed(store.namespace, store.release_name, seen.revision or 0, decision.reason)
            _record_repair(store, f"Unlocked the release (marked failed, to upgrade again): {decision.reason}")
            continue
        with _helm_operation(store, action.value):
            helm.uninstall(store.namespace, store.release_name)
        _record_repair(store, f"Uninstalled the release: {decision.reason}")
    raise HelmError("The release did not settle after a repair; looking again", temporary=True)


def _observe_release(
    store: Store, helm: HelmGateway, status: ReleaseStatus | None = None, setup_matters: bool = True
) -> ObservedRelease:
    """What the release is, reduced for the decision table (`status` when the caller read it already). Whether
    a setup Job failed costs three API calls; an upgrade's decisions do not depend on it (its health gate does)."""
    status = status or helm.status(store.namespace, store.release_name)
    setup_failed = False
    if status.state == ReleaseState.DEPLOYED and setup_matters:
        setup_failed = bool(KubeGateway().readiness(store.namespace, store.release_name).failed)
    owner, operation_age = (
        _pending_owner(store, status) if status.state == ReleaseState.PENDING else (PendingOwner.UNKNOWN, 0.0)
    )
    return ObservedRelease(
        state=status.state,
        raw_status=status.raw_status,
        revision=status.revision,
        age_seconds=status.age_seconds(),
        has_deployed_history=status.has_deployed_history,
        setup_failed=setup_failed,
        owner=owner,
        operation_age_seconds=operation_age,
        chart_version=status.chart_version,
    )


def _pending_owner(store: Store, status: ReleaseStatus) -> tuple[PendingOwner, float]:
    """Whose is this pending release? Ours if our recorded helm operation started before helm last wrote it
    (helm and the operation's owner share a clock: helm runs on the owner's machine)."""
    store.refresh_from_db(fields=["helm_operation", "helm_operation_owner", "helm_operation_started_at"])
    started = store.helm_operation_started_at
    if not store.helm_operation or started is None:
        return PendingOwner.UNKNOWN, 0.0
    if status.updated is not None and status.updated < started - dt.timedelta(seconds=10):
        return PendingOwner.UNKNOWN, 0.0  # written before our last operation: someone else's
    age = (timezone.now() - started).total_seconds()
    if store.helm_operation_owner and owner_alive(store.helm_operation_owner):
        return PendingOwner.OURS_LIVE, age
    return PendingOwner.OURS_GONE, age


@contextlib.contextmanager
def _helm_operation(store: Store, operation: str) -> Iterator[None]:
    """Record a release-writing helm operation and its owner for as long as it runs."""
    me = process_name()
    record = {"helm_operation": operation, "helm_operation_owner": me}
    if operation != ReleaseAction.UNINSTALL.value:
        # Only an operation that writes a new revision restarts the clock that pending revisions are
        # matched against: a repair that was itself lost must not make our own pending-install look
        # like someone else's (and be waited out for the stale window).
        record["helm_operation_started_at"] = timezone.now()
    Store.objects.filter(pk=store.pk).update(**record)
    try:
        yield
    finally:
        try:
            Store.objects.filter(pk=store.pk, helm_operation_owner=me).update(helm_operation_owner="")
        except DatabaseError:
            # Postgres went away meanwhile: the record stays "ours, live" until this process stops beating
            # or the operation outlives helm's own timeout; either way it is decided by time.
            log.warning("could not record the end of a helm operation", extra={"store_id": store.pk})


def _record_repair(store: Store, message: str) -> None:
    with transaction.atomic():
        add_event(store, Step.REPAIR, Outcome.SUCCEEDED, message)
        audit.record(AuditEntry.Action.STORE_REPAIR, store=store, actor_name="system", message=message)


def _record_revision(
    store: Store, revision: int | None, message: str, chart_version: str = "", app_version: str = ""
) -> None:
    versions = {"chart_version": chart_version, "app_version": app_version} if chart_version else {}
    Store.objects.filter(pk=store.pk).update(helm_revision=revision, **versions)
    _event_once(store, Step.HELM_INSTALL, Outcome.SUCCEEDED, message)


# --- readiness ------------------------------------------------------------------------------


def check_ready(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "check_ready", (Status.PROVISIONING,), _check_ready)


def _check_ready(store: Store) -> Next:
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
        return _wait(store, readiness.summary().capitalize(), Step.WORKLOADS, elapsed)
    _event_once(store, Step.WORKLOADS, Outcome.SUCCEEDED, "All workloads ready and setup jobs complete")
    if settings.STORE_SMOKE_TEST:
        try:
            HelmGateway().test(store.namespace, store.release_name)
        except HelmError as exc:
            if exc.temporary:
                return _wait(store, f"Smoke test could not run yet ({exc})", Step.SMOKE_TEST, elapsed)
            return _fail(store, f"Smoke test failed: {exc}", "smoke_test")
        _event_once(store, Step.SMOKE_TEST, Outcome.SUCCEEDED, "helm test passed (the chart's order smoke test)")
    return _mark_ready(store)


def _wait(store: Store, message: str, step: str, elapsed: float) -> Next:
    """Not ready yet (or the cluster is away): look again, until READY_TIMEOUT_SECONDS after provisioning began."""
    if elapsed > settings.READY_TIMEOUT_SECONDS:
        return _fail(store, f"Not ready after {settings.READY_TIMEOUT_SECONDS // 60} minutes: {message}", "timeout")
    _event_once(store, step, Outcome.WAITING, message)
    _set_message(store, message)
    # Look often at first, then every 10 s: stores come up in seconds to minutes.
    interval = min(10.0, settings.READY_CHECK_INTERVAL_SECONDS + elapsed / 30)
    return _schedule(store, "check_ready", interval, Status.PROVISIONING)


def _mark_ready(store: Store) -> Next:
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=Status.PROVISIONING).update(
            status=Status.READY,
            status_message="Ready",
            failure_reason="",
            attempts=0,
            ready_at=timezone.now(),
            lease_expires_at=None,
            next_task_id="",
            trouble_since=None,
            updated_at=timezone.now(),
        )
        if won:
            add_event(store, Step.READY, Outcome.SUCCEEDED, f"Store ready at {store.url}")
            audit.record(AuditEntry.Action.STORE_READY, store=store, actor_name="system")
    return DONE


# --- teardown -------------------------------------------------------------------------------


def teardown(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "teardown", (Status.DELETING,), _teardown)


def _teardown(store: Store) -> Next:
    Store.objects.filter(pk=store.pk).update(lease_expires_at=None)
    try:
        return _teardown_step(store)
    except NotManaged as exc:
        return _fail(store, str(exc), "teardown")
    except (KubeError, HelmError) as exc:
        if not exc.temporary:
            return _fail(store, f"Teardown failed: {exc}", "teardown")
        elapsed = _teardown_elapsed(store)
        if elapsed > settings.TEARDOWN_TIMEOUT_SECONDS:
            return _fail(store, f"Teardown failed: {exc}", "teardown")
        delay = _retry_delay(elapsed)
        _event_once(store, Step.TEARDOWN_RELEASE, Outcome.WAITING, f"{exc}; retrying in {delay:.0f}s")
        return _schedule(store, "teardown", delay, Status.DELETING)


def _teardown_elapsed(store: Store) -> float:
    since = store.deletion_requested_at or store.updated_at
    return (timezone.now() - since).total_seconds()


def _observe_teardown(store: Store, kube: KubeGateway) -> tuple[ObservedTeardown, list[str]]:
    namespace = kube.get_namespace(store.namespace) if store.namespace else None
    if namespace is None:
        state = NamespaceState.ABSENT
    elif namespace.status.phase == "Terminating" or namespace.metadata.deletion_timestamp:
        state = NamespaceState.TERMINATING
    else:
        state = NamespaceState.ACTIVE
    # Volumes decide only once the namespace is gone (decide_teardown): until then the cluster-wide volume
    # list, read at every step, would cost the API server and a worker slot for nothing.
    going, kept = ([], [])
    if store.namespace and state == NamespaceState.ABSENT:
        going, kept = kube.namespace_volumes(store.namespace)
    return ObservedTeardown(state, tuple(going), _teardown_elapsed(store)), kept


def _teardown_step(store: Store) -> Next:
    kube = KubeGateway()
    seen, kept = _observe_teardown(store, kube)
    action = decide_teardown(seen, settings.TEARDOWN_TIMEOUT_SECONDS)
    if action == TeardownAction.REMOVE:
        removed = HelmGateway().uninstall(store.namespace, store.release_name)
        _event_once(
            store,
            Step.TEARDOWN_RELEASE,
            Outcome.SUCCEEDED,
            "Release uninstalled" if removed else "No release to uninstall",
        )
        kube.delete_namespace(store.namespace)
        add_event(store, Step.TEARDOWN_NAMESPACE, Outcome.STARTED, f"Deleting namespace {store.namespace}")
        return _schedule(store, "teardown", 1, Status.DELETING)
    if action == TeardownAction.GIVE_UP:
        return _fail(store, f"Teardown failed: still waiting for {_waiting_for(store, seen)} to be deleted", "teardown")
    if action == TeardownAction.WAIT:
        _event_once(store, Step.TEARDOWN_NAMESPACE, Outcome.WAITING, f"Waiting for {_waiting_for(store, seen)} to go")
        return _schedule(store, "teardown", 2, Status.DELETING)
    return _mark_deleted(store, kept)


def _waiting_for(store: Store, seen: ObservedTeardown) -> str:
    namespace = [f"namespace {store.namespace}"] if seen.namespace != NamespaceState.ABSENT else []
    return ", ".join([*namespace, *seen.going_volumes])


def _mark_deleted(store: Store, kept: list[str]) -> Next:
    message = "Namespace, release, volumes and secrets are gone"
    if kept:
        message = (
            f"Namespace, release and secrets are gone; volume(s) {', '.join(kept)} kept by their Retain reclaim "
            "policy (the cluster operator's choice): delete them to free the storage"
        )
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=Status.DELETING).update(
            status=Status.DELETED,
            status_message="Deleted",
            deleted_at=timezone.now(),
            lease_expires_at=None,
            next_task_id="",
            updated_at=timezone.now(),
        )
        if won:
            add_event(store, Step.DELETED, Outcome.SUCCEEDED, message)
    return DONE


# --- reconciliation -------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    resumed: list[int]
    vanished: list[int]
    orphans: list[str]


def reconcile(resume_queued: bool = False) -> tuple[ReconcileReport, list[tuple[int, Next]]]:
    """Resume stores nobody is working on, fail ready stores whose namespace vanished, report orphans.

    A store is resumed when its lease has expired (its queued task was lost) and no live task holds its
    lock (or the holder stopped beating: a lost node). With `resume_queued` (a worker starting, after a
    crash perhaps) stores whose queued task may have died with the old worker are resumed at once: the
    new task supersedes the old one, which then does nothing. Never deletes anything in the cluster.
    """
    now = timezone.now()
    report = ReconcileReport(resumed=[], vanished=[], orphans=[])
    follow_ups: list[tuple[int, Next]] = []
    active = Store.objects.filter(status__in=ACTIVE_STATUSES)
    if not resume_queued:
        active = active.filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    for store in active:
        nxt = _resume(store, now)
        if nxt.action != "done":
            report.resumed.append(store.pk)
            follow_ups.append((store.pk, nxt))
    managed = KubeGateway().list_managed_namespaces()
    _fail_vanished(report, managed)
    _record_orphans(report, managed, now)
    WorkerHeartbeat.objects.filter(beat_at__lt=now - dt.timedelta(days=1)).delete()
    if report.resumed or report.vanished or report.orphans:
        log.info(
            "reconciled", extra={"resumed": report.resumed, "vanished": report.vanished, "orphans": report.orphans}
        )
    return report, follow_ups


def _resume(store: Store, now: dt.datetime) -> Next:
    """Queue a store's work again as a new task (refreshing its lease, so the next pass does not queue it twice).

    A store whose own helm operation was still open when its worker was lost counts an attempt, so a
    store whose work kills its worker ends failed instead of looping for ever; stores that merely
    had a step in flight on a worker that died for other reasons do not.
    """
    if is_locked(store.pk) and not holder_lost(store.pk):
        return DONE  # a live task holds it
    action = _resume_action(store)
    task_id = str(uuid.uuid4())
    owner = store.helm_operation_owner
    cut_off = store.lease_expires_at is None and bool(owner) and not owner_alive(owner)
    # Counted once: the lost operation is marked ended (its owner is gone), so the next pass counts
    # only an operation a later run starts and loses again.
    counted = {"attempts": F("attempts") + 1, "helm_operation_owner": ""} if cut_off else {}
    won = Store.objects.filter(pk=store.pk, status=store.status, next_task_id=store.next_task_id).update(
        next_task_id=task_id, lease_expires_at=now + dt.timedelta(seconds=QUEUED_LEASE_SECONDS), **counted
    )
    return Next(action, 0, task_id) if won else DONE


def _resume_action(store: Store) -> str:
    """The step a store resumes with: each observes before it acts, so starting over from it is safe."""
    if store.status == Status.DELETING:
        return "teardown"
    if store.status == Status.UPGRADING:
        from .upgrades import resume_action  # upgrades builds on this module

        return resume_action(store)
    return "provision"


def _fail_vanished(report: ReconcileReport, managed: dict[str, dict[str, str]]) -> None:
    for store in Store.objects.filter(status__in=WATCHED_STATUSES):
        if store.namespace not in managed:
            report.vanished.append(store.pk)
            _fail(
                store,
                f"Namespace {store.namespace} vanished from the cluster; the store is not serving. "
                "Retry to rebuild it or delete it.",
                "namespace_vanished",
            )


def _record_orphans(report: ReconcileReport, managed: dict[str, dict[str, str]], now: dt.datetime) -> None:
    """Namespaces labelled as this installation's that no store accounts for. One without the installation
    label (from before it existed) still counts as a store's namespace above, but is never reported: it
    may as well be another installation's, and staff could adopt or delete it from the list."""
    accounted = set(Store.objects.live().exclude(namespace=None).values_list("namespace", flat=True))
    for name, labels in managed.items():
        if name not in accounted and labels.get(LABEL_INSTALLATION) == settings.ORCHESTRATOR_INSTALLATION_ID:
            report.orphans.append(name)
            OrphanNamespace.objects.update_or_create(name=name, defaults={"labels": labels, "last_seen": now})
    OrphanNamespace.objects.exclude(name__in=report.orphans).delete()
