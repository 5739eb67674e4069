"""Redis, where tasks live, restarted with stores in flight: once with its data (append-only file) and
once without (a Redis without persistence, or a lost volume), with a store created while it is down.
The worker must survive both (Celery 5.7.0's worker died for good here: requirements.in), Celery beat's
periodic reconciler must find whatever the broker lost, and no store may be lost."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from stores_app.models import Status, Store
from tests.chaos.conftest import Scenario, create, delete_and_check, record, settle, wait_all
from tests.chaos.test_kills import wait_for_install_start
from tests.conftest import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def private_broker(workers, private_redis, publish_to):
    """The worker, beat and this process all use the private Redis as their broker."""
    workers.env["TEST_CELERY_BROKER_URL"] = private_redis.url
    publish_to(private_redis.url)
    return private_redis


@pytest.fixture
def beat(workers, private_broker, tmp_path):
    """Celery beat with production's schedule (the reconciler every RECONCILE_INTERVAL_SECONDS)."""
    log = open(tmp_path / "beat.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "orchestrator",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=REPO,
        env=workers.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield proc
    proc.terminate()
    proc.wait(timeout=30)


def test_redis_restart_with_and_without_its_data(
    workers, private_redis, publish_to, beat, owner, kube_cluster, kube_api_client
):
    publish_to(private_redis.url)
    worker = workers.start()

    kept = Scenario("Redis restart, data kept (append-only file)")
    kept.stores = [create(owner, f"Broker Kept {n}") for n in range(3)]
    wait_for_install_start(kept.stores[0])
    private_redis.stop(keep_data=True)
    kept.faults.append(time.time())
    time.sleep(5)
    private_redis.start()
    settle(kept, owner, kube_cluster)
    assert worker.proc.poll() is None, "the worker died with the broker"
    record(kept, kube_cluster)

    lost = Scenario("Redis restart, data lost; a store created while it was down")
    lost.stores = [create(owner, f"Broker Lost {n}") for n in range(2)]
    wait_for_install_start(lost.stores[0])
    private_redis.stop(keep_data=False)
    lost.faults.append(time.time())
    # Saved although the broker is down (the request does not fail); queued by the reconciler later.
    lost.stores.append(create(owner, "Created During Outage"))
    assert Store.objects.get(pk=lost.stores[-1]).status == Status.PENDING
    time.sleep(5)
    private_redis.start()
    # Nothing nudges the stores but the product: the worker, and beat's reconciler every 60 s.
    settle(lost, owner, kube_cluster, timeout=240)
    assert worker.proc.poll() is None, "the worker died with the broker"
    record(lost, kube_cluster)
    delete_and_check(Scenario("cleanup", stores=kept.stores + lost.stores), owner, kube_api_client)
    assert wait_all(kept.stores + lost.stores, {Status.DELETED}, 10)
