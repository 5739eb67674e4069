"""The simulated cluster keeps its control plane running, as a real node keeps its static pods:
a component that exits is started again by supervise.sh, and an API server paused for longer than
any leader-election lease leaves the controller manager and the scheduler working afterwards."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.plugins.simcluster import simcluster_kubeconfig_path

from .helpers import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster_dir(kube_cluster) -> Path:
    """The simulated cluster's kwokctl directory (pid files, logs); these tests kill its processes."""
    if Path(kube_cluster.kubeconfig).resolve() != simcluster_kubeconfig_path().resolve():
        pytest.fail(
            f"KUBECONFIG={kube_cluster.kubeconfig} is not the simulated cluster's "
            f"({simcluster_kubeconfig_path()}); these tests kill the simulated cluster's processes"
        )
    dirs = list(simcluster_kubeconfig_path().parent.glob("kwok/clusters/*/pids"))
    assert len(dirs) == 1, dirs
    return dirs[0].parent


def pid_of(cluster_dir: Path, component: str) -> int:
    return int((cluster_dir / "pids" / f"{component}.pid").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def deployment_becomes_available(apps: client.AppsV1Api, namespace: str, name: str, timeout: float) -> None:
    """Creates a Deployment and waits for it to be available: the controller manager made its
    ReplicaSet and pods, the scheduler placed them, the (simulated) kubelet ran them."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"type": "kwok"},
                    "containers": [{"name": "app", "image": "registry.example.invalid/app:1"}],
                },
            },
        },
    }
    apps.create_namespaced_deployment(namespace, body)
    wait_for(
        lambda: (apps.read_namespaced_deployment(name, namespace).status.available_replicas or 0) == 2,
        timeout,
        f"deployment {name} available",
    )


@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-scheduler"])
def test_killed_component_is_started_again(cluster_dir, component, kube_api_client, make_namespace):
    old = pid_of(cluster_dir, component)
    os.kill(old, signal.SIGKILL)
    new = wait_for(
        lambda: (pid := pid_of(cluster_dir, component)) != old and alive(pid) and pid,
        60,
        f"{component} started again by supervise.sh",
    )
    assert alive(new)
    assert f"exited: {component}" in (cluster_dir.parents[2] / "supervise.log").read_text()
    # And it works: a new Deployment needs both the controller manager and the scheduler.
    deployment_becomes_available(client.AppsV1Api(kube_api_client), make_namespace("sup"), "after-kill", 90)


def test_control_plane_survives_an_api_server_paused_for_90_seconds(cluster_dir, kube_api_client, make_namespace):
    namespace = make_namespace("pause")
    before = {c: pid_of(cluster_dir, c) for c in ("kube-controller-manager", "kube-scheduler")}
    apiserver = pid_of(cluster_dir, "kube-apiserver")
    os.kill(apiserver, signal.SIGSTOP)
    try:
        # Longer than the leases (15 s) and the renew deadlines the components used to exit on.
        time.sleep(90)
    finally:
        os.kill(apiserver, signal.SIGCONT)
    core = client.CoreV1Api(kube_api_client)
    wait_for(lambda: core.list_namespace(limit=1) is not None, 60, "API server answering again")
    deployment_becomes_available(client.AppsV1Api(kube_api_client), namespace, "after-pause", 120)
    after = {c: pid_of(cluster_dir, c) for c in before}
    # Without leader election nothing made them exit; had one exited, the supervisor restarted it.
    assert all(alive(pid) for pid in after.values())
    print(f"controller manager and scheduler pids before/after the pause: {before} -> {after}")
