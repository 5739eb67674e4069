"""Drives provisioning steps in-process, the way the task layer would, for tests that script helm."""

from __future__ import annotations

import time

from stores_app import provisioning
from stores_app.models import Store

STEPS = {
    "provision": provisioning.provision,
    "check_ready": provisioning.check_ready,
    "teardown": provisioning.teardown,
}


def drive(store_id: int, first: str = "provision", limit: int = 200, max_sleep: float = 0.5) -> Store:
    """Run steps until one says done; sleeps are capped so backoff does not slow the test."""
    action = first
    for _ in range(limit):
        nxt = STEPS[action](store_id)
        if nxt.action == "done":
            break
        action = nxt.action
        time.sleep(min(nxt.delay, max_sleep))
    return Store.objects.get(pk=store_id)


def timeline(store: Store) -> list[tuple[str, str, str]]:
    return [(e.step, e.outcome, e.message) for e in store.events.all()]


def describe(store: Store) -> str:
    """The store's status and timeline as text, for assertion messages."""
    lines = [f"{store.status}: {store.status_message}"] + [f"  {s} {o} {m}" for s, o, m in timeline(store)]
    return "\n".join(lines)
