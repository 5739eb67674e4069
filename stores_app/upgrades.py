"""The worker side of a store upgrade: apply today's chart, gate on health, roll back on failure.

It runs on provisioning's machinery (the store's lock, its one current task, recorded helm operations,
one transaction per state change) and asks the same decision table (stores_app/decisions.py), with a
goal. The store is `upgrading` throughout; its open `StoreUpgrade` row says where the upgrade stands:

- `upgrading`: step "upgrade" observes the release and takes the one action the goal "deployed at the
  target version" calls for: `helm upgrade` with the store's recorded values, wait for a live helm,
  unlock a revision our lost helm left pending, or keep it (already at the target: a resumed step never
  applies an upgrade twice). Then "check_upgrade", the health gate: every workload of the new revision
  ready, its setup Job (migrations) complete, and `helm test` placing an order.
- `rolling_back`: anything that stops the upgrade — a permanent helm error, a failed setup Job or
  smoke test, no health within UPGRADE_HEALTH_TIMEOUT_SECONDS, temporary trouble for
  TEMPORARY_ERROR_TIMEOUT_SECONDS, its helm cut off more than PROVISION_MAX_ATTEMPTS times — starts the
  rollback: step "rollback" takes the store back to the revision it had (`helm rollback`, again decided
  by the table), and "check_rollback" verifies that revision is healthy the same way.

It ends ready on the new version; or ready on its old revision with the failure recorded (timeline,
audit log, the upgrade row); or, when even the rollback is not healthy within ROLLBACK_TIMEOUT_SECONDS,
failed with the reason. It never uninstalls: a store being upgraded holds data.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import audit, charts
from .decisions import ReleaseAction, UnknownReleaseState, UpgradeGoal, decide_release
from .helm import HelmError, HelmGateway
from .kube import KubeError, KubeGateway
from .models import AuditEntry, RolloutItem, Status, Store, StoreEvent, StoreUpgrade
from .provisioning import (
    DONE,
    STORE_VALUE_KEYS,
    Next,
    ReleaseBusy,
    _event_once,
    _fail,
    _helm_operation,
    _locked_step,
    _observe_release,
    _record_repair,
    _release_limits,
    _retry_delay,
    _schedule,
    _set_message,
    chart_values,
    store_values,
)
from .services import add_event, queue_rollout_advance

log = logging.getLogger(__name__)
Step = StoreEvent.Step
Outcome = StoreEvent.Outcome
State = StoreUpgrade.State
UPGRADING = (Status.UPGRADING,)


def open_upgrade(store: Store) -> StoreUpgrade | None:
    return StoreUpgrade.objects.filter(store=store, state__in=StoreUpgrade.OPEN_STATES).first()


def resume_action(store: Store) -> str:
    """The step a lost upgrade resumes with: each observes first, so starting over is safe."""
    record = open_upgrade(store)
    return "rollback" if record is not None and record.state == State.ROLLING_BACK else "upgrade"


def _phase(store: Store, wanted: str) -> tuple[StoreUpgrade | None, Next | None]:
    """The store's open upgrade if it is in phase `wanted`; otherwise what to do instead."""
    record = open_upgrade(store)
    if record is None:
        return None, _end_orphaned(store)
    if record.state != wanted:
        return None, _schedule(store, resume_action(store), 0, Status.UPGRADING)
    return record, None


def _end_orphaned(store: Store) -> Next:
    """An `upgrading` store without an open upgrade (set by hand, say): back to ready, after the usual checks."""
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=Status.UPGRADING).update(
            status=Status.PROVISIONING, status_message="No upgrade under way; checking the store", lease_expires_at=None
        )
        if won:
            add_event(store, Step.UPGRADE, Outcome.INFO, "No upgrade under way; checking the store as it is")
    return _schedule(store, "check_ready", 0, Status.PROVISIONING) if won else DONE


# --- applying the new revision ----------------------------------------------------------------------


def upgrade(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "upgrade", UPGRADING, _upgrade)


def _upgrade(store: Store) -> Next:
    record, instead = _phase(store, State.UPGRADING)
    if record is None:
        return instead or DONE
    # A step in progress: the lock, not a lease, says someone works on it (so a lost one counts an attempt).
    Store.objects.filter(pk=store.pk).update(lease_expires_at=None)
    store.refresh_from_db()
    if store.attempts > settings.PROVISION_MAX_ATTEMPTS:
        return _begin_rollback(store, record, f"its helm operation was cut off {store.attempts} times")
    try:
        target = charts.target(store.engine)
    except charts.ChartUnavailable as exc:
        return _begin_rollback(store, record, str(exc))
    if target.version != record.to_version:
        return _begin_rollback(
            store, record, f"the chart in STORE_CHARTS_DIR is now {target.version}, not {record.to_version}"
        )
    try:
        _apply_upgrade(store, record)
    except UnknownReleaseState as exc:
        return _fail_upgrade(store, record, str(exc), "release_state")
    except ReleaseBusy as exc:
        return _upgrade_trouble(store, record, str(exc), delay=5.0)
    except (KubeError, HelmError) as exc:
        if not exc.temporary:
            return _begin_rollback(store, record, f"helm upgrade failed: {exc}")
        return _upgrade_trouble(store, record, str(exc))
    Store.objects.filter(pk=store.pk).update(trouble_since=None, status_message="Upgraded; checking its health")
    return _schedule(store, "check_upgrade", settings.READY_CHECK_INTERVAL_SECONDS, Status.UPGRADING)


def _apply_upgrade(store: Store, record: StoreUpgrade) -> None:
    """Observe, decide with the goal "deployed at the target", act; again after unlocking a stuck revision."""
    helm = HelmGateway()
    goal = UpgradeGoal(record.to_version)
    for _ in range(3):
        status = helm.metadata(store.namespace, store.release_name)
        decision = decide_release(_observe(store, helm, status), _release_limits(), goal)
        if decision.action == ReleaseAction.KEEP:
            _record_applied(record, status.revision, status.app_version)
            return
        if decision.action == ReleaseAction.WAIT:
            raise ReleaseBusy(decision.reason)
        if decision.action == ReleaseAction.UNLOCK:
            helm.mark_failed(store.namespace, store.release_name, status.revision or 0, decision.reason)
            _record_repair(store, f"Unlocked the release (marked failed, to upgrade again): {decision.reason}")
            continue
        if decision.action != ReleaseAction.UPGRADE:
            raise UnknownReleaseState(f"No rule to upgrade a release when the table says {decision.action.value}")
        if status.chart_version and status.chart_version != record.to_version and status.state.value == "deployed":
            _record_starting_point(record, status)
        values = _upgrade_values(store, helm)
        add_event(store, Step.UPGRADE, Outcome.STARTED, f"helm upgrade to chart {record.to_version}: {decision.reason}")
        with _helm_operation(store, ReleaseAction.UPGRADE.value):
            revision = helm.install_or_upgrade(store.namespace, store.release_name, store.engine, values)
        _record_applied(record, revision, helm.chart(store.engine).metadata.app_version or "")
        add_event(store, Step.UPGRADE, Outcome.SUCCEEDED, f"Revision {revision} applied (chart {record.to_version})")
        return
    raise HelmError("The release did not settle after a repair; looking again", temporary=True)


def _observe(store: Store, helm: HelmGateway, status):
    return _observe_release(store, helm, status, setup_matters=False)


def _record_starting_point(record: StoreUpgrade, status) -> None:
    """The revision to come back to: what was deployed when this upgrade first acted."""
    StoreUpgrade.objects.filter(pk=record.pk).update(
        from_revision=status.revision, from_version=status.chart_version, from_app_version=status.app_version
    )
    record.from_revision, record.from_version = status.revision, status.chart_version
    record.from_app_version = status.app_version


def _record_applied(record: StoreUpgrade, revision: int | None, app_version: str) -> None:
    if record.applied_at is None:
        record.applied_at = timezone.now()
    record.to_revision, record.to_app_version = revision, app_version or record.to_app_version
    StoreUpgrade.objects.filter(pk=record.pk).update(
        to_revision=record.to_revision, to_app_version=record.to_app_version, applied_at=record.applied_at
    )


def _upgrade_values(store: Store, helm: HelmGateway) -> dict:
    """The store's recorded values; a store from before they were recorded gets them from its deployed
    revision (what it was really installed with), so its address and settings are not lost."""
    if not store.release_values:
        given = helm.user_values(store.namespace, store.release_name)
        recorded = {key: given[key] for key in STORE_VALUE_KEYS if key in given}
        store.release_values = recorded if "store" in recorded else store_values(store)
        Store.objects.filter(pk=store.pk).update(release_values=store.release_values)
    return chart_values(store)


def _upgrade_trouble(store: Store, record: StoreUpgrade, message: str, delay: float | None = None) -> Next:
    """A temporary problem before the new revision is applied: look again, for at most
    TEMPORARY_ERROR_TIMEOUT_SECONDS of trouble in a row; then give the upgrade up and roll back."""
    now = timezone.now()
    trouble = (now - (store.trouble_since or now)).total_seconds()
    if trouble > settings.TEMPORARY_ERROR_TIMEOUT_SECONDS:
        minutes = settings.TEMPORARY_ERROR_TIMEOUT_SECONDS / 60
        return _begin_rollback(store, record, f"{minutes:.0f} minutes of temporary problems: {message}")
    Store.objects.filter(pk=store.pk, trouble_since__isnull=True).update(trouble_since=now)
    return _look_again(store, message, "upgrade", Step.UPGRADE, delay if delay is not None else _retry_delay(trouble))


def _look_again(store: Store, message: str, action: str, step: str, delay: float) -> Next:
    _event_once(store, step, Outcome.WAITING, message)
    _set_message(store, message)
    return _schedule(store, action, delay, Status.UPGRADING)


# --- the health gate ----------------------------------------------------------------------------------


def check_upgrade(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "check_upgrade", UPGRADING, _check_upgrade)


def _check_upgrade(store: Store) -> Next:
    record, instead = _phase(store, State.UPGRADING)
    if record is None:
        return instead or DONE
    elapsed = (timezone.now() - (record.applied_at or record.requested_at)).total_seconds()
    verdict = _health(store, elapsed, settings.UPGRADE_HEALTH_TIMEOUT_SECONDS, "check_upgrade", Step.UPGRADE_CHECK)
    if isinstance(verdict, Next):
        return verdict
    if verdict:
        return _begin_rollback(store, record, verdict)
    return _finish_upgraded(store, record)


def _health(store: Store, elapsed: float, timeout: float, action: str, step: str) -> Next | str:
    """Workloads ready, setup Jobs complete, `helm test` passed: "" when healthy, the reason when not (for
    good), or the Next look when it may still become healthy within `timeout` seconds."""
    try:
        readiness = KubeGateway().readiness(store.namespace, store.release_name)
    except KubeError as exc:
        if not exc.temporary:
            return str(exc)
        readiness = None
        waiting = f"Cluster not reachable ({exc})"
    if readiness is not None:
        if readiness.failed:
            return f"setup did not complete: {readiness.summary()}"
        waiting = "" if readiness.ready else readiness.summary().capitalize()
    if not waiting and settings.STORE_SMOKE_TEST:
        try:
            HelmGateway().test(store.namespace, store.release_name)
        except HelmError as exc:
            if not exc.temporary:
                return f"smoke test failed: {exc}"
            waiting = f"Smoke test could not run yet ({exc})"
    if not waiting:
        _event_once(store, step, Outcome.SUCCEEDED, "Workloads ready, setup jobs complete, helm test passed")
        return ""
    if elapsed > timeout:
        return f"not healthy after {timeout:.0f} s: {waiting}"
    interval = min(10.0, settings.READY_CHECK_INTERVAL_SECONDS + elapsed / 30)
    return _look_again(store, waiting, action, step, interval)


def _finish_upgraded(store: Store, record: StoreUpgrade) -> Next:
    """Ready on the new version: store, upgrade row, timeline and audit in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=Status.UPGRADING).update(
            status=Status.READY,
            status_message=f"Ready; upgraded to chart {record.to_version}",
            failure_reason="",
            chart_version=record.to_version,
            app_version=record.to_app_version,
            helm_revision=record.to_revision,
            attempts=0,
            lease_expires_at=None,
            next_task_id="",
            trouble_since=None,
            updated_at=now,
        )
        if won:
            StoreUpgrade.objects.filter(pk=record.pk).update(state=State.SUCCEEDED, finished_at=now, message="")
            message = f"Upgraded from chart {record.from_version or '?'} to {record.to_version}"
            add_event(store, Step.UPGRADE, Outcome.SUCCEEDED, f"{message} (revision {record.to_revision})")
            audit.record(
                AuditEntry.Action.STORE_UPGRADED,
                store=store,
                actor_name="system",
                from_version=record.from_version,
                to_version=record.to_version,
                revision=record.to_revision,
                rollout=record.rollout_id,
            )
            _tell_rollout(record)
    return DONE


# --- rolling back ------------------------------------------------------------------------------------


def _begin_rollback(store: Store, record: StoreUpgrade, reason: str) -> Next:
    """The upgrade failed for good: record why, then go back to the revision the store had."""
    reason = reason[:1500]
    with transaction.atomic():
        won = StoreUpgrade.objects.filter(pk=record.pk, state=State.UPGRADING).update(
            state=State.ROLLING_BACK, message=reason, rollback_started_at=timezone.now()
        )
        if not won:
            return DONE
        Store.objects.filter(pk=store.pk, status=Status.UPGRADING).update(
            attempts=0, trouble_since=None, status_message=f"Upgrade failed ({reason}); rolling back"
        )
        add_event(store, Step.UPGRADE, Outcome.FAILED, f"Upgrade to chart {record.to_version} failed: {reason}")
        log.warning("store %s: upgrade failed, rolling back: %s", store.pk, reason, extra={"store_id": store.pk})
        return _schedule(store, "rollback", 0, Status.UPGRADING)


def rollback(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "rollback", UPGRADING, _rollback)


def _rollback(store: Store) -> Next:
    record, instead = _phase(store, State.ROLLING_BACK)
    if record is None:
        return instead or DONE
    Store.objects.filter(pk=store.pk).update(lease_expires_at=None)
    store.refresh_from_db()
    if store.attempts > settings.PROVISION_MAX_ATTEMPTS:
        return _fail_upgrade(store, record, f"its rollback was cut off {store.attempts} times", "rollback")
    if _rollback_elapsed(record) > settings.ROLLBACK_TIMEOUT_SECONDS:
        return _fail_upgrade(store, record, f"the rollback did not finish: {store.status_message}", "rollback")
    try:
        if record.from_revision is not None:  # None: the upgrade stopped before it changed anything
            _apply_rollback(store, record)
    except UnknownReleaseState as exc:
        return _fail_upgrade(store, record, str(exc), "release_state")
    except ReleaseBusy as exc:
        return _look_again(store, str(exc), "rollback", Step.ROLLBACK, 5.0)
    except (KubeError, HelmError) as exc:
        if not exc.temporary:
            return _fail_upgrade(store, record, f"helm rollback failed: {exc}", "rollback")
        return _look_again(store, str(exc), "rollback", Step.ROLLBACK, _retry_delay(_rollback_elapsed(record)))
    _set_message(store, "Rolled back; checking its health")
    return _schedule(store, "check_rollback", settings.READY_CHECK_INTERVAL_SECONDS, Status.UPGRADING)


def _rollback_elapsed(record: StoreUpgrade) -> float:
    return (timezone.now() - (record.rollback_started_at or timezone.now())).total_seconds()


def _apply_rollback(store: Store, record: StoreUpgrade) -> None:
    """Observe, decide with the goal "back at the revision before", act."""
    helm = HelmGateway()
    goal = UpgradeGoal(record.from_version, rollback_to=record.from_revision)
    for _ in range(3):
        status = helm.metadata(store.namespace, store.release_name)
        decision = decide_release(_observe(store, helm, status), _release_limits(), goal)
        if decision.action == ReleaseAction.KEEP:
            return
        if decision.action == ReleaseAction.WAIT:
            raise ReleaseBusy(decision.reason)
        if decision.action == ReleaseAction.UNLOCK:
            helm.mark_failed(store.namespace, store.release_name, status.revision or 0, decision.reason)
            _record_repair(store, f"Unlocked the release (marked failed, to roll back): {decision.reason}")
            continue
        if decision.action != ReleaseAction.ROLLBACK:
            raise UnknownReleaseState(f"No rule to roll back a release when the table says {decision.action.value}")
        add_event(store, Step.ROLLBACK, Outcome.STARTED, f"helm rollback to revision {record.from_revision}")
        KubeGateway().delete_finished_jobs(store.namespace, store.release_name)
        with _helm_operation(store, ReleaseAction.ROLLBACK.value):
            helm.rollback(store.namespace, store.release_name, record.from_revision or 0)
        add_event(
            store,
            Step.ROLLBACK,
            Outcome.SUCCEEDED,
            f"Back at chart {record.from_version} (a copy of revision {record.from_revision})",
        )
        return
    raise HelmError("The release did not settle after a repair; looking again", temporary=True)


def check_rollback(store_id: int, task_id: str | None = None) -> Next:
    return _locked_step(store_id, task_id, "check_rollback", UPGRADING, _check_rollback)


def _check_rollback(store: Store) -> Next:
    record, instead = _phase(store, State.ROLLING_BACK)
    if record is None:
        return instead or DONE
    elapsed = _rollback_elapsed(record)
    _unblock_statefulsets(store)
    verdict = _health(store, elapsed, settings.ROLLBACK_TIMEOUT_SECONDS, "check_rollback", Step.ROLLBACK)
    if isinstance(verdict, Next):
        return verdict
    if verdict:
        return _fail_upgrade(store, record, f"rolled back, but the old revision is not healthy: {verdict}", "rollback")
    try:
        now_at = HelmGateway().metadata(store.namespace, store.release_name)
    except HelmError as exc:
        return _look_again(store, str(exc), "check_rollback", Step.ROLLBACK, 5.0)
    return _finish_rolled_back(store, record, now_at.revision)


def _unblock_statefulsets(store: Store) -> None:
    """A StatefulSet pod of the failed revision that never got ready keeps the rolled-back one from starting."""
    try:
        deleted = KubeGateway().replace_stuck_statefulset_pods(store.namespace, store.release_name)
    except KubeError:
        return  # the health check below meets the same trouble and says so
    if deleted:
        add_event(
            store,
            Step.ROLLBACK,
            Outcome.INFO,
            f"Replaced pod(s) {', '.join(deleted)} of the failed revision that "
            "never got ready (their StatefulSet waits for them otherwise); their volumes stay",
        )


def _finish_rolled_back(store: Store, record: StoreUpgrade, revision: int | None) -> Next:
    """Ready on the old version, the failure recorded: store, upgrade row, timeline, audit in one transaction."""
    now = timezone.now()
    note = f"the upgrade to chart {record.to_version} failed and was rolled back: {record.message}"
    with transaction.atomic():
        won = Store.objects.filter(pk=store.pk, status=Status.UPGRADING).update(
            status=Status.READY,
            status_message=f"Ready on chart {record.from_version}; {note}"[:2000],
            chart_version=record.from_version or store.chart_version,
            app_version=record.from_app_version or store.app_version,
            helm_revision=revision,
            attempts=0,
            lease_expires_at=None,
            next_task_id="",
            trouble_since=None,
            updated_at=now,
        )
        if won:
            StoreUpgrade.objects.filter(pk=record.pk).update(state=State.ROLLED_BACK, finished_at=now)
            add_event(store, Step.ROLLBACK, Outcome.SUCCEEDED, f"Ready again on chart {record.from_version}; {note}")
            audit.record(
                AuditEntry.Action.STORE_ROLLED_BACK,
                outcome=AuditEntry.Outcome.FAILED,
                store=store,
                actor_name="system",
                from_version=record.from_version,
                to_version=record.to_version,
                reason=record.message[:500],
                rollout=record.rollout_id,
            )
            _tell_rollout(record)
    return DONE


def _fail_upgrade(store: Store, record: StoreUpgrade, reason: str, category: str) -> Next:
    """Neither the new nor the old revision is known healthy: the store fails with the reason (and keeps its
    release and data: never uninstalled); retrying it checks and repairs it like any failed store."""
    with transaction.atomic():
        StoreUpgrade.objects.filter(pk=record.pk, state__in=StoreUpgrade.OPEN_STATES).update(
            state=State.FAILED, message=reason[:2000], finished_at=timezone.now()
        )
        _fail(store, f"Upgrade to chart {record.to_version} failed: {reason}", category)
        _tell_rollout(record)
    return DONE


def _tell_rollout(record: StoreUpgrade) -> None:
    """A rollout's item takes the outcome in this transaction, and a running rollout looks at once (on commit)
    instead of at its next poll."""
    if record.rollout_id is not None:
        record.refresh_from_db()
        RolloutItem.settle(record)
        queue_rollout_advance(record.rollout_id)


# --- versions of stores from before they were recorded -------------------------------------------------


def record_missing_versions(limit: int = 10) -> list[int]:
    """Read the chart version of ready stores that have none recorded (installed before versions were),
    a few per reconciler pass; returns the stores updated."""
    done = []
    helm = HelmGateway()
    for store in Store.objects.filter(status=Status.READY, chart_version="")[:limit]:
        try:
            status = helm.metadata(store.namespace, store.release_name)
        except HelmError:
            continue
        if status.chart_version:
            Store.objects.filter(pk=store.pk, chart_version="").update(
                chart_version=status.chart_version, app_version=status.app_version
            )
            done.append(store.pk)
    return done
