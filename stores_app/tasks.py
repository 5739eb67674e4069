"""Celery tasks: thin wrappers that run one provisioning step and schedule what it asks for.

Tasks take store ids, never objects. Acks are late and a lost worker's task is
rejected back to the queue (settings); the attempt cap lives in the database.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import provisioning
from .provisioning import Next

log = logging.getLogger(__name__)


def schedule(store_id: int, nxt: Next) -> None:
    task = {"provision": provision_store, "check_ready": check_store_ready, "teardown": teardown_store}.get(nxt.action)
    if task is not None:
        task.apply_async((store_id,), countdown=nxt.delay)


def _run_step(step, store_id: int) -> str:
    nxt = step(store_id)
    schedule(store_id, nxt)
    return nxt.action


@shared_task(name="stores_app.tasks.provision_store")
def provision_store(store_id: int) -> str:
    return _run_step(provisioning.provision, store_id)


@shared_task(name="stores_app.tasks.check_store_ready")
def check_store_ready(store_id: int) -> str:
    return _run_step(provisioning.check_ready, store_id)


@shared_task(name="stores_app.tasks.teardown_store")
def teardown_store(store_id: int) -> str:
    return _run_step(provisioning.teardown, store_id)


@shared_task(name="stores_app.tasks.reconcile_stores")
def reconcile_stores() -> dict:
    report, follow_ups = provisioning.reconcile()
    for store_id, nxt in follow_ups:
        schedule(store_id, nxt)
    return {"resumed": report.resumed, "vanished": report.vanished, "orphans": report.orphans}


@worker_ready.connect
def _reconcile_on_start(sender=None, **_kwargs) -> None:
    # A worker that starts after a crash picks up what the crashed one left.
    reconcile_stores.delay()


@shared_task(name="stores_app.tasks.act_on_orphan", bind=True, max_retries=4)
def act_on_orphan(self, orphan_id: int, action: str, actor_id: int | None) -> str:
    """Adopt or delete an orphaned namespace as staff asked; a temporary cluster error is retried (5-40 s)."""
    from . import services

    final = self.request.retries >= self.max_retries
    outcome = services.carry_out_orphan_action(orphan_id, action, actor_id, final=final)
    if outcome == "retry":
        raise self.retry(countdown=5 * 2**self.request.retries)
    return outcome
