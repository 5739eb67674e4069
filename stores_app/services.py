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

from . import audit, charts
from .kube import KubeError, KubeGateway
from .models import (
    DELETABLE_STATUSES,
    LIVE_STATUSES,
    RETRYABLE_STATUSES,
    UPGRADABLE_STATUSES,
    AuditEntry,
    Engine,
    OrphanNamespace,
    Rollout,
    RolloutItem,
    Status,
    Store,
    StoreEvent,
    StoreUpgrade,
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
        # An upgrade under way stops here: its next step finds the store deleting and does nothing.
        for upgrade in StoreUpgrade.objects.filter(store=store, state__in=StoreUpgrade.OPEN_STATES):
            upgrade.state, upgrade.message, upgrade.finished_at = (
                StoreUpgrade.State.ABANDONED,
                "deleted",
                timezone.now(),
            )
            upgrade.save(update_fields=["state", "message", "finished_at"])
            RolloutItem.settle(upgrade)
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


# --- upgrades ---------------------------------------------------------------------------
# One store at a time (owner or staff), or the fleet in rollouts (staff). The request side only records
# and queues; the worker applies, checks and, on failure, rolls back (stores_app/upgrades.py).


def upgrade_store(store: Store, actor, request=None, rollout: Rollout | None = None) -> StoreUpgrade:
    """Start moving a ready store to today's chart: `upgrading`, its upgrade record, timeline and audit
    entry in one transaction, the worker queued on commit. A store its owner pinned is upgraded only by
    its owner, and never by a rollout."""
    target = _target(store.engine)
    if store.upgrades_pinned and (rollout is not None or actor is None or actor.pk != store.owner_id):
        raise Conflict("Its owner pinned this store's version; only the owner can upgrade it (or unpin it).")
    if not charts.is_older(store.chart_version, target.version):
        running = store.chart_version or "an unrecorded version"
        raise Conflict(
            f"This store runs chart {running}; the orchestrator has nothing newer (target {target.version})."
        )
    with transaction.atomic():
        if not _transition(
            store, UPGRADABLE_STATUSES, Status.UPGRADING, f"Upgrade to chart {target.version} requested"
        ):
            raise Conflict(f"Only a ready store can be upgraded; this one is {store.status}.")
        record = StoreUpgrade.objects.create(
            store=store,
            rollout=rollout,
            requested_by=actor,
            from_version=store.chart_version,
            from_app_version=store.app_version,
            from_revision=store.helm_revision,
            to_version=target.version,
            to_app_version=target.app_version,
        )
        by = f" by rollout #{rollout.pk}" if rollout is not None else ""
        add_event(
            store,
            StoreEvent.Step.UPGRADE,
            StoreEvent.Outcome.INFO,
            f"Upgrade from chart {store.chart_version} to {target.version} requested{by}",
        )
        audit.record(
            AuditEntry.Action.STORE_UPGRADE,
            request=request,
            actor=actor,
            store=store,
            from_version=store.chart_version,
            to_version=target.version,
            rollout=rollout.pk if rollout is not None else None,
        )
        _enqueue_upgrade(store)
    return record


def _target(engine: str) -> charts.ChartVersion:
    try:
        return charts.target(engine)
    except charts.ChartUnavailable as exc:
        raise Unavailable(f"The {engine} chart cannot be read ({exc}); an operator must fix STORE_CHARTS_DIR.") from exc


def set_upgrades_pinned(store: Store, pinned: bool, actor, request=None) -> Store:
    """Pin (rollouts leave the store on its version) or unpin a store; its owner's decision, audited and
    shown in its timeline. Setting what is already set changes nothing."""
    if store.status == Status.DELETED:
        raise Conflict("This store is deleted.")
    with transaction.atomic():
        changed = Store.objects.filter(pk=store.pk, upgrades_pinned=not pinned).update(upgrades_pinned=pinned)
        store.refresh_from_db()
        if changed:
            message = (
                f"Pinned at chart {store.chart_version}: rollouts leave this store as it is"
                if pinned
                else "Unpinned: rollouts may upgrade this store"
            )
            add_event(store, StoreEvent.Step.PIN, StoreEvent.Outcome.INFO, message)
            audit.record(AuditEntry.Action.STORE_PIN, request=request, actor=actor, store=store, pinned=pinned)
    return store


@dataclass
class VersionCount:
    chart_version: str
    stores: int
    behind: bool


def fleet_versions() -> list[dict]:
    """Per engine: today's target and how many live stores run each chart version (staff's view)."""
    from django.db.models import Count

    rows = Store.objects.live().values_list("engine", "chart_version").annotate(n=Count("id"))
    out = []
    for engine in Engine.values:
        try:
            target = charts.target(engine).version
        except charts.ChartUnavailable:
            target = ""
        counts = [VersionCount(version, n, charts.is_older(version, target)) for e, version, n in rows if e == engine]
        counts.sort(key=lambda c: charts.sort_key(c.chart_version))
        out.append(
            {
                "engine": engine,
                "target": target,
                "versions": counts,
                "behind": sum(c.stores for c in counts if c.behind),
            }
        )
    return out


# --- rollouts ---------------------------------------------------------------------------


@dataclass
class RolloutSpec:
    """What staff ask for. Empty selection lists mean "any"."""

    engine: str
    target_version: str = ""
    from_versions: list[str] | None = None
    owners: list[str] | None = None
    store_ids: list[int] | None = None
    canary_size: int = 1
    growth: int = 2
    concurrency: int = 4
    failure_threshold: int = 0
    start: bool = True


ROLLOUT_LIMITS = {"canary_size": (1, 1000), "growth": (1, 10), "concurrency": (1, 50), "failure_threshold": (0, 100)}


def create_rollout(staff, spec: RolloutSpec, request=None) -> Rollout:
    """Plan a rollout (its stores in waves, each store's timeline told) and, unless asked not to, start it."""
    from .rollouts import plan_waves

    validate_engine(spec.engine)
    target = _target(spec.engine)
    _check_rollout_spec(spec, target.version)
    stores = _rollout_stores(spec, target.version)
    sizes = plan_waves(len(stores), spec.canary_size, spec.growth)
    try:
        with transaction.atomic():
            rollout = _record_rollout(staff, spec, target.version, stores, sizes, request)
            if spec.start:
                _start_rollout(rollout, staff, request)
    except IntegrityError as exc:
        raise Conflict(f"A {spec.engine} rollout is still open; finish, cancel or wait for it first.") from exc
    return rollout


def _check_rollout_spec(spec: RolloutSpec, target: str) -> None:
    if spec.target_version and spec.target_version != target:
        raise Conflict(
            f"Chart {spec.target_version} is not available: STORE_CHARTS_DIR holds {spec.engine} {target}, the only "
            "version stores can move to."
        )
    for name, (low, high) in ROLLOUT_LIMITS.items():
        value = getattr(spec, name)
        if not isinstance(value, int) or not low <= value <= high:
            raise ServiceError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    if Rollout.objects.filter(engine=spec.engine, state__in=Rollout.OPEN_STATES).exists():
        raise Conflict(f"A {spec.engine} rollout is still open; finish, cancel or wait for it first.")


def _rollout_stores(spec: RolloutSpec, target: str) -> list[Store]:
    """The ready, unpinned stores of the selection that run an older chart than `target`, oldest id first.
    A selection that names no one, or nothing to move, conflicts with the fleet as it is now (409): the same
    request may be right later."""
    stores = Store.objects.filter(engine=spec.engine, status__in=UPGRADABLE_STATUSES, upgrades_pinned=False)
    if spec.owners:
        users = dict(get_user_model().objects.filter(username__in=spec.owners).values_list("username", "pk"))
        unknown = sorted(set(spec.owners) - set(users))
        if unknown:
            raise Conflict(f"No such user(s): {', '.join(unknown)}.")
        stores = stores.filter(owner_id__in=users.values())
    if spec.store_ids:
        found = set(Store.objects.filter(pk__in=spec.store_ids, engine=spec.engine).values_list("pk", flat=True))
        missing = sorted(set(spec.store_ids) - found)
        if missing:
            raise Conflict(f"No {spec.engine} store with id(s) {', '.join(map(str, missing))}.")
        stores = stores.filter(pk__in=spec.store_ids)
    chosen = [
        s
        for s in stores.order_by("pk")
        if charts.is_older(s.chart_version, target)
        and (not spec.from_versions or s.chart_version in spec.from_versions)
    ]
    if not chosen:
        raise Conflict(
            f"No ready, unpinned {spec.engine} store of this selection runs a chart older than {target}; nothing to do."
        )
    return chosen


def _record_rollout(staff, spec: RolloutSpec, target: str, stores: list[Store], sizes: list[int], request) -> Rollout:
    selection = {
        "from_versions": spec.from_versions or [],
        "owners": spec.owners or [],
        "store_ids": spec.store_ids or [],
    }
    rollout = Rollout.objects.create(
        engine=spec.engine,
        target_version=target,
        selection=selection,
        canary_size=spec.canary_size,
        growth=spec.growth,
        concurrency=spec.concurrency,
        failure_threshold=spec.failure_threshold,
        created_by=staff,
    )
    waves = [wave for wave, size in enumerate(sizes, start=1) for _ in range(size)]
    RolloutItem.objects.bulk_create(
        RolloutItem(rollout=rollout, store=store, wave=wave) for store, wave in zip(stores, waves, strict=True)
    )
    StoreEvent.objects.bulk_create(
        StoreEvent(
            store=store,
            step=StoreEvent.Step.UPGRADE_PLANNED,
            outcome=StoreEvent.Outcome.INFO,
            message=f"Planned: upgrade from chart {store.chart_version} to {target} in rollout #{rollout.pk}, "
            f"wave {wave} of {len(sizes)}",
        )
        for store, wave in zip(stores, waves, strict=True)
    )
    audit.record(
        AuditEntry.Action.ROLLOUT_CREATE,
        request=request,
        actor=staff,
        rollout=rollout.pk,
        engine=spec.engine,
        target_version=target,
        selection=selection,
        stores=len(stores),
        waves=sizes,
    )
    return rollout


def _start_rollout(rollout: Rollout, staff, request=None) -> None:
    won = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.PENDING).update(
        state=Rollout.State.RUNNING, started_at=timezone.now(), current_wave=1
    )
    if not won:
        raise Conflict(f"Only a pending rollout can be started; this one is {_rollout_state(rollout)}.")
    audit.record(AuditEntry.Action.ROLLOUT_START, request=request, actor=staff, rollout=rollout.pk)
    audit.record(AuditEntry.Action.ROLLOUT_WAVE, request=request, actor=staff, rollout=rollout.pk, wave=1)
    queue_rollout_advance(rollout.pk)
    rollout.refresh_from_db()


def start_rollout(rollout: Rollout, staff, request=None) -> Rollout:
    with transaction.atomic():
        _start_rollout(rollout, staff, request)
    return rollout


def pause_rollout(rollout: Rollout, staff, request=None) -> Rollout:
    """No more upgrades start; those under way finish (each ready on its new or its old version)."""
    with transaction.atomic():
        won = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.RUNNING).update(
            state=Rollout.State.PAUSED, state_message=f"Paused by {staff.username}"
        )
        if not won:
            raise Conflict(f"Only a running rollout can be paused; this one is {_rollout_state(rollout)}.")
        audit.record(AuditEntry.Action.ROLLOUT_PAUSE, request=request, actor=staff, rollout=rollout.pk)
    rollout.refresh_from_db()
    return rollout


def resume_rollout(rollout: Rollout, staff, request=None) -> Rollout:
    """Carry on where it stopped. Failures of the current wave so far are accepted by resuming: the wave
    pauses again only if more fail than the threshold allows."""
    with transaction.atomic():
        failed = RolloutItem.objects.filter(
            rollout=rollout, wave=rollout.current_wave, state=RolloutItem.State.FAILED
        ).count()
        won = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.PAUSED).update(
            state=Rollout.State.RUNNING, state_message="", accepted_failures=failed
        )
        if not won:
            raise Conflict(f"Only a paused rollout can be resumed; this one is {_rollout_state(rollout)}.")
        audit.record(
            AuditEntry.Action.ROLLOUT_RESUME, request=request, actor=staff, rollout=rollout.pk, accepted_failures=failed
        )
        queue_rollout_advance(rollout.pk)
    rollout.refresh_from_db()
    return rollout


def cancel_rollout(rollout: Rollout, staff, request=None) -> Rollout:
    """Stop for good: stores not yet started stay as they are (their timelines say so); upgrades under way
    finish on their own."""
    with transaction.atomic():
        won = Rollout.objects.filter(pk=rollout.pk, state__in=Rollout.OPEN_STATES).update(
            state=Rollout.State.CANCELLED, state_message=f"Cancelled by {staff.username}", finished_at=timezone.now()
        )
        if not won:
            raise Conflict(f"This rollout is already {_rollout_state(rollout)}.")
        planned = RolloutItem.objects.filter(rollout=rollout, state=RolloutItem.State.PLANNED)
        StoreEvent.objects.bulk_create(
            StoreEvent(
                store_id=store_id,
                step=StoreEvent.Step.UPGRADE_PLANNED,
                outcome=StoreEvent.Outcome.INFO,
                message=f"No longer planned: rollout #{rollout.pk} was cancelled",
            )
            for store_id in planned.values_list("store_id", flat=True)
        )
        cancelled = planned.update(state=RolloutItem.State.CANCELLED, message="The rollout was cancelled")
        audit.record(
            AuditEntry.Action.ROLLOUT_CANCEL, request=request, actor=staff, rollout=rollout.pk, not_started=cancelled
        )
    rollout.refresh_from_db()
    return rollout


def _rollout_state(rollout: Rollout) -> str:
    return Rollout.objects.filter(pk=rollout.pk).values_list("state", flat=True).first() or "gone"


def queue_rollout_advance(rollout_id: int) -> None:
    """Make a new task the rollout's one current advance (any queued one is superseded) and queue it on commit."""
    from .tasks import advance_rollout

    task_id = _new_task_id()
    lease = timezone.now() + dt.timedelta(seconds=QUEUED_LEASE_SECONDS)
    won = Rollout.objects.filter(pk=rollout_id, state=Rollout.State.RUNNING).update(
        next_task_id=task_id, lease_expires_at=lease
    )
    if won:
        transaction.on_commit(lambda: advance_rollout.apply_async((rollout_id,), task_id=task_id), robust=True)


def _enqueue_upgrade(store: Store) -> None:
    from .tasks import upgrade_store as upgrade_task

    _enqueue_on_commit(upgrade_task, store)


def rollout_progress(rollout: Rollout) -> dict:
    """A rollout's stores per state, overall and wave by wave (one query)."""
    from django.db.models import Count

    rows = rollout.items.values_list("wave", "state").annotate(n=Count("id")).order_by("wave")
    waves: dict[int, dict] = {}
    total: dict[str, int] = dict.fromkeys(RolloutItem.State.values, 0)
    for wave, state, n in rows:
        entry = waves.setdefault(wave, {"wave": wave, "size": 0, **dict.fromkeys(RolloutItem.State.values, 0)})
        entry[state] += n
        entry["size"] += n
        total[state] += n
    return {"stores": sum(total.values()), **total, "waves": list(waves.values())}
