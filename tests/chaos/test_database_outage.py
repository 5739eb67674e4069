"""Postgres restarted with stores in flight, on a private server the test starts itself: the worker's
steps fail on the lost connection and are retried as the same task; every store ends ready."""

from __future__ import annotations

import time

import pytest
from django.db import connections

from tests.chaos.conftest import Scenario, create, delete_and_check, record, settle
from tests.chaos.test_kills import wait_for_install_start
from tests.conftest import make_user

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.slow]


def test_postgres_restart_with_stores_in_flight(
    workers, private_database, django_user_model, kube_cluster, kube_api_client
):
    owner = make_user(django_user_model, "pg-owner")  # on the private server
    workers.start()
    scenario = Scenario("Postgres restart")
    scenario.stores = [create(owner, f"Database Restart {n}") for n in range(3)]
    wait_for_install_start(scenario.stores[0])
    private_database.stop()
    scenario.faults.append(time.time())
    time.sleep(5)
    private_database.start()
    connections["default"].close()  # this process's connection died with the server too
    settle(scenario, owner, kube_cluster)
    record(scenario, kube_cluster)
    delete_and_check(scenario, owner, kube_api_client)
