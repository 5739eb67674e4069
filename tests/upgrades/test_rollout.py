"""A rollout of 12 stores with a real Celery worker on the simulated cluster, through the staff API.

Waves of 1 (the canary), 2, 4 and 5 stores, two at a time, pausing when more than 25 % of a wave
fails. The new version can never be scheduled for the first two stores of wave 3: each is rolled back
on its own and is ready on its old version, and the rollout pauses as soon as the second one fails:
what is under way finishes, the rest of wave 3 does not start. Resumed, it finishes wave 3 and starts
wave 4; cancelled there, what was under way finishes and what was not stays as it was, its owners told.
At the end no store is left upgrading, no release pending, every store was upgraded at most once, and
every step is in the audit log."""

from __future__ import annotations

import pytest

from stores_app import services
from stores_app.models import AuditEntry, Rollout, RolloutItem, Status, Store, StoreUpgrade
from stores_app.rollouts import plan_waves
from tests.conftest import WorkerProcess, worker_env

from .versions import (
    NEW_VERSION,
    OLD_VERSION,
    helm_history,
    pending_releases,
    release_new_version,
    revisions_at,
    wait_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def worker(as_orchestrator, transactional_db, tmp_path, charts_dir):
    """The real worker (4 slots) on the charts copy; a new version fails health within 20 s (this test only)."""
    env = worker_env(as_orchestrator, tmp_path, STORE_CHARTS_DIR=str(charts_dir), UPGRADE_HEALTH_TIMEOUT_SECONDS="20")
    process = WorkerProcess(env, tmp_path / "worker.log", concurrency=4).start()
    yield process
    try:  # whatever happened, the test's stores leave the cluster through the product
        for store in Store.objects.live():
            services.delete_store(store, store.owner)
        wait_until(lambda: not Store.objects.live().exists(), 240, "the test's stores deleted")
    finally:
        process.stop()


def all_in(ids: list[int], wanted: set[str]) -> bool:
    return Store.objects.filter(pk__in=ids, status__in=wanted).count() == len(ids)


def items(rollout_id: int, wave: int | None = None) -> dict[str, list[int]]:
    """Store ids of the rollout (or of one wave) by item state."""
    out: dict[str, list[int]] = {}
    rows = RolloutItem.objects.filter(rollout_id=rollout_id).order_by("id")
    for store_id, state in (rows.filter(wave=wave) if wave else rows).values_list("store_id", "state"):
        out.setdefault(state, []).append(store_id)
    return out


def test_rollout_of_twelve_stores_canary_pause_resume_cancel(
    worker, charts_dir, owner, stranger, staff_api, kube_cluster
):
    owners = [owner, stranger]  # the quota allows 10 stores a user
    ids = [services.create_store(owners[n % 2], f"Fleet {n:02}", "woocommerce").pk for n in range(12)]
    wait_until(lambda: all_in(ids, {Status.READY}), 300, "12 stores ready")
    assert plan_waves(12, 1, 2) == [1, 2, 4, 5]
    wave3 = ids[3:7]
    failing = wave3[:2]
    release_new_version(charts_dir, failing_stores=tuple(failing))

    body = {"engine": "woocommerce", "canary_size": 1, "growth": 2, "concurrency": 2, "failure_threshold": 25}
    response = staff_api.post("/api/rollouts/", body, format="json")
    assert response.status_code == 201, response.content
    rollout_id = response.json()["id"]

    # Canary, wave 2, then wave 3 fails past the threshold: paused with the rest of wave 3 not started.
    rollout = wait_until(lambda: Rollout.objects.filter(pk=rollout_id, state="paused").first(), 300, "auto-pause")
    assert rollout.current_wave == 3 and "wave 3: 2 of 4 stores failed" in rollout.state_message
    assert items(rollout_id, 1) == {"succeeded": ids[:1]} and items(rollout_id, 2) == {"succeeded": ids[1:3]}
    # The first failure (25 %) did not pause it, so a third store of the wave may have started; it finishes.
    wait_until(lambda: "upgrading" not in items(rollout_id), 120, "upgrades under way to finish")
    wave = items(rollout_id, 3)
    assert wave["failed"] == failing and wave["planned"][-1] == wave3[-1], wave
    assert items(rollout_id, 4) == {"planned": ids[7:]}
    for store in Store.objects.filter(pk__in=failing):
        assert (store.status, store.chart_version) == (Status.READY, OLD_VERSION), store.status_message
        assert store.upgrades.get().state == StoreUpgrade.State.ROLLED_BACK
    assert not StoreUpgrade.objects.filter(store_id__in=ids[6:]).exclude(store_id=wave3[2]).exists()

    # Resumed: the rest of wave 3, then wave 4; cancelled once wave 4 is under way.
    assert staff_api.post(f"/api/rollouts/{rollout_id}/resume/").json()["state"] == "running"
    wait_until(lambda: RolloutItem.objects.filter(rollout_id=rollout_id, wave=4).exclude(state="planned").exists(),
               240, "wave 4 under way")  # fmt: skip
    assert staff_api.post(f"/api/rollouts/{rollout_id}/cancel/").json()["state"] == "cancelled"
    wait_until(lambda: all_in(ids, {Status.READY}), 240, "every store ready again")

    assert items(rollout_id, 3) == {"failed": failing, "succeeded": wave3[2:]}
    wave4 = items(rollout_id, 4)
    assert set(wave4) <= {"succeeded", "cancelled"} and wave4.get("succeeded") and wave4.get("cancelled"), wave4
    upgraded = ids[:3] + wave3[2:] + wave4["succeeded"]
    stores = {s.pk: s for s in Store.objects.filter(pk__in=ids)}
    for pk in ids:
        store, history = stores[pk], helm_history(kube_cluster, stores[pk])
        at_new = revisions_at(history, "woocommerce", NEW_VERSION)
        if pk in upgraded:  # upgraded exactly once: one revision of the new chart, the one deployed
            assert store.chart_version == NEW_VERSION and len(at_new) == 1, history
            assert history[-1]["status"] == "deployed" and history[-1]["chart"].endswith(NEW_VERSION), history
        elif pk in failing:  # one failed try, rolled back to the old chart
            assert len(at_new) == 1 and history[-1]["chart"].endswith(OLD_VERSION), history
        else:  # never touched
            assert store.chart_version == OLD_VERSION and len(history) == 1, history
            assert store.events.filter(message=f"No longer planned: rollout #{rollout_id} was cancelled").exists()
        assert store.upgrades.filter(state="succeeded").count() <= 1
    assert pending_releases(kube_cluster, {s.namespace for s in stores.values()}) == []
    audit = list(AuditEntry.objects.filter(action__startswith="rollout.").values_list("action", "outcome"))
    assert audit.count(("rollout.wave", "success")) == 4
    for action in ("rollout.create", "rollout.start", "rollout.resume", "rollout.cancel"):
        assert (action, "success") in audit, audit
    assert ("rollout.pause", "failed") in audit, audit
    assert AuditEntry.objects.filter(action="store.upgraded").count() == len(upgraded)
    assert AuditEntry.objects.filter(action="store.rolled_back").count() == 2
