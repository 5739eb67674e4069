"""The worker side of a fleet rollout: start each wave's upgrades, watch them end, move on or pause.

A rollout's stores were planned into waves when staff created it (`plan_waves`): a canary, then waves
`growth` times larger. `advance` is its one idempotent step, run under the rollout's lock as its one
current task: it settles the items whose upgrade ended, reduces the current wave to its counts, asks
`decide_wave` for the one thing to do (start more stores, wait, pause, next wave, complete) and does it.
Each store's upgrade is the same one a single upgrade is (services.upgrade_store, stores_app/upgrades.py),
so it rolls back on its own; an item moves from planned to upgrading in the same transaction that starts
the upgrade, so no store is started twice. The step runs when an upgrade of the rollout ends, every
ROLLOUT_CHECK_INTERVAL_SECONDS while the rollout runs, and again from the reconciler if its queued task
was lost: a crash leaves the rollout exactly where its rows say it is.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import audit, charts, services
from .locking import rollout_lock
from .models import AuditEntry, Rollout, RolloutItem, Status, StoreEvent

log = logging.getLogger(__name__)
Item = RolloutItem.State
LEASE_MARGIN_SECONDS = 30
BUSY_RETRY_SECONDS = 2.0


def plan_waves(count: int, canary: int, growth: int) -> list[int]:
    """Wave sizes for `count` stores: `canary` first, each next wave `growth` times the previous one."""
    sizes: list[int] = []
    size, left = max(1, canary), count
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
        size = max(size, math.ceil(size * growth))
    return sizes


# --- what a wave calls for -------------------------------------------------------------------------


class WaveAction(enum.Enum):
    START = "start"  # start this many more of the wave's planned stores
    WAIT = "wait"  # upgrades of the wave are under way
    PAUSE = "pause"  # too many of the wave's stores failed
    NEXT_WAVE = "next-wave"  # the wave ended within the threshold
    COMPLETE = "complete"  # the last wave ended within the threshold


@dataclass(frozen=True)
class WaveProgress:
    wave: int
    size: int
    planned: int = 0
    upgrading: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class WavePolicy:
    concurrency: int
    failure_threshold: int  # percent of the wave's stores
    accepted_failures: int = 0  # failures staff accepted by resuming
    last_wave: bool = False


@dataclass(frozen=True)
class WaveDecision:
    action: WaveAction
    count: int = 0
    reason: str = ""


def decide_wave(seen: WaveProgress, policy: WavePolicy) -> WaveDecision:
    """The one thing the current wave calls for. Failures pause the rollout as soon as they exceed the
    threshold, even with stores of the wave still to go: a bad version should reach as few stores as it can."""
    failed = seen.failed - policy.accepted_failures
    if failed > 0 and failed * 100 > policy.failure_threshold * seen.size:
        return WaveDecision(
            WaveAction.PAUSE,
            reason=f"wave {seen.wave}: {seen.failed} of {seen.size} stores failed their upgrade (more than "
            f"{policy.failure_threshold}%); each is back on its old version. Resume to go on, or cancel.",
        )
    if seen.planned and seen.upgrading < policy.concurrency:
        return WaveDecision(WaveAction.START, count=min(seen.planned, policy.concurrency - seen.upgrading))
    if seen.planned or seen.upgrading:
        return WaveDecision(WaveAction.WAIT)
    if policy.last_wave:
        return WaveDecision(WaveAction.COMPLETE)
    return WaveDecision(WaveAction.NEXT_WAVE)


# --- the step ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextAdvance:
    delay: float
    task_id: str


def advance(rollout_id: int, task_id: str | None = None) -> NextAdvance | None:
    """Move the rollout on as far as it can go now; returns its next look, if it still runs."""
    with rollout_lock(rollout_id) as got:
        rollout = Rollout.objects.filter(pk=rollout_id).first()
        if rollout is None or (task_id and rollout.next_task_id and rollout.next_task_id != task_id):
            return None  # gone, or a superseded duplicate
        if not got:  # another advance is at it: the current task looks again shortly
            return _schedule(rollout, BUSY_RETRY_SECONDS, task_id)
        if rollout.state != Rollout.State.RUNNING:
            return None
        _settle_items(rollout)
        if _step_waves(rollout):
            return _schedule(rollout, settings.ROLLOUT_CHECK_INTERVAL_SECONDS, task_id)
        return None


def _schedule(rollout: Rollout, delay: float, task_id: str | None) -> NextAdvance | None:
    """Make a look in `delay` seconds the rollout's next task, unless another task became current meanwhile."""
    next_id = str(uuid.uuid4())
    matching = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.RUNNING)
    if task_id:
        matching = matching.filter(next_task_id=task_id)
    lease = timezone.now() + dt.timedelta(seconds=delay + LEASE_MARGIN_SECONDS)
    return NextAdvance(delay, next_id) if matching.update(next_task_id=next_id, lease_expires_at=lease) else None


def _step_waves(rollout: Rollout) -> bool:
    """Act on the current wave until there is nothing to do but wait; returns whether the rollout still runs."""
    last = rollout.items.order_by("-wave").values_list("wave", flat=True).first() or 0
    for _ in range(rollout.items.count() + last + 1):  # every pass starts, skips or ends something
        rollout.refresh_from_db()
        policy = WavePolicy(
            rollout.concurrency, rollout.failure_threshold, rollout.accepted_failures, rollout.current_wave >= last
        )
        decision = decide_wave(_progress(rollout), policy)
        if decision.action == WaveAction.WAIT:
            return True
        if decision.action == WaveAction.START:
            _start_items(rollout, decision.count)
        elif decision.action == WaveAction.NEXT_WAVE:
            _next_wave(rollout)
        elif decision.action == WaveAction.PAUSE:
            _pause(rollout, decision.reason)
            return False
        else:
            _complete(rollout)
            return False
    return True


def _progress(rollout: Rollout) -> WaveProgress:
    counts = dict(
        rollout.items.filter(wave=rollout.current_wave).values_list("state").annotate(n=Count("id")).order_by()
    )
    return WaveProgress(
        wave=rollout.current_wave,
        size=sum(counts.values()),
        planned=counts.get(Item.PLANNED, 0),
        upgrading=counts.get(Item.UPGRADING, 0),
        succeeded=counts.get(Item.SUCCEEDED, 0),
        failed=counts.get(Item.FAILED, 0),
        skipped=counts.get(Item.SKIPPED, 0) + counts.get(Item.CANCELLED, 0),
    )


def _settle_items(rollout: Rollout) -> None:
    """Items whose upgrade ended take its outcome (the upgrade's end does that already; this catches up with
    one that ended without it, a store deleted by hand, say)."""
    for item in rollout.items.filter(state=Item.UPGRADING).select_related("upgrade"):
        if item.upgrade is None:
            RolloutItem.objects.filter(pk=item.pk).update(state=Item.FAILED, message="its upgrade record is missing")
        else:
            RolloutItem.settle(item.upgrade)


def _start_items(rollout: Rollout, count: int) -> None:
    target = charts.target(rollout.engine).version
    items = rollout.items.filter(wave=rollout.current_wave, state=Item.PLANNED).select_related("store")
    for item in items.order_by("id")[:count]:
        store = item.store
        skip = _skip_reason(store, target, rollout)
        with transaction.atomic():
            if not RolloutItem.objects.filter(pk=item.pk, state=Item.PLANNED).update(state=Item.UPGRADING):
                continue  # taken meanwhile (a cancel)
            if not skip:
                try:
                    record = services.upgrade_store(store, rollout.created_by, rollout=rollout)
                    RolloutItem.objects.filter(pk=item.pk).update(upgrade=record)
                    continue
                except services.ServiceError as exc:
                    skip = str(exc)
            RolloutItem.objects.filter(pk=item.pk).update(state=Item.SKIPPED, message=skip[:2000])
            services.add_event(
                store,
                StoreEvent.Step.UPGRADE_PLANNED,
                StoreEvent.Outcome.INFO,
                f"Skipped by rollout #{rollout.pk}: {skip}",
            )


def _skip_reason(store, target: str, rollout: Rollout) -> str:
    """Why a planned store is not upgraded after all when its turn comes ("" when it is)."""
    if target != rollout.target_version:
        return f"the chart in STORE_CHARTS_DIR is now {target}, not the rollout's {rollout.target_version}"
    if store.status == Status.DELETED or store.status == Status.DELETING:
        return "the store is deleted"
    if store.upgrades_pinned:
        return "its owner pinned it"
    if not charts.is_older(store.chart_version, target):
        return f"it already runs chart {store.chart_version}"
    if store.status != Status.READY:
        return f"it is {store.status}, not ready"
    return ""


def _next_wave(rollout: Rollout) -> None:
    with transaction.atomic():
        won = Rollout.objects.filter(pk=rollout.pk, current_wave=rollout.current_wave).update(
            current_wave=rollout.current_wave + 1, accepted_failures=0
        )
        if won:
            audit.record(
                AuditEntry.Action.ROLLOUT_WAVE, actor_name="system", rollout=rollout.pk, wave=rollout.current_wave + 1
            )


def _pause(rollout: Rollout, reason: str) -> None:
    with transaction.atomic():
        won = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.RUNNING).update(
            state=Rollout.State.PAUSED, state_message=f"Paused automatically: {reason}"[:2000], next_task_id=""
        )
        if won:
            audit.record(
                AuditEntry.Action.ROLLOUT_PAUSE,
                outcome=AuditEntry.Outcome.FAILED,
                actor_name="system",
                rollout=rollout.pk,
                reason=reason,
            )
    log.warning("rollout %s paused: %s", rollout.pk, reason, extra={"rollout_id": rollout.pk})


def _complete(rollout: Rollout) -> None:
    counts = dict(rollout.items.values_list("state").annotate(n=Count("id")).order_by())
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    with transaction.atomic():
        won = Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.RUNNING).update(
            state=Rollout.State.COMPLETED, state_message=f"Done: {summary}", finished_at=timezone.now(), next_task_id=""
        )
        if won:
            audit.record(AuditEntry.Action.ROLLOUT_COMPLETE, actor_name="system", rollout=rollout.pk, items=counts)


def resume_lost(resume_queued: bool = False) -> list[tuple[int, str]]:
    """Running rollouts whose queued advance was lost (lease expired; with `resume_queued`, every running
    one, as a worker starts): each gets a new current task. Returns (rollout id, task id) to queue."""
    now = timezone.now()
    running = Rollout.objects.filter(state=Rollout.State.RUNNING)
    if not resume_queued:
        running = running.filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    resumed = []
    for rollout in running:
        task_id = str(uuid.uuid4())
        won = Rollout.objects.filter(pk=rollout.pk, next_task_id=rollout.next_task_id).update(
            next_task_id=task_id, lease_expires_at=now + dt.timedelta(seconds=services.QUEUED_LEASE_SECONDS)
        )
        if won:
            resumed.append((rollout.pk, task_id))
    return resumed
