"""Drives provisioning steps in-process, the way the task layer would (same task ids, same delays), for
tests that script helm."""

from __future__ import annotations

import time

from stores_app import provisioning, upgrades
from stores_app.models import Store

STEPS = {
    "provision": provisioning.provision,
    "check_ready": provisioning.check_ready,
    "teardown": provisioning.teardown,
    "upgrade": upgrades.upgrade,
    "check_upgrade": upgrades.check_upgrade,
    "rollback": upgrades.rollback,
    "check_rollback": upgrades.check_rollback,
}


def drive(store_id: int, first: str = "provision", timeout: float = 240) -> Store:
    """Run steps until one says done, waiting each step's real delay (no shrunk backoff), within `timeout` s."""
    action, task_id = first, Store.objects.get(pk=store_id).next_task_id or None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nxt = STEPS[action](store_id, task_id)
        if nxt.action == "done":
            break
        action, task_id = nxt.action, nxt.task_id or None
        time.sleep(nxt.delay)
    else:
        store = Store.objects.get(pk=store_id)
        raise AssertionError(f"store {store_id} still moving after {timeout} s: {describe(store)}")
    return Store.objects.get(pk=store_id)


def timeline(store: Store) -> list[tuple[str, str, str]]:
    return [(e.step, e.outcome, e.message) for e in store.events.all()]


def describe(store: Store) -> str:
    """The store's status and timeline as text, for assertion messages."""
    lines = [f"{store.status}: {store.status_message}"] + [f"  {s} {o} {m}" for s, o, m in timeline(store)]
    return "\n".join(lines)
