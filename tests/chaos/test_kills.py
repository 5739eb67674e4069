"""Kills against the real stack: the worker SIGKILLed during installs (ten times, at varying moments)
and during teardown, helm SIGKILLed once its release is pending, deletes arriving 0.5/2/5 s into an
install, and a retry right after a failure. Production timings throughout."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from stores_app import services
from stores_app.models import Status, Store, StoreEvent
from tests.chaos.conftest import (
    Scenario,
    create,
    delete_and_check,
    record,
    scripted_helm_env,
    settle,
    wait_all,
)

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.slow]


def wait_for_install_start(store_id: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not StoreEvent.objects.filter(store_id=store_id, step="helm_install", outcome="started").exists():
        assert time.monotonic() < deadline, f"store {store_id}: helm install never started"
        time.sleep(0.1)


def test_worker_killed_during_installs_ten_times_then_during_teardown(workers, owner, kube_cluster, kube_api_client):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    installs = Scenario("worker SIGKILL during install ×10 (0–3 s after helm starts)")
    workers.start()
    for n in range(10):
        store_id = create(owner, f"Kill {n}")
        installs.stores.append(store_id)
        wait_for_install_start(store_id)
        time.sleep(rng.uniform(0.0, 3.0))
        installs.faults.append(workers.kill_and_restart())
    settle(installs, owner, kube_cluster)
    assert max(s.attempts for s in Store.objects.filter(pk__in=installs.stores)) <= 5
    record(installs, kube_cluster)

    teardown = Scenario("worker SIGKILL during teardown", stores=list(installs.stores))

    def kill_mid_teardown() -> None:
        time.sleep(rng.uniform(0.5, 2.0))
        teardown.faults.append(workers.kill_and_restart())

    delete_and_check(teardown, owner, kube_api_client, during=kill_mid_teardown)
    record(teardown, kube_cluster)


def test_helm_killed_once_pending_and_retry_right_after_a_failure(
    workers, owner, kube_cluster, kube_api_client, tmp_path
):
    rules = [{"command": "upgrade", "times": 1, "kill_when_pending": {"after": after}} for after in (0.2, 1.0, 3.0)]
    workers.env.update(scripted_helm_env(kube_cluster, tmp_path, rules))
    workers.start()
    killed = Scenario("helm SIGKILL once its release is pending (0.2/1/3 s)")
    killed.stores = [create(owner, f"Helm Kill {n}") for n in range(3)]
    settle(killed, owner, kube_cluster)
    calls = Path(f"{workers.env['FAKE_HELM_SCRIPT']}.calls").read_text().splitlines()
    kills = [json.loads(line) for line in calls if json.loads(line).get("killed_at", "missed") != "missed"]
    assert kills and all(k["killed_at"] == "pending-install" for k in kills), kills  # a late one may miss
    killed.faults.extend(k["at"] for k in kills)
    assert Store.objects.filter(pk__in=killed.stores, status=Status.READY).count() == 3
    record(killed, kube_cluster)

    # A permanent helm error fails the store with its reason; a retry right after succeeds at once.
    failing = Scenario("retry right after a failure")
    _script(
        workers.env["FAKE_HELM_SCRIPT"],
        [{"command": "upgrade", "exit": 1, "stderr": "Error: INSTALLATION FAILED: values don't meet the schema"}],
    )
    failing.stores = [create(owner, "Fails Once")]
    store = wait_all(failing.stores, {Status.FAILED, Status.READY}, 120)[failing.stores[0]]
    assert store.status == Status.FAILED and "schema" in store.status_message
    failing.faults.append(time.time())
    settle(failing, owner, kube_cluster)
    record(failing, kube_cluster)
    delete_and_check(Scenario("cleanup", stores=killed.stores + failing.stores), owner, kube_api_client)


def _script(path: str, rules: list[dict]) -> None:
    Path(path).write_text(json.dumps(rules))


def test_delete_half_a_second_two_and_five_seconds_into_an_install(workers, owner, kube_cluster, kube_api_client):
    workers.start()
    scenario = Scenario("delete 0.5 / 2 / 5 s into an install")
    scenario.stores = [create(owner, f"Delete Early {n}") for n in range(3)]
    started = time.monotonic()
    for store_id, at in zip(scenario.stores, (0.5, 2.0, 5.0), strict=True):
        time.sleep(max(0.0, started + at - time.monotonic()))
        services.delete_store(Store.objects.get(pk=store_id), owner)
        scenario.faults.append(time.time())
    stores = wait_all(scenario.stores, {Status.DELETED}, 180)
    for store in stores.values():
        # The delete preempts the install: the teardown task waits for the install's lock seconds,
        # not for the reconciler's lease and tick (which took 90 s and more).
        waited = (store.deleted_at - store.deletion_requested_at).total_seconds()
        assert waited < 60, f"store {store.pk} took {waited:.0f} s to delete"
    names = {ns for ns in kube_cluster.run(kube_cluster.kubectl, "get", "ns", "-o", "name").stdout.split()}
    assert not {f"namespace/{s.namespace}" for s in stores.values()} & names
    record(scenario, kube_cluster)
