"""What users and staff can do to stores. Every rule is decided here, once.

Views, API views and admin actions call these functions; each one changes state
in a single transaction, writes its audit entry, and queues the worker on commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from . import audit
from .kube import KubeError, KubeGateway
from .models import (
    DELETABLE_STATUSES,
    LIVE_STATUSES,
    RETRYABLE_STATUSES,
    AuditEntry,
    Engine,
    OrphanNamespace,
    Status,
    Store,
    StoreEvent,
    UserQuota,
)
from .naming import namespace_for, release_for, slug_for

QUEUED_LEASE_SECONDS = 120


class ServiceError(Exception):
    """A request that cannot be done as asked; the message says why and what to do."""

    status_code = 400


class QuotaExceeded(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    status_code = 409


class Unavailable(ServiceError):
    status_code = 503


def store_limit(user) -> int:
    quota = UserQuota.objects.filter(user=user).values_list("max_stores", flat=True).first()
    return quota if quota is not None else settings.STORES_PER_USER


def live_store_count(user) -> int:
    return Store.objects.filter(owner=user, status__in=LIVE_STATUSES).count()


def validate_engine(engine) -> str:
    if engine not in Engine.values:
        choices = ", ".join(Engine.values)
        raise ValidationError(f"Unknown engine {engine!r}; choose one of: {choices}.")
    return engine


@dataclass
class Address:
    slug: str
    host: str
    taken: bool


def check_address(name) -> Address:
    """The address a store of this name would get and whether a live store already has it; raises
    ValidationError (with how to fix the name) for a name the rules refuse. For the create form's preview."""
    slug = slug_for(name)
    taken = Store.objects.live().filter(slug=slug).exists()
    return Address(slug=slug, host=f"{slug}.{settings.STORE_BASE_DOMAIN}", taken=taken)


def add_event(store: Store, step: str, outcome: str, message: str = "") -> StoreEvent:
    return StoreEvent.objects.create(store=store, step=step, outcome=outcome, message=message[:2000])


def create_store(user, name, engine, request=None) -> Store:
    """Validate, check quota atomically, record, and queue provisioning after commit."""
    slug = slug_for(name)
    validate_engine(engine)
    try:
        with transaction.atomic():
            # Serialise this user's creates on their user row, so N concurrent requests
            # can never slip past the quota between the count and the insert.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            limit = store_limit(user)
            used = live_store_count(user)
            if used >= limit:
                raise QuotaExceeded(
                    f"You have {used} of {limit} stores allowed; delete a store before creating another."
                )
            if Store.objects.live().filter(slug=slug).exists():
                raise Conflict(f"The address {slug}.{settings.STORE_BASE_DOMAIN} is taken; choose another name.")
            store = Store.objects.create(
                owner=user,
                name=name.strip(),
                slug=slug,
                engine=engine,
                lease_expires_at=_queued_lease(),
                next_task_id=_new_task_id(),
            )
            store.namespace = namespace_for(store.pk, slug)
            store.release_name = release_for(store.pk, slug)
            store.save(update_fields=["namespace", "release_name"])
            add_event(
                store,
                StoreEvent.Step.REQUESTED,
                StoreEvent.Outcome.INFO,
                f"{store.get_engine_display()} store requested",
            )
            audit.record(AuditEntry.Action.STORE_CREATE, request=request, actor=user, store=store, engine=engine)
            _enqueue_provision(store)
    except QuotaExceeded as exc:
        audit.record(
            AuditEntry.Action.QUOTA_DENIED,
            outcome=AuditEntry.Outcome.DENIED,
            request=request,
            actor=user,
            name=str(name)[:40],
            engine=str(engine)[:20],
            reason=str(exc),
        )
        raise
    except IntegrityError as exc:
        # Another user's concurrent create took the same address between check and insert.
        raise Conflict(f"The address {slug}.{settings.STORE_BASE_DOMAIN} is taken; choose another name.") from exc
    return store


def _queued_lease():
    """While the queued task has not started yet, the reconciler leaves the store alone this long."""
    return timezone.now() + dt.timedelta(seconds=QUEUED_LEASE_SECONDS)


def _new_task_id() -> str:
    return str(uuid.uuid4())


def _transition(store: Store, allowed: list[str], status: str, message: str, **fields) -> bool:
    """Compare-and-swap the store's status; the row count says whether this caller won. Refreshes `store`.

    The store gets a new current task id: whatever task was queued for its previous state is superseded.
    """
    won = Store.objects.filter(pk=store.pk, status__in=allowed).update(
        status=status,
        status_message=message,
        attempts=0,
        trouble_since=None,
        lease_expires_at=_queued_lease(),
        next_task_id=_new_task_id(),
        updated_at=timezone.now(),
        **fields,
    )
    store.refresh_from_db()
    return bool(won)


def delete_store(store: Store, actor, request=None) -> Store:
    """Mark the store for teardown (compare-and-swap on its status) and queue the worker."""
    with transaction.atomic():
        if not _transition(
            store, DELETABLE_STATUSES, Status.DELETING, "Deletion requested", deletion_requested_at=timezone.now()
        ):
            if store.status in (Status.DELETING, Status.DELETED):
                return store  # already on its way: deleting twice is harmless
            raise Conflict(f"The store cannot be deleted while it is {store.status}.")
        add_event(store, StoreEvent.Step.TEARDOWN_RELEASE, StoreEvent.Outcome.STARTED, "Deletion requested")
        audit.record(AuditEntry.Action.STORE_DELETE, request=request, actor=actor, store=store)
        _enqueue_teardown(store)
    return store


def retry_store(store: Store, actor, request=None) -> Store:
    """Send a failed store back to provisioning."""
    with transaction.atomic():
        # The readiness timeout counts from this retry, not from the first attempt weeks ago.
        restart = {"failure_reason": "", "provisioning_started_at": None}
        if not _transition(store, RETRYABLE_STATUSES, Status.PENDING, "Retry requested", **restart):
            raise Conflict(f"Only a failed store can be retried; this one is {store.status}.")
        add_event(store, StoreEvent.Step.RETRY, StoreEvent.Outcome.INFO, "Retry requested")
        audit.record(AuditEntry.Action.STORE_RETRY, request=request, actor=actor, store=store)
        _enqueue_provision(store)
    return store


@dataclass
class Credentials:
    username: str
    password: str
    admin_url: str


def reveal_credentials(store: Store, actor, request=None) -> Credentials:
    """Read the store's admin password from its Kubernetes Secret for the owner; audited."""
    if not store.has_credentials:
        raise Conflict("This store has no credentials any more.")
    try:
        password = KubeGateway().read_secret_value(store.namespace, store.secret_name, "admin-password")
    except KubeError as exc:
        raise Unavailable(f"The cluster could not be reached to read the credentials ({exc}); try again.") from exc
    if password is None:
        raise Conflict("The credentials are not created yet; wait until provisioning has passed the secrets step.")
    audit.record(AuditEntry.Action.STORE_CREDENTIALS, request=request, actor=actor, store=store)
    username = "admin" if store.engine == Engine.WOOCOMMERCE else admin_email(store)
    return Credentials(username=username, password=password, admin_url=store.admin_url)


def admin_email(store: Store) -> str:
    return f"admin@{store.host}"


def _enqueue_provision(store: Store) -> None:
    from .tasks import provision_store

    _enqueue_on_commit(provision_store, store)


def _enqueue_teardown(store: Store) -> None:
    from .tasks import teardown_store

    _enqueue_on_commit(teardown_store, store)


def _enqueue_on_commit(task, store: Store) -> None:
    """Queue the store's current task once the transaction commits.

    Robustly: the store is saved either way, so a broker that is down must not turn the request into
    an error; its lease expires and the reconciler queues it then.
    """
    store_id, task_id = store.pk, store.next_task_id

    def publish() -> None:
        try:
            task.apply_async((store_id,), task_id=task_id)
        except Exception:
            # Not queued: let the lease lapse now, so the reconciler's next pass queues it.
            Store.objects.filter(pk=store_id, next_task_id=task_id).update(lease_expires_at=timezone.now())
            raise

    transaction.on_commit(publish, robust=True)


# --- staff: orphans ---------------------------------------------------------------------
# The web process may not change namespaces (its ServiceAccount can only read store credentials), so a
# staff decision about an orphan is recorded here and carried out by the worker, which reports back
# on the row (the dashboard shows it) and in the audit log.

# A request whose task never ran (lost with the broker) may be made again after this long.
ORPHAN_REQUEST_STALE_SECONDS = 120
ORPHAN_AUDIT_ACTIONS = {
    OrphanNamespace.Action.ADOPT: AuditEntry.Action.ORPHAN_ADOPT,
    OrphanNamespace.Action.DELETE: AuditEntry.Action.ORPHAN_DELETE,
}


def _orphan_open() -> Q:
    """Orphans staff may decide about: nothing requested, or a request that was never carried out."""
    stale = timezone.now() - dt.timedelta(seconds=ORPHAN_REQUEST_STALE_SECONDS)
    return Q(requested_action="") | Q(requested_at__lt=stale)


def orphans_for_staff():
    """Every orphan, each with `open` saying whether staff may request an action on it now."""
    return OrphanNamespace.objects.annotate(open=ExpressionWrapper(_orphan_open(), output_field=BooleanField()))


def request_orphan_action(orphan: OrphanNamespace, action: str, staff, request=None) -> None:
    """Record staff's decision (adopt: keep it and stop reporting it; delete it) and queue the worker.

    A compare-and-swap on the row: while a request is under way a second one is refused.
    """
    if action not in ORPHAN_AUDIT_ACTIONS:
        raise ServiceError(f"Unknown action {action!r} for an orphaned namespace; choose adopt or delete.")
    with transaction.atomic():
        won = (
            OrphanNamespace.objects.filter(pk=orphan.pk)
            .filter(_orphan_open())
            .update(requested_action=action, requested_at=timezone.now(), action_error="")
        )
        if not won:
            raise Conflict(f"Namespace {orphan.name} already has a request under way; wait for its outcome.")
        audit.record(
            ORPHAN_AUDIT_ACTIONS[action], request=request, actor=staff, namespace=orphan.name, step="requested"
        )
        _enqueue_orphan_action(orphan.pk, action, staff.pk)


def _enqueue_orphan_action(orphan_id: int, action: str, actor_id: int) -> None:
    from .tasks import act_on_orphan

    # Robust: with the broker down the request stays recorded and may be made again once stale.
    transaction.on_commit(lambda: act_on_orphan.delay(orphan_id, action, actor_id), robust=True)


def carry_out_orphan_action(orphan_id: int, action: str, actor_id: int | None, final: bool = True) -> str:
    """The worker's side of an orphan request: the cluster change, then its outcome on the row and in the
    audit log. Returns "done", "failed", or "retry" for a temporary cluster error when not `final`."""
    orphan = OrphanNamespace.objects.filter(pk=orphan_id, requested_action=action).first()
    if orphan is None:
        return "done"  # the namespace went away and the scan dropped the row, or another request replaced it
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        if action == OrphanNamespace.Action.ADOPT:
            KubeGateway().release_namespace(orphan.name)  # drop our rights in it, then our label
        else:
            KubeGateway().delete_namespace(orphan.name)  # refuses a namespace without our label
    except KubeError as exc:
        if exc.temporary and not final:
            return "retry"
        with transaction.atomic():
            OrphanNamespace.objects.filter(pk=orphan.pk).update(
                requested_action="", requested_at=None, action_error=str(exc)[:2000]
            )
            audit.record(
                ORPHAN_AUDIT_ACTIONS[action],
                outcome=AuditEntry.Outcome.FAILED,
                actor=actor,
                namespace=orphan.name,
                reason=str(exc),
            )
        return "failed"
    with transaction.atomic():
        if action == OrphanNamespace.Action.ADOPT:
            orphan.delete()  # the operator's now: no longer ours, no longer reported
        else:
            # Kept (as "being deleted") until the scan no longer finds the namespace.
            OrphanNamespace.objects.filter(pk=orphan.pk).update(requested_at=None, action_error="")
        audit.record(ORPHAN_AUDIT_ACTIONS[action], actor=actor, namespace=orphan.name, step="done")
    return "done"
