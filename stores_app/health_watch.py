"""The health watcher: keeps a snapshot of every running store fresh, and moves a store between ready
and degraded as its workloads stop or start being ready.

Worker-side only; the dashboard reads the snapshot from the database and never asks the cluster. A
pass (beat, every HEALTH_REFRESH_SECONDS) claims the stalest running stores, at most
HEALTH_REFRESH_BATCH, each under a lease so a second pass does not queue it twice, and queues one
refresh per store. A refresh observes first (stores_app/health_snapshot.py), saves what it saw, then
asks `decide_health` for the one change that calls for, if any. The change is a compare-and-swap from
exactly `ready` to `degraded` or back, with its timeline event and audit row in one transaction, so
it can never undo provisioning, teardown or an upgrade: a store in any other status is left alone. A
refresh takes the store's lock without waiting; a store some step is working on is skipped this time.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import audit, health_snapshot
from .kube import KubeError
from .locking import store_lock
from .models import WATCHED_STATUSES, AuditEntry, Status, Store, StoreEvent, StoreHealth
from .services import add_event

log = logging.getLogger(__name__)


class HealthChange(enum.Enum):
    DEGRADE = "degrade"
    RECOVER = "recover"


def decide_health(status: str, healthy: bool) -> HealthChange | None:
    """The one change a running store's status calls for, given whether its workloads are all ready."""
    if status == Status.READY and not healthy:
        return HealthChange.DEGRADE
    if status == Status.DEGRADED and healthy:
        return HealthChange.RECOVER
    return None


# --- the pass -------------------------------------------------------------------------------


def _claim_lease() -> dt.timedelta:
    # Long enough for a queued refresh to start and finish; short enough that a lost one is retried soon.
    return dt.timedelta(seconds=max(2 * settings.HEALTH_REFRESH_SECONDS, 60))


def claim_due(now: dt.datetime | None = None) -> list[int]:
    """Claim the running stores whose snapshot is due (never taken, or older than the interval), stalest
    first, at most HEALTH_REFRESH_BATCH; returns their ids. Rows another pass holds are skipped."""
    now = now or timezone.now()
    batch = settings.HEALTH_REFRESH_BATCH
    missing = Store.objects.filter(status__in=WATCHED_STATUSES, health__isnull=True).values_list("pk", flat=True)
    StoreHealth.objects.bulk_create([StoreHealth(store_id=pk) for pk in missing[:batch]], ignore_conflicts=True)
    due_before = now - dt.timedelta(seconds=settings.HEALTH_REFRESH_SECONDS * 0.8)
    with transaction.atomic():
        rows = (
            StoreHealth.objects.select_for_update(skip_locked=True)
            .filter(store__status__in=WATCHED_STATUSES)
            .filter(Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=due_before))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by(F("refreshed_at").asc(nulls_first=True))
            .values_list("pk", flat=True)[:batch]
        )
        ids = list(rows)
        StoreHealth.objects.filter(pk__in=ids).update(claimed_until=now + _claim_lease())
    return ids


# --- one store ------------------------------------------------------------------------------


def refresh(store_id: int) -> str:
    """Look at one running store, save the snapshot, and degrade or recover it if that is called for.

    Returns what happened: "degraded", "recovered", "unchanged", "busy", "not-running" or "unreachable".
    """
    with store_lock(store_id) as got:
        if not got:
            _release_claim(store_id)
            return "busy"  # a provisioning, teardown or upgrade step holds it: look next pass
        store = Store.objects.filter(pk=store_id, status__in=WATCHED_STATUSES).first()
        if store is None:
            _release_claim(store_id)
            return "not-running"
        try:
            snapshot = health_snapshot.observe(store)
        except KubeError as exc:
            _record_unreachable(store, exc)
            return "unreachable"
        _save(store, snapshot)
        change = decide_health(store.status, snapshot.healthy)
        if change is None:
            return "unchanged"
        return _apply(store, change, snapshot)


def _release_claim(store_id: int) -> None:
    StoreHealth.objects.filter(pk=store_id).update(claimed_until=None)


def _record_unreachable(store: Store, exc: KubeError) -> None:
    """Keep the last good snapshot; say when and why this look failed. The status does not change:
    an unreachable API server says nothing about the store."""
    message = f"Could not look at the store at {timezone.now():%H:%M:%S} UTC: {exc}"
    StoreHealth.objects.filter(pk=store.pk).update(error=message[:500], claimed_until=None)
    log.warning("health refresh failed for store %s: %s", store.pk, exc, extra={"store_id": store.pk})


def _save(store: Store, snapshot: health_snapshot.Snapshot) -> None:
    StoreHealth.objects.update_or_create(
        store=store,
        defaults={
            "refreshed_at": timezone.now(),
            "claimed_until": None,
            "healthy": snapshot.healthy,
            "summary": snapshot.readiness.summary()[:500],
            "workloads": snapshot.workloads,
            "pods": snapshot.pods,
            "quota": snapshot.quota,
            "events": snapshot.events,
            "log_source": snapshot.log_source[:200],
            "log_tail": snapshot.log_tail,
            "log_note": snapshot.log_note[:500],
            "error": "",
        },
    )


def _apply(store: Store, change: HealthChange, snapshot: health_snapshot.Snapshot) -> str:
    """Degrade or recover: status (compare-and-swap), timeline event and audit row in one transaction;
    the owner's email follows from the audit row (stores_app/notify.py), queued on commit."""
    if change == HealthChange.DEGRADE:
        old, new, action = Status.READY, Status.DEGRADED, AuditEntry.Action.STORE_DEGRADED
        message = f"Not all workloads are ready any more: {snapshot.readiness.summary()}"
        outcome = StoreEvent.Outcome.FAILED
    else:
        old, new, action = Status.DEGRADED, Status.READY, AuditEntry.Action.STORE_RECOVERED
        message = "All workloads are ready again"
        outcome = StoreEvent.Outcome.SUCCEEDED
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=old).update(
            status=new,
            status_message=(message if new == Status.DEGRADED else "Ready")[:2000],
            updated_at=timezone.now(),
        )
        if not won:
            return "unchanged"  # something else moved the store meanwhile: its change stands
        add_event(store, StoreEvent.Step.HEALTH, outcome, message)
        audit.record(action, store=store, actor_name="system", message=message[:500])
        transaction.on_commit(_notify_soon, robust=True)
    log.info("store %s %s: %s", store.pk, new, message[:300], extra={"store_id": store.pk, "status": new})
    return "degraded" if new == Status.DEGRADED else "recovered"


def _notify_soon() -> None:
    from .tasks import notify_owners

    notify_owners.delay()
