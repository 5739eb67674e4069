"""The cluster's API server paused (SIGSTOP) with stores in flight, for 30 s and for 300 s: every
call hangs, then times out; stores wait (bounded by time, not by a count of attempts) and come up
once it answers again. The 300 s pause also needs the simulated cluster's controller manager and
scheduler to survive a long pause (no leader election, a watchdog: tools/simcluster)."""

from __future__ import annotations

import os
import time

import pytest

from tests.chaos.conftest import (
    Scenario,
    control_plane_pid,
    create,
    delete_and_check,
    pause_api_server,
    record,
    revive_control_plane,
    settle,
)
from tests.chaos.test_kills import wait_for_install_start

pytestmark = [pytest.mark.chaos, pytest.mark.cluster, pytest.mark.slow]


def _alive(component: str) -> bool:
    try:
        os.kill(control_plane_pid(component), 0)
    except (ProcessLookupError, FileNotFoundError):
        return False
    return True


def test_api_server_paused_30_then_300_seconds_with_stores_in_flight(workers, owner, kube_cluster, kube_api_client):
    """One worker and one cleanup for both pauses (CI time): each pause with its own stores in flight."""
    workers.start()
    everything = Scenario("cleanup")
    for seconds in (30, 300):
        scenario = Scenario(f"API server paused {seconds} s")
        scenario.stores = [create(owner, f"Paused {seconds} {n}") for n in range(3)]
        everything.stores += scenario.stores
        wait_for_install_start(scenario.stores[0])
        scenario.faults.append(pause_api_server(seconds))
        time.sleep(5)  # a component that lost its leader election exits just after the pause
        dead = [c for c in ("kube-controller-manager", "kube-scheduler") if not _alive(c)]
        if dead:
            revive_control_plane(kube_cluster)
        assert not dead, f"{dead} exited during the pause and nothing restarted them (tools/simcluster)"
        settle(scenario, owner, kube_cluster)
        record(scenario, kube_cluster)
    delete_and_check(everything, owner, kube_api_client)
