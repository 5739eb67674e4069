"""How far a store has got, step by step, and how long the rest usually takes, for its page to show.

Read from the timeline only (no cluster): the current attempt's events (since the last request, retry
or deletion) mark each known step done, current, failed or pending. Steps this module does not know
(say, those of an upgrade) never break the stepper: they stay in the timeline, where every event is
shown, folded when the same thing repeats. Estimates come from recent stores of the same engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .models import Status, Store, StoreEvent, StoreUpgrade

Step = StoreEvent.Step
Outcome = StoreEvent.Outcome

PROVISION_STEPS = [
    (Step.NAMESPACE, "Namespace"),
    (Step.SECRETS, "Secrets"),
    (Step.HELM_INSTALL, "Helm install"),
    (Step.WORKLOADS, "Workloads ready"),
    (Step.SMOKE_TEST, "Smoke order"),
    (Step.READY, "Ready"),
]
TEARDOWN_STEPS = [
    (Step.TEARDOWN_RELEASE, "Uninstall release"),
    (Step.TEARDOWN_NAMESPACE, "Delete namespace and volumes"),
    (Step.DELETED, "Deleted"),
]
# An upgrade (stores_app/upgrades.py): the new revision, then its health gate; a rollback only when it failed.
UPGRADE_STEPS = [
    (Step.UPGRADE, "New version applied"),
    (Step.UPGRADE_CHECK, "Health gate"),
]
ROLLBACK_STEP = (Step.ROLLBACK, "Rolled back")
# Events that start a new attempt: everything before them belongs to an earlier one.
PROVISION_STARTS = {Step.REQUESTED, Step.RETRY}
TEARDOWN_START_MESSAGE = "Deletion requested"
ESTIMATE_SAMPLE = 20
ESTIMATE_CACHE_SECONDS = 60


@dataclass
class StepView:
    key: str
    label: str
    state: str = "pending"  # done | current | failed | pending
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    note: str = ""


@dataclass
class Progress:
    phase: str  # "provision" | "teardown"
    steps: list[StepView]
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    estimate_seconds: float | None
    failed_step: StepView | None = None

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.state == "done")

    @property
    def current_number(self) -> int:
        """The step the store is at, counting from 1 (the last one once all are done)."""
        return min(self.done_count + 1, len(self.steps))


@dataclass
class FoldedEvent:
    """One line of the timeline: an event, or a run of the same event repeated (count > 1)."""

    event: StoreEvent
    count: int = 1
    last_at: dt.datetime | None = None


@dataclass
class Attempt:
    """The events of one attempt (a request, a retry, or a deletion), folded."""

    number: int
    lines: list[FoldedEvent] = field(default_factory=list)
    outcome: str = ""


def _is_teardown_start(event: StoreEvent) -> bool:
    return event.step == Step.TEARDOWN_RELEASE and event.outcome == Outcome.STARTED


def _is_upgrade_start(event: StoreEvent) -> bool:
    """services.upgrade_store's first event: the upgrade was requested (by its owner, staff or a rollout)."""
    return event.step == Step.UPGRADE and event.outcome == Outcome.INFO and " requested" in event.message


def _is_attempt_start(event: StoreEvent) -> bool:
    return event.step in PROVISION_STARTS or _is_teardown_start(event) or _is_upgrade_start(event)


def split_attempts(events: list[StoreEvent]) -> list[list[StoreEvent]]:
    """The timeline cut at each request, retry and deletion: one list per attempt, oldest first."""
    attempts: list[list[StoreEvent]] = []
    for event in events:
        if not attempts or _is_attempt_start(event):
            attempts.append([])
        attempts[-1].append(event)
    return attempts


def fold(events: list[StoreEvent]) -> list[FoldedEvent]:
    """Consecutive events with the same step and outcome become one line with a count (a step that waited
    ten times is one "waiting ×10" line); the last message is kept, being the newest news."""
    lines: list[FoldedEvent] = []
    for event in events:
        last = lines[-1] if lines else None
        if last and (last.event.step, last.event.outcome) == (event.step, event.outcome):
            last.count += 1
            last.last_at = event.created_at
            last.event = _with_first_time(event, last.event.created_at)
        else:
            lines.append(FoldedEvent(event=event, last_at=event.created_at))
    return lines


def _with_first_time(event: StoreEvent, first: dt.datetime) -> StoreEvent:
    copy = StoreEvent(pk=event.pk, store_id=event.store_id, step=event.step, outcome=event.outcome)
    copy.message = event.message
    copy.created_at = first
    return copy


def attempts(events: list[StoreEvent]) -> list[Attempt]:
    """Every attempt, folded, newest first (the page shows the newest open and folds the rest)."""
    result = []
    for number, group in enumerate(split_attempts(events), start=1):
        ends = [e for e in group if e.step in (Step.READY, Step.FAILED, Step.DELETED)]
        result.append(Attempt(number=number, lines=fold(group), outcome=ends[-1].step if ends else ""))
    return list(reversed(result))


def progress(store: Store, events: list[StoreEvent]) -> Progress | None:
    """The stepper for the store's current attempt; None when the store is in a status with no stepper
    (a status this module does not know, say one added for upgrades)."""
    groups = split_attempts(events)
    current = groups[-1] if groups else []
    teardown = bool(current) and _is_teardown_start(current[0])
    if store.status in (Status.DELETING, Status.DELETED) or (store.status == Status.FAILED and teardown):
        return _build(store, current, TEARDOWN_STEPS, "teardown")
    upgrade = bool(current) and _is_upgrade_start(current[0])
    if store.status == Status.UPGRADING or (store.status == Status.FAILED and upgrade):
        rolled_back = any(e.step == Step.ROLLBACK for e in current)
        return _build(store, current, UPGRADE_STEPS + ([ROLLBACK_STEP] if rolled_back else []), "upgrade")
    if store.status in (Status.PENDING, Status.PROVISIONING, Status.FAILED, Status.READY, Status.DEGRADED):
        return _build(store, current, PROVISION_STEPS, "provision")
    return None


def _build(store: Store, events: list[StoreEvent], sequence, phase: str) -> Progress:
    steps = [StepView(key=str(key), label=label) for key, label in sequence]
    by_key = {s.key: s for s in steps}
    for event in events:
        step = by_key.get(event.step)
        if step is None:
            continue
        step.started_at = step.started_at or event.created_at
        if event.outcome == Outcome.SUCCEEDED:
            step.state, step.finished_at = "done", event.created_at
        elif event.outcome == Outcome.WAITING:
            step.note = event.message
    finished = _finished_at(store, events, phase)
    if finished is not None and phase == "provision" and store.status in (Status.READY, Status.DEGRADED):
        for step in steps:
            if step.state != "done":
                step.state, step.note = "done", step.note or "skipped"
    failed_step = _mark_current(store, steps, phase)
    started = events[0].created_at if events else store.created_at
    return Progress(
        phase=phase,
        steps=steps,
        started_at=started,
        finished_at=finished,
        estimate_seconds=estimate_seconds(store.engine, phase),
        failed_step=failed_step,
    )


def _finished_at(store: Store, events: list[StoreEvent], phase: str) -> dt.datetime | None:
    if phase == "upgrade":
        return store.updated_at if store.status == Status.FAILED else None
    ends = {Step.READY, Step.FAILED} if phase == "provision" else {Step.DELETED, Step.FAILED}
    last = [e.created_at for e in events if e.step in ends]
    return last[-1] if last else None


def _mark_current(store: Store, steps: list[StepView], phase: str) -> StepView | None:
    """The first step not done is where the store is now (or where it failed); the last done step before
    it may have been marked done out of order (a resumed attempt), which is fine: done is done."""
    pending = [s for s in steps if s.state != "done"]
    if not pending:
        return None
    first = pending[0]
    if store.status == Status.FAILED:
        first.state = "failed"
        return first
    if store.is_changing:
        first.state = "current"
    return None


def elapsed_seconds(prog: Progress) -> float:
    end = prog.finished_at or timezone.now()
    return max(0.0, (end - prog.started_at).total_seconds()) if prog.started_at else 0.0


def estimate_seconds(engine: str, phase: str) -> float | None:
    """The median time of the last ESTIMATE_SAMPLE stores of this engine to get through `phase` (request to
    ready, deletion to deleted, or an upgrade that succeeded from request to end); None before there is any.
    Cached for a minute: one query per engine and phase."""
    key = f"progress-estimate:{engine}:{phase}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    table, where = Store._meta.db_table, "engine = %s"
    if phase == "provision":
        start, end = "created_at", "ready_at"
    elif phase == "upgrade":
        start, end = "requested_at", "finished_at"
        table = StoreUpgrade._meta.db_table
        where = f"state = 'succeeded' AND store_id IN (SELECT id FROM {Store._meta.db_table} WHERE engine = %s)"  # noqa: S608
    else:
        start, end = "deletion_requested_at", "deleted_at"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) FROM ("  # noqa: S608 (fixed column names)
            f"  SELECT EXTRACT(EPOCH FROM {end} - {start}) AS d FROM {table}"
            f"   WHERE {where} AND {end} IS NOT NULL AND {start} IS NOT NULL"
            f"   ORDER BY {end} DESC LIMIT %s) recent",
            [engine, ESTIMATE_SAMPLE],
        )
        row = cursor.fetchone()
    value = float(row[0]) if row and row[0] is not None else 0.0
    cache.set(key, value, ESTIMATE_CACHE_SECONDS)
    return value or None
