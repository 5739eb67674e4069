"""Upgrades against worker kills, with the real worker, helm and cluster and production timings.

A single upgrade whose worker is SIGKILLed while its helm upgrade holds the release `pending-upgrade`
(the scripted helm kills the worker's whole process group at that moment); then a rollout of six stores
whose worker is SIGKILLed three times at random moments. Each time a new worker resumes: the stuck
revision is unlocked and upgraded again, the rollout carries on from its rows. At the end every store is
ready on the new version, no release is pending, no store is left upgrading, and no store was upgraded
twice: one upgrade record each, and one revision of the new chart that got deployed, the last one."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path

import pytest
from django.utils import timezone

from stores_app import services
from stores_app.models import Rollout, Status, Store, StoreUpgrade
from tests.chaos.conftest import Scenario, create, delete_and_check, record, scripted_helm_env, wait_all
from tests.upgrades.versions import (
    NEW_VERSION,
    copy_charts,
    helm_history,
    pending_releases,
    release_new_version,
    revisions_at,
    wait_until,
)

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.slow]


class UpgradeScenario(Scenario):
    """Recovery is from the last fault to the end of the store's upgrade."""

    def recovery_seconds(self) -> list[float]:
        out = []
        for upgrade in StoreUpgrade.objects.filter(store_id__in=self.stores, finished_at__isnull=False):
            end = upgrade.finished_at.timestamp()
            before = [f for f in self.faults if f <= end]
            if before:
                out.append(end - max(before))
        return out


@pytest.fixture
def charts(tmp_path, settings) -> Path:
    settings.STORE_CHARTS_DIR = copy_charts(tmp_path)
    return settings.STORE_CHARTS_DIR


def upgraded_once(kube_cluster, store: Store) -> None:
    """Ready on the new chart by one upgrade: one record, and of the new chart's revisions exactly one was
    deployed — the last one. Any other is one our killed helm left pending and the orchestrator unlocked
    (marked failed), never deployed: its status is `failed` — or `superseded` when helm was killed after it
    had superseded the old revision but before it recorded the new one as deployed (helm's next upgrade,
    finding no deployed revision, supersedes the last one, and blanks its description). Each superseded
    one is matched by an unlock in the store's timeline; a revision deployed and then upgraded again would
    have none."""
    assert (store.status, store.chart_version) == (Status.READY, NEW_VERSION), store.status_message
    assert list(store.upgrades.values_list("state", flat=True)) == [StoreUpgrade.State.SUCCEEDED]
    history = helm_history(kube_cluster, store)
    new = revisions_at(history, "woocommerce", NEW_VERSION)
    assert history[-1] == new[-1] and new[-1]["status"] == "deployed", history
    assert all(h["status"] in ("failed", "superseded") for h in new[:-1]), history
    superseded = [h for h in new[:-1] if h["status"] == "superseded"]
    unlocks = store.events.filter(step="repair", message__startswith="Unlocked the release (marked failed, to upgrade")
    assert len(superseded) <= unlocks.count(), f"a new revision was deployed and upgraded again\n{history}"


def test_worker_killed_during_a_single_upgrade_and_three_times_during_a_rollout(
    workers, charts, owner, staff, kube_cluster, kube_api_client, tmp_path
):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    workers.env.update(scripted_helm_env(kube_cluster, tmp_path, []), STORE_CHARTS_DIR=str(charts))
    workers.start()
    ids = [create(owner, f"Kill Upgrade {n}") for n in range(7)]
    wait_all(ids, {Status.READY}, 300)
    release_new_version(charts)

    # A single upgrade: the worker dies with its helm upgrade half done.
    single = UpgradeScenario("worker SIGKILL during a single upgrade (its release pending-upgrade)", stores=ids[:1])
    script = Path(workers.env["FAKE_HELM_SCRIPT"])
    kill = {"command": "upgrade", "times": 1, "kill_when_pending": {"after": 0.3, "target": "group"}}
    script.write_text(json.dumps([kill]))
    services.upgrade_store(Store.objects.get(pk=ids[0]), owner)
    wait_until(lambda: workers.current.proc.poll() is not None, 120, "the worker killed by its helm")
    single.faults.append(time.time())
    workers.start()
    store = wait_all(ids[:1], {Status.READY, Status.FAILED}, 300)[ids[0]]
    kills = [json.loads(line) for line in Path(f"{script}.calls").read_text().splitlines()]
    assert [k["killed_at"] for k in kills if "killed_at" in k] == ["pending-upgrade"], kills
    upgraded_once(kube_cluster, store)
    assert store.events.filter(step="repair", message__contains="pending-upgrade").exists()
    record(single, kube_cluster)

    # A rollout of the other six: the worker killed three times, 0-4 s after an upgrade of it started.
    spec = services.RolloutSpec(engine="woocommerce", store_ids=ids[1:], canary_size=1, growth=2, concurrency=2)
    rollout = services.create_rollout(staff, spec)
    rolled = UpgradeScenario("worker SIGKILL ×3 during a rollout of 6 stores (0–4 s into an upgrade)", stores=ids[1:])
    for _ in range(3):
        since = timezone.now() - dt.timedelta(seconds=0.5)
        started = StoreUpgrade.objects.filter(rollout=rollout, requested_at__gte=since)
        wait_until(lambda started=started: started.exists() or not Rollout.objects.get(pk=rollout.pk).is_open,
                   240, "an upgrade of the rollout to start")  # fmt: skip
        time.sleep(rng.uniform(0.0, 4.0))
        rolled.faults.append(workers.kill_and_restart())
    wait_until(lambda: Rollout.objects.get(pk=rollout.pk).state == Rollout.State.COMPLETED, 600, "rollout completed")
    stores = wait_all(ids, {Status.READY}, 60)
    for store in stores.values():
        upgraded_once(kube_cluster, store)
    assert pending_releases(kube_cluster, {s.namespace for s in stores.values()}) == []
    assert max(s.attempts for s in stores.values()) == 0  # reset when each upgrade ended
    record(rolled, kube_cluster)

    delete_and_check(Scenario("cleanup", stores=ids), owner, kube_api_client)
