"""Celery tasks: thin wrappers that run one provisioning step and schedule what it asks for.

Tasks take store ids, never objects. Each is queued under the id the store records as its next
task (`Store.next_task_id`), so a duplicate (a redelivery of a superseded task) does nothing. Acks
are late and a lost worker's task is rejected back to the queue (settings).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.db import DatabaseError

from . import provisioning, rollouts, upgrades
from .locking import start_heartbeat
from .provisioning import Next

log = logging.getLogger(__name__)


def schedule(store_id: int, nxt: Next) -> None:
    task = {
        "provision": provision_store,
        "check_ready": check_store_ready,
        "teardown": teardown_store,
        "upgrade": upgrade_store,
        "check_upgrade": check_store_upgrade,
        "rollback": roll_back_store,
        "check_rollback": check_store_rollback,
    }.get(nxt.action)
    if task is not None:
        task.apply_async((store_id,), countdown=nxt.delay, task_id=nxt.task_id or None)


def _run_step(step, store_id: int, task_id: str | None) -> str:
    nxt = step(store_id, task_id)
    schedule(store_id, nxt)
    return nxt.action


# Postgres away (restarting, failing over): the step is retried as the same task (same id, so it stays
# the store's current one), after 2 s growing to 30 s, for about 10 minutes; then the reconciler resumes it.
STEP_TASK = {
    "bind": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 30,
    "retry_jitter": False,
    "max_retries": 25,
}


@shared_task(name="stores_app.tasks.provision_store", **STEP_TASK)
def provision_store(self, store_id: int) -> str:
    return _run_step(provisioning.provision, store_id, self.request.id)


@shared_task(name="stores_app.tasks.check_store_ready", **STEP_TASK)
def check_store_ready(self, store_id: int) -> str:
    return _run_step(provisioning.check_ready, store_id, self.request.id)


@shared_task(name="stores_app.tasks.teardown_store", **STEP_TASK)
def teardown_store(self, store_id: int) -> str:
    return _run_step(provisioning.teardown, store_id, self.request.id)


@shared_task(name="stores_app.tasks.upgrade_store", **STEP_TASK)
def upgrade_store(self, store_id: int) -> str:
    return _run_step(upgrades.upgrade, store_id, self.request.id)


@shared_task(name="stores_app.tasks.check_store_upgrade", **STEP_TASK)
def check_store_upgrade(self, store_id: int) -> str:
    return _run_step(upgrades.check_upgrade, store_id, self.request.id)


@shared_task(name="stores_app.tasks.roll_back_store", **STEP_TASK)
def roll_back_store(self, store_id: int) -> str:
    return _run_step(upgrades.rollback, store_id, self.request.id)


@shared_task(name="stores_app.tasks.check_store_rollback", **STEP_TASK)
def check_store_rollback(self, store_id: int) -> str:
    return _run_step(upgrades.check_rollback, store_id, self.request.id)


@shared_task(name="stores_app.tasks.advance_rollout", **STEP_TASK)
def advance_rollout(self, rollout_id: int) -> str:
    nxt = rollouts.advance(rollout_id, self.request.id)
    if nxt is not None:
        advance_rollout.apply_async((rollout_id,), countdown=nxt.delay, task_id=nxt.task_id)
    return "running" if nxt is not None else "done"


@shared_task(name="stores_app.tasks.reconcile_stores")
def reconcile_stores(resume_queued: bool = False) -> dict:
    report, follow_ups = provisioning.reconcile(resume_queued=resume_queued)
    for store_id, nxt in follow_ups:
        schedule(store_id, nxt)
    resumed_rollouts = rollouts.resume_lost(resume_queued=resume_queued)
    for rollout_id, task_id in resumed_rollouts:
        advance_rollout.apply_async((rollout_id,), task_id=task_id)
    versions = upgrades.record_missing_versions()
    return {
        "resumed": report.resumed,
        "vanished": report.vanished,
        "orphans": report.orphans,
        "rollouts": [rollout_id for rollout_id, _ in resumed_rollouts],
        "versions_recorded": versions,
    }


@worker_process_init.connect
def _beat_heartbeat(**_kwargs) -> None:
    # Each pool process beats for itself: a killed or frozen process must stop beating on its own.
    start_heartbeat()


# The worker asks the reconciler to resume at once each time it connects to the broker (at start and
# after an outage): orchestrator/celery.py, ResumeOnConnectStep.


@shared_task(name="stores_app.tasks.act_on_orphan", bind=True, max_retries=4)
def act_on_orphan(self, orphan_id: int, action: str, actor_id: int | None) -> str:
    """Adopt or delete an orphaned namespace as staff asked; a temporary cluster error is retried (5-40 s)."""
    from . import services

    final = self.request.retries >= self.max_retries
    outcome = services.carry_out_orphan_action(orphan_id, action, actor_id, final=final)
    if outcome == "retry":
        raise self.retry(countdown=5 * 2**self.request.retries)
    return outcome


# --- running stores: health watching and owner notifications ------------------------------------


@shared_task(name="stores_app.tasks.refresh_health_pass")
def refresh_health_pass() -> int:
    """Beat: queue a health refresh for the stalest running stores (bounded per pass)."""
    from . import health_watch

    due = health_watch.claim_due()
    for store_id in due:
        refresh_store_health.delay(store_id)
    return len(due)


@shared_task(
    name="stores_app.tasks.refresh_store_health", autoretry_for=(DatabaseError,), retry_backoff=2, max_retries=5
)
def refresh_store_health(store_id: int) -> str:
    from . import health_watch

    return health_watch.refresh(store_id)


@shared_task(name="stores_app.tasks.notify_owners")
def notify_owners() -> dict:
    """Beat (and after a degradation): email owners about changes of their stores not mailed yet."""
    from . import notify

    return notify.notify_pass()
